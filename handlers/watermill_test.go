package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/store"
)

// wmCtxKey marks the ctx a test passes to a chain, to see it arrive.
type wmCtxKey struct{}

// wmMessage is a message as a Router hands it over.
func wmMessage() handlers.Message {
	id := uuid.MustParse("0190a5e2-7c4e-7b3a-9d5f-2a6b8c1d4e5f")
	return handlers.Message{
		Event: store.Event{
			ID:   id,
			Type: "VisitBooked",
			Data: []byte(`{"visit":"v-7"}`),
			Metadata: correlation.Metadata{
				string(correlation.EventID): id.String(),
				string(correlation.Stream):  "Visit-v-7",
				string(correlation.Shard):   "tenant-a",
				"channel":                   "web",
			},
			Stream:  "Visit-v-7",
			Version: 3,
		},
		Shard:   "tenant-a",
		Group:   "billing-charges",
		Attempt: 1,
	}
}

// wmCall is what a Switchyard handler behind a watermill middleware saw.
type wmCall struct {
	ctx context.Context
	m   handlers.Message
}

// wmRecorder is a Switchyard handler that records its calls and returns
// the errors of errs in turn (nil once they run out).
type wmRecorder struct {
	mu    sync.Mutex
	calls []wmCall
	errs  []error
}

func (r *wmRecorder) handle(ctx context.Context, m handlers.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, wmCall{ctx, m})
	if len(r.calls) <= len(r.errs) {
		return r.errs[len(r.calls)-1]
	}
	return nil
}

func (r *wmRecorder) seen() []wmCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wmCall(nil), r.calls...)
}

// sameMessage reports how got differs from want, metadata included.
func sameMessage(got, want handlers.Message) error {
	if got.Event.ID != want.Event.ID || got.Event.Type != want.Event.Type || got.Event.Stream != want.Event.Stream ||
		got.Event.Version != want.Event.Version || string(got.Event.Data) != string(want.Event.Data) ||
		got.Shard != want.Shard || got.Group != want.Group || got.Attempt != want.Attempt {
		return fmt.Errorf("message %+v, want %+v", got, want)
	}
	if !maps.Equal(got.Event.Metadata, want.Event.Metadata) {
		return fmt.Errorf("metadata %v, want %v", got.Event.Metadata, want.Event.Metadata)
	}
	return nil
}

func TestWatermillMiddlewareSeesTheMessage(t *testing.T) {
	errBoom := errors.New("boom")
	rec := &wmRecorder{errs: []error{errBoom}}
	var seen *message.Message
	var seenCtx context.Context
	mw := func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			seen, seenCtx = msg, msg.Context()
			out, err := h(msg)
			if err != nil {
				return out, fmt.Errorf("watermill middleware saw: %w", err)
			}
			return out, nil
		}
	}
	h := handlers.Chain(rec.handle, handlers.Watermill(mw))
	m := wmMessage()
	ctx := context.WithValue(t.Context(), wmCtxKey{}, "outer")

	err := h(ctx, m)
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "watermill middleware saw") {
		t.Fatalf("error %v, want boom wrapped by the watermill middleware", err)
	}
	if seen == nil {
		t.Fatal("the watermill middleware did not run")
	}
	if seen.UUID != m.Event.ID.String() || string(seen.Payload) != string(m.Event.Data) {
		t.Errorf("watermill message UUID %q payload %s, want %s %s", seen.UUID, seen.Payload, m.Event.ID, m.Event.Data)
	}
	if !maps.Equal(map[string]string(seen.Metadata), map[string]string(m.Event.Metadata)) {
		t.Errorf("watermill metadata %v, want %v", seen.Metadata, m.Event.Metadata)
	}
	if seenCtx.Value(wmCtxKey{}) != "outer" {
		t.Error("the watermill message's context is not the chain's ctx")
	}
	calls := rec.seen()
	if len(calls) != 1 {
		t.Fatalf("handler called %d times, want 1", len(calls))
	}
	if err := sameMessage(calls[0].m, m); err != nil {
		t.Error(err)
	}
	if calls[0].ctx.Value(wmCtxKey{}) != "outer" {
		t.Error("the handler's ctx is not derived from the chain's")
	}
}

