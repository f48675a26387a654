package envelope

import (
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
)

// IsOwned reports whether the store sets metadata key k itself, from an
// event's columns and the store's context and shard: event_id, event_type,
// stream, stream_version, position, context, shard and recorded_at. They
// are not persisted in the metadata column, and a value an application
// gives for one of them is dropped on append.
func IsOwned(k string) bool {
	switch correlation.Key(k) {
	case correlation.EventID, correlation.EventType, correlation.Stream, correlation.StreamVersion,
		correlation.Position, correlation.Context, correlation.Shard, correlation.RecordedAt:
		return true
	}
	return false
}

// Complete fills in the store-owned metadata keys of ev from its fields and
// the store's context and shard. Backends call it on every event they
// return, before backend.LinkedAt for an event read through a link.
func Complete(ev *store.Event, contextName, shard string) {
	if ev.Metadata == nil {
		ev.Metadata = make(correlation.Metadata, 8)
	}
	m := ev.Metadata
	o := format(ev)
	m.Set(correlation.EventID, o.ID)
	m.Set(correlation.EventType, ev.Type)
	m.Set(correlation.Stream, ev.Stream)
	m.Set(correlation.StreamVersion, o.Version)
	m.Set(correlation.Position, o.Position)
	m.Set(correlation.Context, contextName)
	m.Set(correlation.Shard, shard)
	m.Set(correlation.RecordedAt, o.RecordedAt)
}

// Texts is the text of an event's store-owned values that are not strings
// among its fields, as [Complete] writes them into its metadata.
type Texts struct {
	ID, Version, Position, RecordedAt string
}

// Text returns the text of ev's event_id, stream_version, position and
// recorded_at. They are the strings of ev's metadata when they hold those
// values (as after [Complete]): nothing is allocated then, and a forged
// value is never taken.
func Text(ev *store.Event) Texts {
	var arr [128]byte
	b, ends := appendOwned(arr[:0], ev)
	m := ev.Metadata
	if id, ok := m[string(correlation.EventID)]; ok && id == string(b[:ends[0]]) {
		if v := m[string(correlation.StreamVersion)]; v == string(b[ends[0]:ends[1]]) {
			if p := m[string(correlation.Position)]; p == string(b[ends[1]:ends[2]]) {
				if r := m[string(correlation.RecordedAt)]; r == string(b[ends[2]:]) {
					return Texts{id, v, p, r}
				}
			}
		}
	}
	return split(string(b), ends)
}

// format returns the text of ev's owned values in one allocation.
func format(ev *store.Event) Texts {
	var arr [128]byte
	b, ends := appendOwned(arr[:0], ev)
	return split(string(b), ends)
}

// appendOwned appends event_id, stream_version, position and recorded_at
// to b and says where the first three end.
func appendOwned(b []byte, ev *store.Event) ([]byte, [3]int) {
	var ends [3]int
	b = appendUUID(b, ev.ID)
	ends[0] = len(b)
	b = strconv.AppendInt(b, ev.Version, 10)
	ends[1] = len(b)
	b, _ = ev.Position.AppendText(b)
	ends[2] = len(b)
	return ev.RecordedAt.UTC().AppendFormat(b, time.RFC3339Nano), ends
}

func split(s string, ends [3]int) Texts {
	return Texts{s[:ends[0]], s[ends[0]:ends[1]], s[ends[1]:ends[2]], s[ends[2]:]}
}

// appendUUID appends id in its canonical form, as id.String writes it.
func appendUUID(b []byte, id uuid.UUID) []byte {
	const hexdigits = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return b
}

// Parse reads the store-owned keys of an event — event_id, stream,
// stream_version, position and recorded_at — through get, from wherever
// they travel, and returns an event with ID, Stream, Version, Position and
// RecordedAt set. A missing or malformed value is an *store.InvalidError
// whose Field is where and the key ("header stream_version").
func Parse(get func(correlation.Key) string, where string) (store.Event, error) {
	bad := func(k correlation.Key, reason string) (store.Event, error) {
		return store.Event{}, &store.InvalidError{Field: where + " " + string(k), Value: get(k), Reason: reason}
	}
	ev := store.Event{Stream: get(correlation.Stream)}
	var err error
	if ev.ID, err = uuid.Parse(get(correlation.EventID)); err != nil {
		return bad(correlation.EventID, "not a UUID")
	}
	if err := store.CheckStream(ev.Stream); err != nil {
		return bad(correlation.Stream, err.Error())
	}
	if ev.Version, err = strconv.ParseInt(get(correlation.StreamVersion), 10, 64); err != nil || ev.Version < 0 {
		return bad(correlation.StreamVersion, "not a version")
	}
	if ev.Position, err = store.ParsePosition(get(correlation.Position)); err != nil {
		return bad(correlation.Position, err.Error())
	}
	if ev.RecordedAt, err = time.Parse(time.RFC3339Nano, get(correlation.RecordedAt)); err != nil {
		return bad(correlation.RecordedAt, "not an RFC 3339 time")
	}
	return ev, nil
}
