package bus

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/instrument"
	"github.com/switchyard-go/switchyard/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// MaxBatchLinks bounds the links of a relay batch's span to the trace
// contexts of its events: the first MaxBatchLinks events of a batch are
// linked.
const MaxBatchLinks = 128

// relayTelemetry is a relay's instruments: a span per batch published,
// linked to its events' trace contexts; counts of events published and
// quarantined; the lag, observed while this process leads.
type relayTelemetry struct {
	tracer      trace.Tracer
	meter       metric.Meter
	published   metric.Int64Counter
	quarantined metric.Int64Counter
	lag         metric.Float64ObservableGauge
	set         metric.MeasurementOption
	add         []metric.AddOption
	start       []trace.SpanStartOption
	name        string
}

func newRelayTelemetry(cfg RelayConfig, st store.Outbox) *relayTelemetry {
	m := instrument.Meter(cfg.MeterProvider)
	// The names are constants the API accepts: no errors to handle.
	published, _ := m.Int64Counter("switchyard.relay.published",
		metric.WithUnit("{event}"), metric.WithDescription("Events the relay published and JetStream acknowledged."))
	quarantined, _ := m.Int64Counter("switchyard.relay.quarantined",
		metric.WithUnit("{event}"), metric.WithDescription("Events the relay set aside because JetStream cannot take them."))
	lag, _ := m.Float64ObservableGauge("switchyard.relay.lag",
		metric.WithUnit("s"), metric.WithDescription("Age of the oldest committed event the relay read and JetStream has not acknowledged (0: caught up); reported by the leading process."))
	c, sh := st.Context(), st.Shard()
	set := metric.WithAttributeSet(instrument.Store(c, sh))
	return &relayTelemetry{
		tracer: instrument.Tracer(cfg.TracerProvider), meter: m,
		published: published, quarantined: quarantined, lag: lag,
		set: set, add: []metric.AddOption{set},
		start: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(instrument.System,
			instrument.MessagingOperationType.String("send"), instrument.MessagingOperationName.String("publish"),
			instrument.MessagingDestinationTemplate.String("sw."+c+"."+sh+".{partition}.{event_type}"),
			instrument.Context.String(c), instrument.Shard.String(sh))},
		name: "publish " + c,
	}
}

// observeLag reports r's lag while r leads (see lagClock), until the
// returned function is called.
func (t *relayTelemetry) observeLag(r *Relay) (stop func()) {
	reg, err := t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if r.leader.Load() {
			o.ObserveFloat64(t.lag, r.lag.behind(time.Now()).Seconds(), t.set)
		}
		return nil
	}, t.lag)
	if err != nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

// lagClock is what a leader knows of how far behind the log it is, kept
// without a query (Relay.Lag counts, at a query's cost). The leader reads
// the log in order, so while it has events in flight the first one not
// acknowledged is the oldest unpublished (by log order, recorded by its
// appender's clock). With none in flight it is caught up while it waits
// for commits, unless a transaction still running holds back events it
// cannot read yet (noteRead asks): then it is
// behind from the first of them. Otherwise — at the start of a term, after
// a failure, while it backs off — it has been behind since it last was
// caught up.
type lagClock struct {
	oldest   atomic.Int64 // UnixNano recorded time of the first event read and not acknowledged; 0: none
	caughtUp atomic.Int64 // UnixNano when the leader last knew it had published all it could read
	waiting  atomic.Bool  // caught up, waiting for commits
	held     atomic.Int64 // UnixNano recorded time of the first event a running transaction holds back (noteRead); 0: none
}

// start begins a term at now.
func (c *lagClock) start(now time.Time) { c.caughtUp.Store(now.UnixNano()) }

// stop ends the term.
func (c *lagClock) stop() {
	c.oldest.Store(0)
	c.waiting.Store(false)
	c.held.Store(0)
}

// wait notes that the leader, caught up at now, begins (waiting) or ends
// waiting for commits.
func (c *lagClock) wait(now time.Time, waiting bool) {
	c.caughtUp.Store(now.UnixNano())
	c.waiting.Store(waiting)
}

// behind is the lag at now.
func (c *lagClock) behind(now time.Time) time.Duration {
	since := c.oldest.Load()
	switch {
	case since != 0:
	case c.waiting.Load():
		if since = c.held.Load(); since == 0 {
			return 0
		}
	default:
		since = c.caughtUp.Load()
	}
	return max(now.Sub(time.Unix(0, since)), 0)
}

// startBatch opens the span of publishing p, linked to the trace contexts
// of its first MaxBatchLinks events (their messages still hold them).
func (t *relayTelemetry) startBatch(p *prepared) trace.Span {
	_, span := t.tracer.Start(context.Background(), t.name, t.start...)
	if !span.IsRecording() {
		return span
	}
	span.SetAttributes(instrument.MessagingBatchCount.Int(len(p.batch)))
	for _, m := range p.msgs[:min(len(p.msgs), MaxBatchLinks)] {
		carrier := propagation.MapCarrier{string(correlation.TraceParent): m.Header.Get(string(correlation.TraceParent))}
		if sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier)); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	return span
}

// endBatch ends span with its batch's outcome: n events done, of which
// quarantined were set aside, and err.
func endBatch(span trace.Span, n, quarantined int, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("switchyard.relay.acknowledged", n-quarantined), attribute.Int("switchyard.relay.quarantined", quarantined))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
