package backend

import (
	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/store"
)

// Place is where a stored event is: its stream and version there.
type Place struct {
	Stream  string
	Version int64
}

// Diagnose explains an append of pending to stream at expected that could
// not go ahead, from where its IDs are stored (found) and the stream's last
// version: an idempotent replay — every ID already in the stream at
// consecutive versions, in order, starting where expected says — returns
// the version to read the stored events from; otherwise the error is a
// *store.DuplicateEventError (an ID is stored) or a
// *store.WrongExpectedVersionError. Backends call it on the failure path
// only.
func Diagnose(stream string, expected store.ExpectedVersion, pending []Pending, found map[uuid.UUID]Place, current int64) (replayFrom int64, err error) {
	if len(found) == 0 {
		return -1, &store.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: current}
	}
	if first, ok := replayed(stream, expected, pending, found); ok {
		return first, nil
	}
	for _, p := range pending {
		if _, ok := found[p.Event.ID]; ok {
			return -1, &store.DuplicateEventError{Stream: stream, ID: p.Event.ID.String()}
		}
	}
	return -1, &store.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: current}
}

// replayed reports whether pending are stored in stream already, at
// consecutive versions starting where expected says, and the first one.
func replayed(stream string, expected store.ExpectedVersion, pending []Pending, found map[uuid.UUID]Place) (int64, bool) {
	first, ok := found[pending[0].Event.ID]
	if !ok || len(found) != len(pending) || first.Stream != stream {
		return 0, false
	}
	for i, p := range pending {
		if at, ok := found[p.Event.ID]; !ok || at.Stream != stream || at.Version != first.Version+int64(i) {
			return 0, false
		}
	}
	switch {
	case expected == store.NoStream:
		return first.Version, first.Version == 0
	case expected == store.StreamExists:
		return first.Version, first.Version > 0
	case expected >= 0:
		return first.Version, first.Version == int64(expected)+1
	}
	return first.Version, true
}
