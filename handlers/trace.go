package handlers

import (
	"context"
	"strconv"

	"github.com/switchyard-go/switchyard/correlation"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// instrumentation names Switchyard's tracer.
const instrumentation = "github.com/switchyard-go/switchyard/handlers"

// Trace runs the rest of the chain in a consumer span, "<group> process
// <event type>", child of the trace context the message carries
// (traceparent, tracestate): one trace follows a correlation chain across
// processes, and events appended in the span carry it on (correlation.Stamp).
// The span holds the message's well-known metadata as attributes and the
// error, if any. tp nil means the global provider.
func Trace(tp trace.TracerProvider) Middleware {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	tracer := tp.Tracer(instrumentation)
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			parent := propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(m.Event.Metadata))
			attrs := make([]attribute.KeyValue, 0, 16)
			attrs = append(attrs,
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.operation.type", "process"),
				attribute.String("messaging.destination.name", m.Subject),
				attribute.String("messaging.consumer.group.name", m.Group),
				attribute.Int("messaging.switchyard.attempt", m.Attempt),
				attribute.String("messaging.switchyard.partition", strconv.Itoa(m.Partition)),
			)
			for _, k := range correlation.Keys() {
				if k == correlation.TraceParent || k == correlation.TraceState {
					continue
				}
				if v, ok := m.Event.Metadata[string(k)]; ok {
					attrs = append(attrs, attribute.String(string(k), v))
				}
			}
			ctx, span := tracer.Start(parent, m.Group+" process "+m.Event.Type,
				trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
			defer span.End()
			err := next(ctx, m)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return err
		}
	}
}
