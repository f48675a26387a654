package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/envelope"
	"github.com/switchyard-go/switchyard/internal/flatjson"
	"github.com/switchyard-go/switchyard/store"
)

// Pending is an event validated and stamped, ready for a backend to write.
type Pending struct {
	Event    store.Event // ID, Type, Data, RecordedAt set; Metadata holds the persisted keys
	Metadata []byte      // the persisted metadata, JSON
}

// Prepare validates an append and stamps its events: it is what both
// backends run before writing. It generates missing IDs (UUIDv7), applies
// the correlation rules of ctx, refuses bad input with an
// *store.InvalidError and checks each event's size against maxBytes (data
// plus metadata; 0: store.DefaultMaxEventBytes).
func Prepare(ctx context.Context, stream string, expected store.ExpectedVersion, events []store.Event, maxBytes int, now time.Time) ([]Pending, error) {
	if err := store.CheckStream(stream); err != nil {
		return nil, err
	}
	if err := CheckExpected(expected); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, &store.InvalidError{Field: "events", Value: stream, Reason: "nothing to append"}
	}
	if maxBytes <= 0 {
		maxBytes = store.DefaultMaxEventBytes
	}
	out := make([]Pending, len(events))
	seen := make(map[uuid.UUID]struct{}, len(events))
	for i, ev := range events {
		if err := store.CheckType(ev.Type); err != nil {
			return nil, err
		}
		if ev.ID == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, err
			}
			ev.ID = id
		}
		if _, dup := seen[ev.ID]; dup {
			return nil, &store.InvalidError{Field: "event id", Value: ev.ID.String(), Reason: "appears twice in one append"}
		}
		seen[ev.ID] = struct{}{}
		p, err := stamp(ctx, ev, maxBytes)
		if err != nil {
			return nil, err
		}
		p.Event.Stream = stream
		p.Event.RecordedAt = now
		out[i] = p
	}
	return out, nil
}

// stamp checks one event of an append (its type is checked) and gives it
// the metadata it is stored with: the application's keys, without those
// the store sets itself, and the correlation rules of ctx.
func stamp(ctx context.Context, ev store.Event, maxBytes int) (Pending, error) {
	data, err := checkData(ev.Type, ev.Data, maxBytes)
	if err != nil {
		return Pending{}, err
	}
	// Room for what Stamp and envelope.Complete add: a dozen keys.
	md := make(correlation.Metadata, len(ev.Metadata)+12)
	for k, v := range ev.Metadata {
		if !envelope.IsOwned(k) {
			md[k] = v
		}
	}
	if err := store.CheckMetadata(md); err != nil {
		return Pending{}, err
	}
	correlation.Stamp(ctx, md, ev.ID.String())
	mdJSON := flatjson.Append(make([]byte, 0, 128), md, nil)
	if n := len(data) + len(mdJSON); n > maxBytes {
		return Pending{}, &store.InvalidError{Field: "event " + ev.Type, Value: ev.ID.String(), Reason: "data plus metadata is " + strconv.Itoa(n) + " bytes, over the limit of " + strconv.Itoa(maxBytes)}
	}
	return Pending{Event: store.Event{ID: ev.ID, Type: ev.Type, Data: data, Metadata: md}, Metadata: mdJSON}, nil
}

var emptyObject = json.RawMessage("{}")

func checkData(typ string, data json.RawMessage, maxBytes int) (json.RawMessage, error) {
	if len(data) == 0 {
		return emptyObject, nil
	}
	field := "data of " + typ
	if len(data) > maxBytes {
		return nil, &store.InvalidError{Field: field, Value: clip(data), Reason: strconv.Itoa(len(data)) + " bytes, over the limit of " + strconv.Itoa(maxBytes)}
	}
	if !utf8.Valid(data) {
		return nil, &store.InvalidError{Field: field, Value: string(data), Reason: "not valid UTF-8"}
	}
	if !json.Valid(data) {
		return nil, &store.InvalidError{Field: field, Value: string(data), Reason: "not valid JSON"}
	}
	// PostgreSQL's jsonb refuses the NUL character; refuse it everywhere so
	// both backends accept the same events and SQL projections can cast
	// data to jsonb.
	if bytes.Contains(data, []byte(`\u0000`)) {
		return nil, &store.InvalidError{Field: field, Value: string(data), Reason: `contains \u0000, which PostgreSQL cannot turn into jsonb (as projections do)`}
	}
	return data, nil
}

// clip returns the start of b, enough to recognise it in an error message.
func clip(b []byte) string {
	if len(b) > 80 {
		b = b[:80]
	}
	return string(b)
}

// IDs returns the IDs of pending, in order.
func IDs(pending []Pending) []uuid.UUID {
	ids := make([]uuid.UUID, len(pending))
	for i, p := range pending {
		ids[i] = p.Event.ID
	}
	return ids
}

// LinkedAt turns ev, a completed original event (envelope.Complete), into
// what a read through a link at (stream, version) returns: its metadata
// keeps the original place.
func LinkedAt(ev *store.Event, stream string, version int64) {
	ev.Link = true
	ev.Stream, ev.Version = stream, version
}
