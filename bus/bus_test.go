package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/store"
)

func TestPartitionIsStable(t *testing.T) {
	// FNV-1a (32 bit) of the stream name, checked with an independent
	// implementation: these values must never change, or one
	// stream's events would split across partitions between versions.
	for stream, want := range map[string]int{"Visit-42": 5, "Visit-43": 2, "order/1": 11, "ü": 10} {
		if got := bus.Partition(stream, 16); got != want {
			t.Errorf("Partition(%q, 16) = %d, want %d", stream, got, want)
		}
	}
	seen := map[int]bool{}
	for i := 0; i < 1000; i++ {
		seen[bus.Partition("s-"+string(rune('a'+i%26))+strings.Repeat("x", i%7), 16)] = true
	}
	if len(seen) != 16 {
		t.Errorf("1000 streams use %d of 16 partitions", len(seen))
	}
}

func TestParseSubject(t *testing.T) {
	a, err := bus.ParseSubject("sw.visits.tenant-a.7.VisitScheduled")
	if err != nil || a != (bus.Address{Context: "visits", Shard: "tenant-a", Partition: 7, Type: "VisitScheduled"}) {
		t.Fatalf("ParseSubject = %+v, %v", a, err)
	}
	for _, bad := range []string{
		"", "sw.visits.a.1", "xx.visits.a.1.T", "sw.Visits.a.1.T", "sw.visits.a;drop.1.T",
		"sw.visits.a.-1.T", "sw.visits.a.01.T", "sw.visits.a.one.T", "sw.visits.a.1.T.extra", "sw.visits.a.1.*",
	} {
		if _, err := bus.ParseSubject(bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ParseSubject(%q) = %v; want ErrInvalid", bad, err)
		}
	}
}

