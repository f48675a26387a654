package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/backoff"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// traceChildEnv makes the test binary run the second hop of
// TestOneTracePerChain in a process of its own.
const traceChildEnv = "SWITCHYARD_HANDLERS_TEST_TRACE_CHILD"

// span is a finished span as the trace child reports it.
type span struct {
	Name    string            `json:"name"`
	Kind    string            `json:"kind"`
	Trace   string            `json:"trace"`
	ID      string            `json:"id"`
	Parent  string            `json:"parent"`
	Attrs   map[string]string `json:"attrs"`
	Links   []string          `json:"links"` // span ids
	Events  []string          `json:"events"`
	Failed  bool              `json:"failed"`
	Process string            `json:"process"`
}

func spansOf(stubs tracetest.SpanStubs, process string) []span {
	out := make([]span, 0, len(stubs))
	for _, s := range stubs {
		sp := span{Name: s.Name, Kind: s.SpanKind.String(), Trace: s.SpanContext.TraceID().String(), ID: s.SpanContext.SpanID().String(),
			Attrs: map[string]string{}, Failed: s.Status.Code.String() == "Error", Process: process}
		if s.Parent.IsValid() {
			sp.Parent = s.Parent.SpanID().String()
		}
		for _, kv := range s.Attributes {
			sp.Attrs[string(kv.Key)] = kv.Value.Emit()
		}
		for _, l := range s.Links {
			sp.Links = append(sp.Links, l.SpanContext.SpanID().String())
		}
		for _, e := range s.Events {
			sp.Events = append(sp.Events, e.Name)
		}
		out = append(out, sp)
	}
	return out
}

// traceChildMain handles the derived "Noted" events in group "second",
// with a span recorder of its own, and prints the spans it recorded as
// JSON lines once the first one is handled.
func traceChildMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "trace child:", err); return 1 }
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	st, err := postgres.Open(ctx, os.Getenv("CHILD_PG"), postgres.Config{Context: "visits", Shard: "tenant-a",
		Schema: os.Getenv("CHILD_PREFIX") + "_a", TracerProvider: tp})
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	reg := sharding.NewRegistry()
	if err := reg.Add(st); err != nil {
		return fail(err)
	}
	conn, err := bus.Connect(ctx, bus.Config{URL: os.Getenv("CHILD_NATS")})
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	handled := make(chan struct{}, 1)
	g := &handlers.Group{Name: "second", Context: "visits"}
	handlers.HandleMessage(g, "see", "Noted", func(ctx context.Context, m handlers.Message) error {
		select {
		case handled <- struct{}{}:
		default:
		}
		return nil
	})
	r, err := handlers.NewRouter(conn, handlers.RouterConfig{Middleware: handlers.Defaults(reg), AckWait: 2 * time.Second, TracerProvider: tp})
	if err != nil {
		return fail(err)
	}
	if err := r.Add(g); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-handled:
	case err := <-done:
		return fail(err)
	case <-time.After(30 * time.Second):
		return fail(errors.New("nothing handled within 30s"))
	}
	cancel()
	if err := <-done; err != nil { // the drain ends the handling span
		return fail(err)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, s := range spansOf(tracetest.SpanStubsFromReadOnlySpans(rec.Ended()), "child") {
		if err := enc.Encode(s); err != nil {
			return fail(err)
		}
	}
	return 0
}