func TestWatermillMiddlewareErrors(t *testing.T) {
	errRefused := errors.New("refused by watermill middleware")
	for _, tc := range []struct {
		name      string
		mw        message.HandlerMiddleware
		want      error // errors.Is the result, when set
		permanent bool
	}{
		{
			name: "its own error, without calling on",
			mw: func(message.HandlerFunc) message.HandlerFunc {
				return func(*message.Message) ([]*message.Message, error) { return nil, errRefused }
			},
			want: errRefused,
		},
		{
			name:      "nil middleware",
			permanent: true,
		},
		{
			name:      "nil handler from the middleware",
			mw:        func(message.HandlerFunc) message.HandlerFunc { return nil },
			permanent: true,
		},
		{
			name: "context dropped by passing a copy on",
			mw: func(h message.HandlerFunc) message.HandlerFunc {
				return func(msg *message.Message) ([]*message.Message, error) { return h(msg.Copy()) }
			},
			permanent: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &wmRecorder{}
			err := handlers.Chain(rec.handle, handlers.Watermill(tc.mw))(t.Context(), wmMessage())
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if got := handlers.IsPermanent(err); got != tc.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tc.permanent)
			}
			if n := len(rec.seen()); n != 0 {
				t.Errorf("handler called %d times, want 0", n)
			}
		})
	}
}

func TestWatermillTimeoutReachesHandler(t *testing.T) {
	rec := &wmRecorder{}
	h := handlers.Chain(rec.handle, handlers.Watermill(middleware.Timeout(time.Hour)))
	start := time.Now()
	if err := h(t.Context(), wmMessage()); err != nil {
		t.Fatal(err)
	}
	calls := rec.seen()
	if len(calls) != 1 {
		t.Fatalf("handler called %d times, want 1", len(calls))
	}
	dl, ok := calls[0].ctx.Deadline()
	if !ok {
		t.Fatal("the handler's ctx has no deadline: middleware.Timeout's context was not passed on")
	}
	if dl.Before(start.Add(time.Hour)) || dl.After(time.Now().Add(time.Hour)) {
		t.Errorf("deadline %v after the call, want an hour", dl.Sub(start))
	}
	if calls[0].ctx.Err() == nil {
		t.Error("the handler's ctx outlived middleware.Timeout's call: it is not the timeout's ctx")
	}
}

func TestWatermillRetry(t *testing.T) {
	errFlaky := errors.New("flaky")
	retry := middleware.Retry{
		MaxRetries:      5,
		InitialInterval: time.Millisecond,
		MaxInterval:     time.Millisecond,
		Multiplier:      1,
		ShouldRetry:     func(p middleware.RetryParams) bool { return !handlers.IsPermanent(p.Err) },
	}
	// forge changes the watermill message, which later attempts must not see.
	forge := func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			msg.UUID = "forged"
			msg.Payload = []byte(`{"visit":"forged"}`)
			msg.Metadata.Set(string(correlation.Shard), "tenant-b")
			return h(msg)
		}
	}
	for _, tc := range []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   error
	}{
		{"fails twice, then succeeds", []error{errFlaky, errFlaky}, 3, nil},
		{"fails every time", []error{errFlaky, errFlaky, errFlaky, errFlaky, errFlaky, errFlaky, errFlaky}, 6, errFlaky},
		{"permanent error, not retried", []error{handlers.Permanent(errFlaky)}, 1, errFlaky},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &wmRecorder{errs: tc.errs}
			m := wmMessage()
			h := handlers.Chain(rec.handle, handlers.Watermill(retry.Middleware), handlers.Watermill(forge))
			err := h(t.Context(), m)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			calls := rec.seen()
			if len(calls) != tc.wantCalls {
				t.Fatalf("handler called %d times, want %d", len(calls), tc.wantCalls)
			}
			for i, c := range calls {
				if err := sameMessage(c.m, wmMessage()); err != nil {
					t.Errorf("attempt %d: %v", i+1, err)
				}
			}
			if err := sameMessage(m, wmMessage()); err != nil {
				t.Errorf("the caller's message changed: %v", err)
			}
		})
	}
}

