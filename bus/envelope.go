package bus

import (
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/envelope"
	"github.com/switchyard-go/switchyard/internal/flatjson"
	"github.com/switchyard-go/switchyard/store"
)

// Headers of an event message besides the well-known metadata keys, each
// of which travels in a header of its own name (event_id, shard,
// correlation_id, ...).
const (
	// HeaderApplication carries the application's metadata (the keys that
	// are not well-known) as a JSON object.
	HeaderApplication = "metadata"
	// HeaderReplayGroup marks a dead letter replayed for one consumer
	// group: the other groups consuming the stream pass it by.
	HeaderReplayGroup = "Sw-Replay-Group"
)

var wellKnown = correlation.Keys()

// headers holds header maps for reuse: a map of 16 entries costs more to
// make than the rest of a message. [Encode] takes one; the relay gives
// it back once the message is published (nats.go has encoded it then).
var headers = sync.Pool{New: func() any { return make(nats.Header, 16) }}

// release gives m's header map back for reuse; m must not be used again.
// It is safe once nc.PublishMsg has returned: nats.go encodes the headers
// on the spot and keeps nothing of m. (jetstream.PublishMsgAsync keeps the
// message for retries: never release one published through it.)
func release(m *nats.Msg) {
	h := m.Header
	m.Header, m.Data = nil, nil
	if h != nil {
		clear(h)
		headers.Put(h)
	}
}

// Encode is the NATS message for ev, an event of the store (contextName,
// shard), among partitions partitions. Context and shard come from the
// store, never from the event's metadata.
func Encode(ev store.Event, contextName, shard string, partitions int) *nats.Msg {
	m, _ := message(&ev, contextName, shard, partitions)
	return m
}

// message is [Encode] and the size NATS counts against its limits:
// payload plus encoded headers.
func message(ev *store.Event, contextName, shard string, partitions int) (*nats.Msg, int) {
	// One backing array for the header values: a message has 10 to 15.
	vals := make([]string, 0, 16)
	h := headers.Get().(nats.Header)
	size := len(ev.Data) + len("NATS/1.0\r\n\r\n")
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		size += len(k) + len(": ") + len(v) + len("\r\n")
	}
	known := 0 // well-known keys in the metadata; the rest are the application's
	for _, k := range wellKnown {
		if v, ok := ev.Metadata[string(k)]; ok {
			known++
			if !envelope.IsOwned(string(k)) {
				set(string(k), v)
			}
		}
	}
	// The store-owned keys come from the event's fields and the store, never
	// from metadata (envelope.Text only reuses strings that hold the same text).
	o := envelope.Text(ev)
	set(string(correlation.EventID), o.ID)
	set(string(correlation.EventType), ev.Type)
	set(string(correlation.Stream), ev.Stream)
	set(string(correlation.StreamVersion), o.Version)
	set(string(correlation.Position), o.Position)
	set(string(correlation.Context), contextName)
	set(string(correlation.Shard), shard)
	set(string(correlation.RecordedAt), o.RecordedAt)
	if len(ev.Metadata) > known {
		set(HeaderApplication, string(flatjson.Append(make([]byte, 0, 64), ev.Metadata, correlation.IsWellKnown)))
	}
	set(jetstream.MsgIDHeader, o.ID)
	return &nats.Msg{Subject: Subject(contextName, shard, Partition(ev.Stream, partitions), ev.Type), Data: ev.Data, Header: h}, size
}

// Decode turns a message the relay published back into the event, with
// the address its subject gives. It checks that the headers name the
// subject's context and shard: a message whose headers disagree is an
// *store.InvalidError naming the header (a forged shard, say), and nothing
// of it should be trusted.
func Decode(m *nats.Msg) (store.Event, Address, error) {
	addr, err := ParseSubject(m.Subject)
	if err != nil {
		return store.Event{}, Address{}, err
	}
	h := func(k correlation.Key) string { return m.Header.Get(string(k)) }
	bad := func(k correlation.Key, reason string) (store.Event, Address, error) {
		return store.Event{}, addr, &store.InvalidError{Field: "header " + string(k), Value: h(k), Reason: reason}
	}
	if h(correlation.Context) != addr.Context {
		return bad(correlation.Context, "differs from the subject's context "+strconv.Quote(addr.Context))
	}
	if h(correlation.Shard) != addr.Shard {
		return bad(correlation.Shard, "differs from the subject's shard "+strconv.Quote(addr.Shard))
	}
	if h(correlation.EventType) != addr.Type {
		return bad(correlation.EventType, "differs from the subject's event type "+strconv.Quote(addr.Type))
	}
	ev, err := envelope.Parse(h, "header")
	if err != nil {
		return store.Event{}, addr, err
	}
	ev.Type, ev.Data, ev.Metadata = addr.Type, m.Data, make(correlation.Metadata, 16)
	if app := m.Header.Get(HeaderApplication); app != "" {
		if err := flatjson.Decode([]byte(app), ev.Metadata); err != nil {
			return store.Event{}, addr, &store.InvalidError{Field: "header " + HeaderApplication, Value: app, Reason: "not a JSON object of strings"}
		}
		for k := range ev.Metadata {
			if correlation.IsWellKnown(k) {
				return store.Event{}, addr, &store.InvalidError{Field: "header " + HeaderApplication, Value: app, Reason: "holds the well-known key " + strconv.Quote(k)}
			}
		}
	}
	for _, k := range correlation.Keys() {
		if v := m.Header.Get(string(k)); v != "" {
			ev.Metadata.Set(k, v)
		}
	}
	return ev, addr, nil
}