// A chain — a request appends Booked; group "first" handles it and appends
// Noted; group "second", in another process, handles that — is one trace:
// request → append → first process Booked → append → second process
// Noted, each span the parent of the next, with the messaging attributes;
// the relay's batch spans link to the appends.
func TestOneTracePerChain(t *testing.T) {
	f := newFixture(t, "tenant-a")
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	st, reg, c := instrumented(t, f, tp, nil)
	first := &handlers.Group{Name: "first", Context: "visits"}
	handlers.Handle(first, "note", "Booked", note)
	r, err := handlers.NewRouter(c, handlers.RouterConfig{Middleware: handlers.Defaults(reg), AckWait: 2 * time.Second, Logger: logger(t), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(first); err != nil {
		t.Fatal(err)
	}
	background(t, r.Run)
	child := startChild(t, f, "trace", traceChildEnv+"=1")

	ctx, request := tp.Tracer("test").Start(context.Background(), "request")
	ev, err := store.NewEvent("Booked", Booked{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	booked, err := st.Append(ctx, "visit-1", store.NoStream, ev)
	if err != nil {
		t.Fatal(err)
	}
	request.End()

	var spans []span
	for _, line := range childLines(t, child, 60*time.Second) {
		var s span
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("child said %q: %v", line, err)
		}
		spans = append(spans, s)
	}
	settled(t, c, "first")
	spans = append(spans, spansOf(tracetest.SpanStubsFromReadOnlySpans(rec.Ended()), "parent")...)
	checkChain(t, spans, request.SpanContext(), booked[0])
}

// instrumented opens f's tenant-a store reporting to tp and mp, in a
// registry of its own, and runs its relay, reporting to them too, on a new
// connection.
func instrumented(t *testing.T, f *fixture, tp trace.TracerProvider, mp metric.MeterProvider) (*postgres.Store, *sharding.Registry, *bus.Conn) {
	t.Helper()
	st, err := postgres.Open(context.Background(), testURL, postgres.Config{Context: "visits", Shard: "tenant-a", Schema: f.schema("tenant-a"),
		TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := sharding.NewRegistry()
	if err := reg.Add(st); err != nil {
		t.Fatal(err)
	}
	c := connect(t, f.srv.URL)
	relay, err := bus.NewRelay(c, st, bus.RelayConfig{Logger: logger(t), TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	background(t, relay.Run)
	return st, reg, c
}

// note appends a Noted event derived from m, in the handler's
// transaction.
func note(ctx context.Context, v Booked, m handlers.Message) error {
	st, _ := handlers.Store(ctx)
	ev, err := store.NewEvent("Noted", v)
	if err != nil {
		return err
	}
	_, err = st.Append(ctx, "noted-"+m.Event.Stream, store.Any, ev)
	return err
}

// childLines returns what child prints until it exits.
func childLines(t *testing.T, c *child, timeout time.Duration) []string {
	t.Helper()
	var out []string
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-c.out:
			if !ok {
				if err := c.cmd.Wait(); err != nil {
					t.Fatalf("trace child: %v", err)
				}
				return out
			}
			out = append(out, line)
		case <-deadline:
			t.Fatalf("trace child did not finish within %v", timeout)
		}
	}
}

// checkChain checks the tree of spans under request for the chain that
// begins with booked.
func checkChain(t *testing.T, spans []span, request trace.SpanContext, booked store.Event) {
	t.Helper()
	trace := request.TraceID().String()
	step := func(name, kind, parent, process string) span {
		t.Helper()
		for _, s := range spans {
			if s.Name == name && s.Parent == parent && s.Process == process {
				if s.Kind != kind || s.Trace != trace {
					t.Errorf("span %q: kind %s, trace %s; want %s in trace %s", name, s.Kind, s.Trace, kind, trace)
				}
				return s
			}
		}
		t.Fatalf("no span %q with parent %s in process %s among %d spans:\n%s", name, parent, process, len(spans), dump(spans))
		return span{}
	}
	appendBooked := step("append visits", "producer", request.SpanID().String(), "parent")
	firstProcess := step("first process Booked", "consumer", appendBooked.ID, "parent")
	appendNoted := step("append visits", "producer", firstProcess.ID, "parent")
	secondProcess := step("second process Noted", "consumer", appendNoted.ID, "child")

	id, cid := booked.ID.String(), booked.Metadata.Get("correlation_id")
	want := map[*span]map[string]string{
		&appendBooked: {"messaging.system": "nats", "messaging.operation.type": "create", "messaging.message.id": id,
			"switchyard.context": "visits", "switchyard.shard": "tenant-a", "switchyard.stream": "visit-1",
			"switchyard.event_type": "Booked", "switchyard.correlation_id": cid},
		&firstProcess: {"messaging.system": "nats", "messaging.operation.type": "process", "messaging.message.id": id,
			"messaging.consumer.group.name": "first", "switchyard.context": "visits", "switchyard.shard": "tenant-a",
			"switchyard.stream": "visit-1", "switchyard.event_type": "Booked", "switchyard.correlation_id": cid, "switchyard.outcome": "handled"},
		&appendNoted: {"switchyard.stream": "noted-visit-1", "switchyard.event_type": "Noted", "switchyard.correlation_id": cid,
			"switchyard.causation_id": id},
		&secondProcess: {"messaging.consumer.group.name": "second", "switchyard.event_type": "Noted", "switchyard.correlation_id": cid,
			"switchyard.causation_id": id, "switchyard.outcome": "handled"},
	}
	for s, attrs := range want {
		for k, v := range attrs {
			if s.Attrs[k] != v {
				t.Errorf("span %q (%s): %s = %q, want %q", s.Name, s.Process, k, s.Attrs[k], v)
			}
		}
	}
	if d := firstProcess.Attrs["messaging.destination.name"]; len(d) < len("sw.visits.tenant-a.") || d[:len("sw.visits.tenant-a.")] != "sw.visits.tenant-a." {
		t.Errorf("first process: messaging.destination.name = %q, want the event's subject", d)
	}
	linked := map[string]bool{}
	for _, s := range spans {
		if s.Name == "publish visits" && s.Kind == "client" {
			for _, l := range s.Links {
				linked[l] = true
			}
		}
	}
	if !linked[appendBooked.ID] || !linked[appendNoted.ID] {
		t.Errorf("the relay's batch spans link to %v; want both appends (%s, %s)", linked, appendBooked.ID, appendNoted.ID)
	}
}

func dump(spans []span) string {
	out := ""
	for _, s := range spans {
		out += fmt.Sprintf("  %s %q kind=%s id=%s parent=%s trace=%s\n", s.Process, s.Name, s.Kind, s.ID, s.Parent, s.Trace)
	}
	return out
}

// After a known workload the metrics count what happened: N appended by
// the test and one derived per event handled, every one published; the
// poison event dead-lettered at once, the flaky one retried once; three
// events published again under new message ids skipped by the inbox; an
// idempotent replay of an append not counted.
func TestMetricsCountWhatHappened(t *testing.T) {
	f := newFixture(t, "tenant-a")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	st, reg, c := instrumented(t, f, nil, mp)

	const n = 20
	var flaky counter
	g := &handlers.Group{Name: "counted", Context: "visits"}
	handlers.Handle(g, "note", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		switch {
		case v.Poison:
			return handlers.Permanent(errors.New("poison"))
		case v.Note == "flaky" && flaky.add(m.Event.ID) == 1:
			return errors.New("flaky, once")
		}
		return note(ctx, v, m)
	})
	r, err := handlers.NewRouter(c, handlers.RouterConfig{Middleware: handlers.Defaults(reg), AckWait: 2 * time.Second,
		Backoff: backoff.Config{Max: 100 * time.Millisecond}, Logger: logger(t), MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(g); err != nil {
		t.Fatal(err)
	}
	background(t, r.Run)

	var evs []store.Event
	for i := range n {
		b := Booked{N: i, Poison: i == 7, Note: map[bool]string{true: "flaky"}[i == 11]}
		ev, err := store.NewEvent("Booked", b)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := st.Append(context.Background(), fmt.Sprintf("metered-%d", i), store.NoStream, ev)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, stored...)
	}
	// An idempotent replay of the first append writes nothing, and counts
	// as nothing appended.
	again := store.Event{ID: evs[0].ID, Type: evs[0].Type, Data: evs[0].Data}
	if _, err := st.Append(context.Background(), evs[0].Stream, store.NoStream, again); err != nil {
		t.Fatalf("replay: %v", err)
	}
	settled(t, c, "counted")
	for i, ev := range evs[:3] {
		m := bus.Encode(ev, "visits", "tenant-a", bus.DefaultPartitions)
		m.Header.Set(jetstream.MsgIDHeader, "again-"+strconv.Itoa(i))
		publishRaw(t, c, m)
	}
	settled(t, c, "counted")

	const handled, deadLettered, duplicates = n - 1, 1, 3
	want := map[string]int64{
		"switchyard.events.appended":                    n + handled,
		"switchyard.relay.published":                    n + handled,
		"messaging.process.duration{handled}":           handled,
		"messaging.process.duration{retry}":             1,
		"messaging.process.duration{duplicate}":         duplicates,
		"messaging.process.duration{dead_letter}":       deadLettered,
		"switchyard.handler.retries{failure}":           1,
		"switchyard.handler.dead_letters":               deadLettered,
		"switchyard.inbox.duplicates":                   duplicates,
		"switchyard.relay.quarantined":                  0,
		"switchyard.consumer.oldest_unhandled.age(max)": 0,
		"switchyard.relay.lag(max)":                     0, // caught up
	}
	// The lag is 0 once the leader, having published everything, waits
	// for commits: a moment after the last ack. The counts are checked in
	// that same collection: a later one may catch an idle poll's read,
	// a millisecond behind while it runs.
	var got map[string]int64
	waitFor(t, "the relay to publish the derived events and wait", 20*time.Second, func() bool {
		got = collect(t, reader)
		return got["switchyard.relay.published"] == n+handled && got["switchyard.relay.lag(max)"] == 0
	})
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	waitFor(t, "a partition counted as owned", 10*time.Second, func() bool {
		return collect(t, reader)["switchyard.consumer.partitions.owned"] > 0
	})
}

// collect reads every metric: sums and gauges by name, histograms' counts
// by name{outcome}, and sums split by reason as name{reason}.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += p.Value
					if r, ok := p.Attributes.Value("switchyard.reason"); ok {
						out[m.Name+"{"+r.AsString()+"}"] += p.Value
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += p.Value
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[m.Name+"(max)"] = max(out[m.Name+"(max)"], int64(p.Value*1000))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					o, _ := p.Attributes.Value("switchyard.outcome")
					out[m.Name+"{"+o.AsString()+"}"] += int64(p.Count)
				}
			}
		}
	}
	return out
}
