// Package envelope is an event's envelope: the metadata keys a store owns
// (event_id, event_type, stream, stream_version, position, context, shard,
// recorded_at). A store writes them from an event's columns and its own
// names ([Complete]), never from what an application gave ([IsOwned]); a
// transport carries them (NATS headers, a watermill message's metadata,
// built with [Text]); a receiver reads them back ([Parse]).
package envelope