func TestWatermillRecoverer(t *testing.T) {
	h := handlers.Chain(func(context.Context, handlers.Message) error { panic("kaput") },
		handlers.Watermill(middleware.Recoverer))
	err := h(t.Context(), wmMessage())
	var pe middleware.RecoveredPanicError
	if !errors.As(err, &pe) || pe.V != "kaput" {
		t.Errorf("error %v, want a RecoveredPanicError of kaput", err)
	}
}

func TestWatermillMiddlewareAppliedOnce(t *testing.T) {
	var mu sync.Mutex
	wraps, runs := 0, 0
	counting := func(h message.HandlerFunc) message.HandlerFunc {
		mu.Lock()
		wraps++
		mu.Unlock()
		return func(msg *message.Message) ([]*message.Message, error) {
			mu.Lock()
			runs++
			mu.Unlock()
			return h(msg)
		}
	}
	rec := &wmRecorder{}
	h := handlers.Chain(rec.handle, handlers.Watermill(counting))
	for range 3 {
		if err := h(t.Context(), wmMessage()); err != nil {
			t.Fatal(err)
		}
	}
	if wraps != 1 || runs != 3 || len(rec.seen()) != 3 {
		t.Errorf("middleware applied %d times and run %d times, handler called %d times; want 1, 3, 3", wraps, runs, len(rec.seen()))
	}
}

// wmMetadata is the metadata of an event published to watermill.
func wmMetadata(id uuid.UUID) message.Metadata {
	return message.Metadata{
		string(correlation.EventID):       id.String(),
		string(correlation.EventType):     "VisitBooked",
		string(correlation.Stream):        "Visit-v-7",
		string(correlation.StreamVersion): "3",
		string(correlation.Position):      "1042:7",
		string(correlation.Context):       "visits",
		string(correlation.Shard):         "tenant-a",
		string(correlation.Tenant):        "acme",
		string(correlation.CorrelationID): "0190a5e2-0000-7000-8000-000000000001",
		string(correlation.RecordedAt):    "2026-03-01T10:20:30.123456789Z",
		"channel":                         "web",
	}
}

