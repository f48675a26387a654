package backend

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/switchyard-go/switchyard/internal/instrument"
	"github.com/switchyard-go/switchyard/internal/touch"
	"github.com/switchyard-go/switchyard/store"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry is a store's instruments: a producer span per append, the
// parent of the trace context its events store, and the count of events
// appended. Build it with NewTelemetry; it is safe for concurrent use.
type Telemetry struct {
	contextName, shard string // the store's, for touches
	tracer             trace.Tracer
	appended           metric.Int64Counter
	add                []metric.AddOption
	start              []trace.SpanStartOption
	name               string
}

// NewTelemetry returns the instruments of store (contextName, shard); nil
// providers mean the global ones.
func NewTelemetry(tp trace.TracerProvider, mp metric.MeterProvider, contextName, shard string) *Telemetry {
	// The name is a constant the API accepts: no error to handle.
	appended, _ := instrument.Meter(mp).Int64Counter("switchyard.events.appended",
		metric.WithUnit("{event}"), metric.WithDescription("Events written to a store: in a transaction Transact began, once it commits; in one the caller began (WithTx), when appended."))
	return &Telemetry{
		tracer:   instrument.Tracer(tp),
		appended: appended,
		add:      []metric.AddOption{metric.WithAttributeSet(instrument.Store(contextName, shard))},
		start: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(instrument.System,
			instrument.MessagingOperationType.String("create"), instrument.MessagingOperationName.String("append"),
			instrument.Context.String(contextName), instrument.Shard.String(shard))},
		name:        "append " + contextName,
		contextName: contextName,
		shard:       shard,
	}
}

// Append runs fn, an append of n events to stream recorded at its now, in
// a producer span in the caller's trace: events stamped with fn's ctx carry
// the span as their traceparent. The events fn wrote — those recorded at
// now: an idempotent replay returns events an earlier append wrote — count
// as appended now, or, in a transaction that Transaction began, when it
// commits.
func (t *Telemetry) Append(ctx context.Context, stream string, n int, fn func(ctx context.Context, now time.Time) ([]store.Event, error)) ([]store.Event, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	ctx, span := t.tracer.Start(ctx, t.name, t.start...)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(instrument.Stream.String(stream))
		if n > 1 {
			span.SetAttributes(instrument.MessagingBatchCount.Int(n))
		}
	}
	out, err := fn(ctx, now)
	if err != nil {
		if span.IsRecording() {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		return out, err
	}
	if span.IsRecording() && len(out) > 0 {
		span.SetAttributes(instrument.Identity(out[0].Metadata)...)
	}
	t.Count(ctx, out, now)
	if touch.On(ctx) {
		touch.Note(ctx, t.contextName, t.shard, "append to "+strconv.Quote(stream), true, false)
	}
	return out, nil
}

// Count counts the events of out recorded at now: those an append wrote,
// not those of an earlier one it replayed.
func (t *Telemetry) Count(ctx context.Context, out []store.Event, now time.Time) {
	written := 0
	for i := range out {
		if out[i].RecordedAt.Equal(now) {
			written++
		}
	}
	t.Wrote(ctx, written)
}

// Wrote counts n events written: now, or, in a transaction that
// Transaction began, when it commits.
func (t *Telemetry) Wrote(ctx context.Context, n int) {
	if n == 0 {
		return
	}
	if tally, ok := ctx.Value(tallyKey{t}).(*atomic.Int64); ok {
		tally.Add(int64(n))
		return
	}
	t.appended.Add(ctx, int64(n), t.add...)
}

type tallyKey struct{ t *Telemetry }

// Transaction returns ctx for a transaction of the store: appends made
// with it are counted by Committed.
func (t *Telemetry) Transaction(ctx context.Context) context.Context {
	return context.WithValue(ctx, tallyKey{t}, new(atomic.Int64))
}

// Savepoint returns ctx for a savepoint inside the transaction of ctx,
// and release, to call once the savepoint is released: what was appended
// under it then counts with the transaction (or at once, in a transaction
// the application began itself, which has no tally). A savepoint rolled
// back counts nothing.
func (t *Telemetry) Savepoint(ctx context.Context) (context.Context, func()) {
	parent, _ := ctx.Value(tallyKey{t}).(*atomic.Int64)
	n := new(atomic.Int64)
	return context.WithValue(ctx, tallyKey{t}, n), func() {
		switch {
		case n.Load() == 0:
		case parent != nil:
			parent.Add(n.Load())
		default:
			t.appended.Add(ctx, n.Load(), t.add...)
		}
	}
}

// Committed counts the events appended in the transaction of ctx (from
// Transaction), now committed.
func (t *Telemetry) Committed(ctx context.Context) {
	if n, ok := ctx.Value(tallyKey{t}).(*atomic.Int64); ok && n.Load() > 0 {
		t.appended.Add(ctx, n.Load(), t.add...)
	}
}
