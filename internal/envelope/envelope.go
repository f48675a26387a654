// Package envelope is an event's envelope: the metadata keys a store owns
// (event_id, event_type, stream, stream_version, position, context, shard,
// recorded_at). A store writes them from an event's columns and its own
// names, never from what an application gave; a transport carries them
// (NATS headers, a watermill message's metadata); a receiver reads them
// back with [Parse].
package envelope

import (
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
)

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
