package handlers

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/internal/instrument"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// processOptions are the start options of group's consumer spans.
func processOptions(group string) []trace.SpanStartOption {
	return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(instrument.System,
		instrument.MessagingOperationType.String("process"), instrument.MessagingOperationName.String("process"),
		instrument.MessagingConsumerGroup.String(group))}
}

// startProcess opens the consumer span of one attempt at m, "<group>
// process <event type>", with opts (processOptions of m's group), child of
// the trace context the message carries (traceparent, tracestate), so
// that one trace follows a correlation chain across processes; events
// appended under it carry it on.
func startProcess(ctx context.Context, tracer trace.Tracer, opts []trace.SpanStartOption, m Message) (context.Context, trace.Span) {
	parent := propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(m.Event.Metadata))
	ctx, span := tracer.Start(parent, m.Group+" process "+m.Event.Type, opts...)
	if span.IsRecording() {
		span.SetAttributes(instrument.Event(m.Event.Metadata)...)
		span.SetAttributes(instrument.MessagingDestination.String(m.Subject))
		if m.Attempt > 1 {
			span.SetAttributes(instrument.Attempt.Int(m.Attempt))
		}
	}
	return ctx, span
}

// fail marks span failed with err.
func fail(span trace.Span, err error) {
	if span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

// Trace runs the rest of the chain in the consumer span the Router opens
// for every attempt itself (see the package doc's "Telemetry"): put it in
// chains that run outside a Router, as under WatermillHandler. In a
// Router's chain it does nothing. tp nil means the global provider.
func Trace(tp trace.TracerProvider) Middleware {
	tracer := instrument.Tracer(tp)
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			if a, ok := ctx.Value(attemptKey{}).(*attempt); ok && a.of(m) {
				return next(ctx, m) // in the Router's span already
			}
			ctx, span := startProcess(ctx, tracer, processOptions(m.Group), m)
			defer span.End()
			err := next(ctx, m)
			if err != nil {
				fail(span, err)
			}
			return err
		}
	}
}

// Outcomes of an attempt, the switchyard.outcome of its span and of the
// messaging.process.duration it records.
const (
	outcomeHandled    = "handled"
	outcomeDuplicate  = "duplicate"   // the inbox knew it: skipped
	outcomeRetry      = "retry"       // failed; tried again after a backoff
	outcomeWait       = "wait"        // infrastructure out of reach; tried again
	outcomeDeadLetter = "dead_letter" // dead-lettered
	outcomeParked     = "parked"      // parked behind its stream's dead letter
	outcomeDraining   = "draining"    // handed back to JetStream as the router stops
)

// instruments are a Router's spans and metrics.
type instruments struct {
	tracer      trace.Tracer
	duration    metric.Float64Histogram
	retries     metric.Int64Counter
	deadLetters metric.Int64Counter
	parked      metric.Int64Counter
	duplicates  metric.Int64Counter
	owned       metric.Int64ObservableGauge
	oldest      metric.Float64ObservableGauge
	meter       metric.Meter
	sets        sync.Map // setKey → *options
	nSets       atomic.Int64
}

func newInstruments(tp trace.TracerProvider, mp metric.MeterProvider) *instruments {
	m := instrument.Meter(mp)
	// The names are constants the API accepts: no errors to handle.
	in := &instruments{tracer: instrument.Tracer(tp), meter: m}
	in.duration, _ = m.Float64Histogram("messaging.process.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of handling one delivery, by group, event type and outcome."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	in.retries, _ = m.Int64Counter("switchyard.handler.retries", metric.WithUnit("{attempt}"),
		metric.WithDescription("Deliveries tried again: switchyard.reason failure (counts toward MaxAttempts) or unavailable (infrastructure out of reach)."))
	in.deadLetters, _ = m.Int64Counter("switchyard.handler.dead_letters", metric.WithUnit("{message}"),
		metric.WithDescription("Messages dead-lettered."))
	in.parked, _ = m.Int64Counter("switchyard.handler.parked", metric.WithUnit("{message}"),
		metric.WithDescription("Messages parked behind their stream's dead letter."))
	in.duplicates, _ = m.Int64Counter("switchyard.inbox.duplicates", metric.WithUnit("{message}"),
		metric.WithDescription("Deliveries the inbox skipped: the group had handled the event already."))
	in.owned, _ = m.Int64ObservableGauge("switchyard.consumer.partitions.owned", metric.WithUnit("{partition}"),
		metric.WithDescription("Partitions of a group pinned to this replica."))
	in.oldest, _ = m.Float64ObservableGauge("switchyard.consumer.oldest_unhandled.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest message of a group this replica holds and has not settled (0: none)."))
	return in
}

type setKey struct {
	group, eventType string
	key              attribute.Key
	value            string
}

// options are the measurement options of one attribute set, made once.
type options struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// maxSets bounds the attribute sets kept made: event types come from
// subjects, and past this many sets are made each time.
const maxSets = 4096

// set is the attribute set of group, eventType (when not "") and key =
// value (when key is not ""), made once.
func (in *instruments) set(group, eventType string, key attribute.Key, value string) *options {
	k := setKey{group, eventType, key, value}
	if o, ok := in.sets.Load(k); ok {
		return o.(*options)
	}
	kvs := []attribute.KeyValue{instrument.System, instrument.MessagingConsumerGroup.String(group)}
	if eventType != "" {
		kvs = append(kvs, instrument.EventType.String(eventType))
	}
	if key != "" {
		kvs = append(kvs, key.String(value))
	}
	set := metric.WithAttributeSet(attribute.NewSet(kvs...))
	o := &options{add: []metric.AddOption{set}, record: []metric.RecordOption{set}}
	if in.nSets.Load() >= maxSets {
		return o
	}
	got, loaded := in.sets.LoadOrStore(k, o)
	if !loaded {
		in.nSets.Add(1)
	}
	return got.(*options)
}

// observe reports, for each group running, the partitions this replica
// owns and the age of the oldest message it has not settled, until the
// returned function is called.
func (in *instruments) observe(runs []*groupRun) (stop func()) {
	reg, err := in.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := time.Now()
		for _, gr := range runs {
			set := metric.WithAttributeSet(attribute.NewSet(instrument.System, instrument.MessagingConsumerGroup.String(gr.g.Name)))
			o.ObserveInt64(in.owned, int64(gr.k.Owned()), set)
			age := 0.0
			if t, ok := gr.k.Oldest(); ok {
				age = max(now.Sub(t).Seconds(), 0)
			}
			o.ObserveFloat64(in.oldest, age, set)
		}
		return nil
	}, in.owned, in.oldest)
	if err != nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

// attempt is the Router's attempt at a message of group: the chain tells
// it that the Inbox found the event handled already.
type attempt struct {
	group     string
	event     uuid.UUID
	duplicate bool
}

// of reports whether m is the message of the attempt (a handler may run
// another chain with its ctx).
func (a *attempt) of(m Message) bool { return a.group == m.Group && a.event == m.Event.ID }

type attemptKey struct{}

// noteDuplicate tells the Router that its attempt at m, the attempt of
// ctx, was skipped as a duplicate.
func noteDuplicate(ctx context.Context, m Message) {
	if a, ok := ctx.Value(attemptKey{}).(*attempt); ok && a.of(m) {
		a.duplicate = true
	}
}
