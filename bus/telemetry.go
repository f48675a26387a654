package bus

import (
	"context"
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

// observeLag reports r's lag while r leads, until the returned function is
// called. It reads the database for nothing: the leader reads the log in
// order, so the oldest event it read and JetStream has not acknowledged is
// the oldest not published (Relay.Lag counts them, at a query's cost).
func (t *relayTelemetry) observeLag(r *Relay) (stop func()) {
	reg, err := t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if !r.leader.Load() {
			return nil
		}
		age := 0.0
		if at := r.oldest.Load(); at != 0 {
			age = max(time.Since(time.Unix(0, at)).Seconds(), 0)
		}
		o.ObserveFloat64(t.lag, age, t.set)
		return nil
	}, t.lag)
	if err != nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
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
	if span == nil {
		return
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("switchyard.relay.acknowledged", n-quarantined), attribute.Int("switchyard.relay.quarantined", quarantined))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
