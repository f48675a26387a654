package bus

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
)

// HeaderApplication carries an event's application metadata (the keys
// that are not well-known) as a JSON object. Every well-known key travels
// in a header of its own name (event_id, shard, correlation_id, ...).
const HeaderApplication = "metadata"

// Message is the NATS message for ev, an event of the store (context,
// shard), among partitions partitions. Context and shard come from the
// store, never from the event's metadata.
func Message(ev store.Event, context, shard string, partitions int) *nats.Msg {
	m := &nats.Msg{
		Subject: Subject(context, shard, Partition(ev.Stream, partitions), ev.Type),
		Data:    ev.Data,
		Header:  make(nats.Header, 16),
	}
	for k, v := range ev.Metadata {
		if correlation.IsWellKnown(k) {
			m.Header[k] = []string{v}
		}
	}
	id := ev.ID.String()
	m.Header[string(correlation.EventID)] = []string{id}
	m.Header[string(correlation.EventType)] = []string{ev.Type}
	m.Header[string(correlation.Stream)] = []string{ev.Stream}
	m.Header[string(correlation.StreamVersion)] = []string{strconv.FormatInt(ev.Version, 10)}
	m.Header[string(correlation.Position)] = []string{ev.Position.String()}
	m.Header[string(correlation.Context)] = []string{context}
	m.Header[string(correlation.Shard)] = []string{shard}
	m.Header[string(correlation.RecordedAt)] = []string{ev.RecordedAt.UTC().Format(time.RFC3339Nano)}
	if app := ev.Metadata.Application(); len(app) > 0 {
		b, _ := json.Marshal(app) // a map of strings always marshals
		m.Header[HeaderApplication] = []string{string(b)}
	}
	m.Header[jetstream.MsgIDHeader] = []string{id}
	return m
}

// size is what NATS counts against its limits: payload plus encoded headers.
func size(m *nats.Msg) int {
	n := len(m.Data)
	if len(m.Header) > 0 {
		n += len("NATS/1.0\r\n\r\n")
		for k, vs := range m.Header {
			for _, v := range vs {
				n += len(k) + len(": ") + len(v) + len("\r\n")
			}
		}
	}
	return n
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
	ev := store.Event{Type: addr.Type, Data: m.Data, Stream: h(correlation.Stream), Metadata: make(correlation.Metadata, 16)}
	if ev.ID, err = uuid.Parse(h(correlation.EventID)); err != nil {
		return bad(correlation.EventID, "not a UUID")
	}
	if err := store.CheckStream(ev.Stream); err != nil {
		return bad(correlation.Stream, err.Error())
	}
	if ev.Version, err = strconv.ParseInt(h(correlation.StreamVersion), 10, 64); err != nil || ev.Version < 0 {
		return bad(correlation.StreamVersion, "not a version")
	}
	if ev.Position, err = store.ParsePosition(h(correlation.Position)); err != nil {
		return bad(correlation.Position, err.Error())
	}
	if ev.RecordedAt, err = time.Parse(time.RFC3339Nano, h(correlation.RecordedAt)); err != nil {
		return bad(correlation.RecordedAt, "not an RFC 3339 time")
	}
	if app := m.Header.Get(HeaderApplication); app != "" {
		if err := json.Unmarshal([]byte(app), (*map[string]string)(&ev.Metadata)); err != nil {
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