func TestWatermillHandlerDecodes(t *testing.T) {
	id := uuid.MustParse("0190a5e2-7c4e-7b3a-9d5f-2a6b8c1d4e5f")
	other := uuid.MustParse("0190a5e2-1111-7222-8333-444455556666")
	for _, tc := range []struct {
		name   string
		uuid   string
		change func(message.Metadata)
		bad    string // the key and value the error must name; "" when the message is good
		value  string
		wantID uuid.UUID
	}{
		{name: "good", uuid: other.String(), wantID: id},
		{name: "event_id missing, UUID taken", uuid: other.String(), change: func(md message.Metadata) { delete(md, string(correlation.EventID)) }, wantID: other},
		{name: "event_id missing, UUID not one", uuid: "not-a-uuid", change: func(md message.Metadata) { delete(md, string(correlation.EventID)) }, bad: "event_id", value: "not-a-uuid"},
		{name: "event_id bad", change: func(md message.Metadata) { md.Set(string(correlation.EventID), "42") }, bad: "event_id", value: "42"},
		{name: "event_type missing", change: func(md message.Metadata) { delete(md, string(correlation.EventType)) }, bad: "event_type", value: `""`},
		{name: "event_type bad", change: func(md message.Metadata) { md.Set(string(correlation.EventType), "Visit.Booked") }, bad: "event_type", value: "Visit.Booked"},
		{name: "stream missing", change: func(md message.Metadata) { delete(md, string(correlation.Stream)) }, bad: "stream", value: `""`},
		{name: "stream_version bad", change: func(md message.Metadata) { md.Set(string(correlation.StreamVersion), "seven") }, bad: "stream_version", value: "seven"},
		{name: "stream_version negative", change: func(md message.Metadata) { md.Set(string(correlation.StreamVersion), "-1") }, bad: "stream_version", value: "-1"},
		{name: "position bad", change: func(md message.Metadata) { md.Set(string(correlation.Position), "1042") }, bad: "position", value: "1042"},
		{name: "recorded_at bad", change: func(md message.Metadata) { md.Set(string(correlation.RecordedAt), "yesterday") }, bad: "recorded_at", value: "yesterday"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &wmRecorder{}
			fn, err := handlers.WatermillHandler(rec.handle, "billing-charges", "billing")
			if err != nil {
				t.Fatal(err)
			}
			msg := message.NewMessage(tc.uuid, []byte(`{"visit":"v-7"}`))
			msg.Metadata = wmMetadata(id)
			if tc.change != nil {
				tc.change(msg.Metadata)
			}
			err = fn(msg)
			calls := rec.seen()
			if tc.bad != "" {
				if err == nil {
					t.Fatal("no error")
				}
				if !handlers.IsPermanent(err) || !errors.Is(err, store.ErrInvalid) {
					t.Errorf("error %v: permanent %v, invalid %v; want both", err, handlers.IsPermanent(err), errors.Is(err, store.ErrInvalid))
				}
				if !strings.Contains(err.Error(), "metadata "+tc.bad) || !strings.Contains(err.Error(), tc.value) {
					t.Errorf("error %q does not name %s and %s", err, tc.bad, tc.value)
				}
				if len(calls) != 0 {
					t.Errorf("handler called %d times, want 0", len(calls))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(calls) != 1 {
				t.Fatalf("handler called %d times, want 1", len(calls))
			}
			got := calls[0].m
			if got.Event.ID != tc.wantID || got.Event.Metadata.Get(correlation.EventID) != tc.wantID.String() {
				t.Errorf("ID %s, metadata event_id %q, want %s", got.Event.ID, got.Event.Metadata.Get(correlation.EventID), tc.wantID)
			}
		})
	}
}

func TestWatermillHandlerConfig(t *testing.T) {
	noop := func(context.Context, handlers.Message) error { return nil }
	for _, tc := range []struct {
		name         string
		h            handlers.Handler
		group        string
		groupContext string
		want         []string // in the error
	}{
		{"good", noop, "billing-charges", "billing", nil},
		{"nil handler", nil, "billing-charges", "billing", []string{"nil handler"}},
		{"all wrong", nil, "", "Bad Context", []string{"nil handler", "group", "context"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn, err := handlers.WatermillHandler(tc.h, tc.group, tc.groupContext)
			if tc.want == nil {
				if err != nil || fn == nil {
					t.Fatalf("WatermillHandler: %v", err)
				}
				return
			}
			if err == nil || fn != nil {
				t.Fatalf("WatermillHandler: error %v, handler %v; want an error and no handler", err, fn != nil)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// wmRouter runs a watermill router with fn on topic "visits" of a
// gochannel Pub/Sub, and a poison queue for permanent errors on
// "visits.poison", whose messages it returns. Both stop at cleanup.
func wmRouter(t *testing.T, fn message.NoPublishHandlerFunc) (*gochannel.GoChannel, <-chan *message.Message) {
	t.Helper()
	logger := watermill.NopLogger{}
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, logger)
	ctx, cancel := context.WithCancel(context.Background())
	poison, err := pubsub.Subscribe(ctx, "visits.poison")
	if err != nil {
		t.Fatal(err)
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		t.Fatal(err)
	}
	pq, err := middleware.PoisonQueueWithFilter(pubsub, "visits.poison", handlers.IsPermanent)
	if err != nil {
		t.Fatal(err)
	}
	r.AddMiddleware(pq)
	r.AddConsumerHandler("billing-charges", "visits", pubsub, fn)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("closing the router: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
		cancel()
		if err := pubsub.Close(); err != nil {
			t.Errorf("closing the pubsub: %v", err)
		}
	})
	select {
	case <-r.Running():
	case err := <-done:
		t.Fatalf("router stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("router not running after 10s")
	}
	return pubsub, poison
}

func TestWatermillRouter(t *testing.T) {
	type handled struct {
		m      handlers.Message
		cause  correlation.Metadata
		caused bool
		app    map[string]string
		hname  string
	}
	got := make(chan handled, 8)
	record := func(ctx context.Context, m handlers.Message) error {
		cause, ok := correlation.FromContext(ctx)
		got <- handled{m, cause, ok, correlation.Values(ctx), message.HandlerNameFromCtx(ctx)}
		return nil
	}
	fn, err := handlers.WatermillHandler(handlers.Chain(record, handlers.Recover(), handlers.Correlate()), "billing-charges", "billing")
	if err != nil {
		t.Fatal(err)
	}
	pubsub, poison := wmRouter(t, fn)

	badID, goodID := uuid.New(), uuid.New()
	bad := message.NewMessage(badID.String(), []byte(`{"visit":"v-6"}`))
	bad.Metadata = wmMetadata(badID)
	bad.Metadata.Set(string(correlation.StreamVersion), "seven")
	good := message.NewMessage(uuid.NewString(), []byte(`{"visit":"v-7"}`))
	good.Metadata = wmMetadata(goodID)
	if err := pubsub.Publish("visits", bad, good); err != nil {
		t.Fatal(err)
	}

	var h handled
	select {
	case h = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the good message was not handled within 10s")
	}
	var p *message.Message
	select {
	case p = <-poison:
		p.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("the malformed message did not reach the poison queue within 10s (its error is not permanent?)")
	}
	select {
	case extra := <-got:
		t.Fatalf("handler called again, with %s", extra.m.Event.ID)
	case <-time.After(50 * time.Millisecond):
	}

	if p.UUID != badID.String() {
		t.Errorf("poisoned %s, want the malformed %s", p.UUID, badID)
	}
	if reason := p.Metadata.Get(middleware.ReasonForPoisonedKey); !strings.Contains(reason, "metadata stream_version") || !strings.Contains(reason, "seven") {
		t.Errorf("poison reason %q does not name stream_version and its value", reason)
	}

	m := h.m
	recorded, _ := time.Parse(time.RFC3339Nano, "2026-03-01T10:20:30.123456789Z")
	if m.Event.ID != goodID || m.Event.Type != "VisitBooked" || m.Event.Stream != "Visit-v-7" || m.Event.Version != 3 ||
		m.Event.Position != (store.Position{Commit: 1042, Seq: 7}) || !m.Event.RecordedAt.Equal(recorded) ||
		string(m.Event.Data) != `{"visit":"v-7"}` {
		t.Errorf("event %+v", m.Event)
	}
	if m.Source != "visits" || m.Shard != "tenant-a" || m.Group != "billing-charges" || m.Context != "billing" || m.Attempt != 1 {
		t.Errorf("envelope: source %q shard %q group %q context %q attempt %d", m.Source, m.Shard, m.Group, m.Context, m.Attempt)
	}
	if !maps.Equal(m.Event.Metadata, correlation.Metadata(wmMetadata(goodID))) {
		t.Errorf("metadata %v, want %v", m.Event.Metadata, wmMetadata(goodID))
	}
	if !h.caused || !maps.Equal(h.cause, m.Event.Metadata) {
		t.Errorf("Correlate: ctx carries %v (%v), want the message's metadata", h.cause, h.caused)
	}
	if h.app["channel"] != "web" {
		t.Errorf("application metadata in ctx %v, want channel=web", h.app)
	}
	if h.hname != "billing-charges" {
		t.Errorf("handler name in ctx %q: ctx is not the watermill message's", h.hname)
	}
}

// A watermill middleware of your own and watermill's Timeout, in a
// Switchyard chain: the first sees the event as a watermill message, the
// second's deadline reaches the handler.
func ExampleWatermill() {
	audit := func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			fmt.Println("watermill:", msg.UUID, string(msg.Payload), msg.Metadata.Get(string(correlation.Stream)))
			return h(msg)
		}
	}
	h := handlers.Chain(
		func(ctx context.Context, m handlers.Message) error {
			_, ok := ctx.Deadline()
			fmt.Println("handler:", m.Event.Type, "with a deadline:", ok)
			return nil
		},
		handlers.Watermill(audit),
		handlers.Watermill(middleware.Timeout(time.Second)),
	)
	m := handlers.Message{Event: store.Event{
		ID:       uuid.MustParse("0190a5e2-7c4e-7b3a-9d5f-2a6b8c1d4e5f"),
		Type:     "VisitBooked",
		Data:     []byte(`{"visit":"v-7"}`),
		Metadata: correlation.Metadata{string(correlation.Stream): "Visit-v-7"},
		Stream:   "Visit-v-7",
	}, Attempt: 1}
	fmt.Println("error:", h(context.Background(), m))
	// Output:
	// watermill: 0190a5e2-7c4e-7b3a-9d5f-2a6b8c1d4e5f {"visit":"v-7"} Visit-v-7
	// handler: VisitBooked with a deadline: true
	// error: <nil>
}