func storedEvent(t *testing.T) store.Event {
	ev, err := store.NewEvent("VisitScheduled", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	ev.Stream, ev.Version = "Visit-42", 3
	ev.Position = store.Position{Commit: 900, Seq: 17}
	ev.RecordedAt = time.Date(2026, 11, 21, 8, 0, 0, 123456000, time.UTC)
	ev.Metadata = correlation.Metadata{"user_id": "u-1", "remote ip": "10.0.0.1"}
	ev.Metadata.Set(correlation.CorrelationID, "c-1")
	ev.Metadata.Set(correlation.CausationID, "e-0")
	ev.Metadata.Set(correlation.Tenant, "acme")
	ev.Metadata.Set(correlation.Shard, "forged") // the store's shard wins
	return ev
}

func TestMessageRoundTrip(t *testing.T) {
	ev := storedEvent(t)
	m := bus.Encode(ev, "visits", "tenant-a", 16)
	if m.Subject != "sw.visits.tenant-a.5.VisitScheduled" {
		t.Fatalf("subject %s", m.Subject)
	}
	if m.Header.Get(nats.MsgIdHdr) != ev.ID.String() {
		t.Fatalf("Nats-Msg-Id = %q", m.Header.Get(nats.MsgIdHdr))
	}
	for _, k := range correlation.Keys() {
		if k == correlation.TraceParent || k == correlation.TraceState {
			continue // none in this event
		}
		if m.Header.Get(string(k)) == "" {
			t.Errorf("no %s header", k)
		}
	}
	got, addr, err := bus.Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	if addr.Shard != "tenant-a" || got.Metadata.Get(correlation.Shard) != "tenant-a" {
		t.Fatalf("shard %q / %q; want the store's", addr.Shard, got.Metadata.Get(correlation.Shard))
	}
	if got.ID != ev.ID || got.Type != ev.Type || got.Stream != ev.Stream || got.Version != ev.Version ||
		got.Position != ev.Position || !got.RecordedAt.Equal(ev.RecordedAt) || string(got.Data) != string(ev.Data) {
		t.Fatalf("decoded %+v; want %+v", got, ev)
	}
	for _, k := range []string{"user_id", "remote ip", "correlation_id", "causation_id", "tenant"} {
		if got.Metadata[k] != ev.Metadata[k] {
			t.Errorf("metadata %s = %q, want %q", k, got.Metadata[k], ev.Metadata[k])
		}
	}
}

// A metadata header of JSON null carries no application keys; it once
// made Decode write to a nil map.
func TestDecodeNullMetadata(t *testing.T) {
	m := bus.Encode(storedEvent(t), "visits", "tenant-a", 16)
	m.Header.Set(bus.HeaderApplication, "null")
	ev, _, err := bus.Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Metadata.Get(correlation.Shard); got != "tenant-a" {
		t.Fatalf("shard = %q, want tenant-a", got)
	}
}

func TestDecodeRefusesForgedHeaders(t *testing.T) {
	for name, forge := range map[string]func(m *nats.Msg){
		"shard header":   func(m *nats.Msg) { m.Header.Set("shard", "tenant-b") },
		"context header": func(m *nats.Msg) { m.Header.Set("context", "billing") },
		"type header":    func(m *nats.Msg) { m.Header.Set("event_type", "Other") },
		"no shard":       func(m *nats.Msg) { m.Header.Del("shard") },
		"subject":        func(m *nats.Msg) { m.Subject = "sw.visits.tenant-b.5.VisitScheduled" },
		"bad id":         func(m *nats.Msg) { m.Header.Set("event_id", "x'; drop table") },
		"bad version":    func(m *nats.Msg) { m.Header.Set("stream_version", "-1") },
		"smuggled key":   func(m *nats.Msg) { m.Header.Set(bus.HeaderApplication, `{"shard":"tenant-b"}`) },
		"bad metadata":   func(m *nats.Msg) { m.Header.Set(bus.HeaderApplication, `[1]`) },
	} {
		m := bus.Encode(storedEvent(t), "visits", "tenant-a", 16)
		forge(m)
		if _, _, err := bus.Decode(m); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: Decode = %v; want ErrInvalid", name, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := bus.Config{
		Embedded:   bus.Embedded{SyncInterval: "sometimes", Port: 70000},
		Stream:     bus.StreamConfig{Partitions: -1, Storage: "tape", Duplicates: time.Hour, MaxAge: time.Minute},
		Contexts:   map[string]bus.StreamConfig{"Bad Name": {}},
		APITimeout: -time.Second,
	}.Validate()
	for _, want := range []string{"Embedded.SyncInterval", "Embedded.Port", "Stream.Partitions", "Stream.Storage", "Stream.Duplicates", `Contexts["Bad Name"]`, "APITimeout"} {
		if err == nil || !strings.Contains(err.Error(), "bus: config "+want+":") {
			t.Errorf("Validate() = %v; want it to name %s", err, want)
		}
	}
	var ce *bus.ConfigError
	if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &ce) {
		t.Errorf("Validate() = %v; want *bus.ConfigError matching store.ErrInvalid", err)
	}
	if _, err := bus.NewRelay(nil, nil, bus.RelayConfig{BatchSize: -1, Name: "Bad"}); err == nil ||
		!strings.Contains(err.Error(), "RelayConfig.BatchSize") || !strings.Contains(err.Error(), "RelayConfig.Name") {
		t.Errorf("NewRelay with a bad config: %v; want both problems named", err)
	}
	if err := (bus.Config{Embedded: bus.Embedded{SyncInterval: "2m"}}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestStreamProvisioning(t *testing.T) {
	srv := natstest.Start(t, false)
	ctx := context.Background()
	c := connect(t, srv.URL, bus.Config{Contexts: map[string]bus.StreamConfig{"billing": {Partitions: 4, Duplicates: 5 * time.Minute}}})
	s, err := c.ProvisionStream(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "SW_BILLING" || s.Partitions != 4 || s.Duplicates != 5*time.Minute {
		t.Fatalf("stream %+v", s)
	}
	info := s.JetStream().CachedInfo()
	if info.Config.Subjects[0] != "sw.billing.>" || info.Config.Duplicates != 5*time.Minute {
		t.Fatalf("config %+v", info.Config)
	}
	// Another process with the same settings: fine, nothing changes.
	same := connect(t, srv.URL, bus.Config{Contexts: map[string]bus.StreamConfig{"billing": {Partitions: 4, Duplicates: 5 * time.Minute}}})
	if _, err := same.ProvisionStream(ctx, "billing"); err != nil {
		t.Fatal(err)
	}
	// One with other settings: a clear error naming each difference.
	other := connect(t, srv.URL, bus.Config{Stream: bus.StreamConfig{Partitions: 8, Storage: "memory"}})
	_, err = other.ProvisionStream(ctx, "billing")
	var conflict *bus.StreamConflictError
	if !errors.As(err, &conflict) || !strings.Contains(err.Error(), "partitions: stream has 4, configured 8") || !strings.Contains(err.Error(), "storage") {
		t.Fatalf("err = %v; want a StreamConflictError naming partitions and storage", err)
	}
	if _, err := other.ProvisionStream(ctx, "Bad.Name"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("injection-shaped context: %v", err)
	}
	if bus.StreamName("front-desk") != "SW_FRONT_DESK" {
		t.Fatal(bus.StreamName("front-desk"))
	}
}

// The store's default limit and the relay's reserve must fit NATS's
// default max payload, or a store with defaults cannot start its relay.
func TestDefaultLimitsAgree(t *testing.T) {
	if got, natsDefault := store.DefaultMaxEventBytes+bus.EnvelopeReserve, 1<<20; got > natsDefault {
		t.Errorf("DefaultMaxEventBytes + EnvelopeReserve = %d, over NATS's default max payload %d", got, natsDefault)
	}
}
