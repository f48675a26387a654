package instrument

import (
	"github.com/switchyard-go/switchyard/correlation"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Scope names Switchyard's tracers and meters.
const Scope = "github.com/switchyard-go/switchyard"

// Attribute keys, after the OpenTelemetry messaging semantic conventions
// where they have one, and Switchyard's own under "switchyard.".
const (
	MessagingSystem              = attribute.Key("messaging.system")
	MessagingDestination         = attribute.Key("messaging.destination.name")
	MessagingDestinationTemplate = attribute.Key("messaging.destination.template")
	MessagingMessageID           = attribute.Key("messaging.message.id")
	MessagingOperationType       = attribute.Key("messaging.operation.type")
	MessagingOperationName       = attribute.Key("messaging.operation.name")
	MessagingConsumerGroup       = attribute.Key("messaging.consumer.group.name")
	MessagingBatchCount          = attribute.Key("messaging.batch.message_count")

	Context       = attribute.Key("switchyard.context")
	Shard         = attribute.Key("switchyard.shard")
	Stream        = attribute.Key("switchyard.stream")
	EventType     = attribute.Key("switchyard.event_type")
	CorrelationID = attribute.Key("switchyard.correlation_id")
	CausationID   = attribute.Key("switchyard.causation_id")
	Tenant        = attribute.Key("switchyard.tenant")
	Attempt       = attribute.Key("switchyard.attempt")
	Outcome       = attribute.Key("switchyard.outcome")
	Reason        = attribute.Key("switchyard.reason")
)

// System is messaging.system for everything Switchyard sends: NATS.
var System = MessagingSystem.String("nats")

// Tracer is Switchyard's tracer of tp, or of the global provider when tp
// is nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(Scope)
}

// Meter is Switchyard's meter of mp, or of the global provider when mp is
// nil.
func Meter(mp metric.MeterProvider) metric.Meter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(Scope)
}

// Store is the attribute set naming a store.
func Store(contextName, shard string) attribute.Set {
	return attribute.NewSet(Context.String(contextName), Shard.String(shard))
}

// Event returns the attributes of an event's metadata: its id, type,
// stream, context, shard, tenant, correlation and causation, those it has.
func Event(md correlation.Metadata) []attribute.KeyValue {
	return append(Identity(md), place(md)...)
}

// Identity returns the attributes of an event's metadata that say which
// event it is and what chain it belongs to: its id, type, tenant,
// correlation and causation, those it has (for a span that names the
// event's store and stream already).
func Identity(md correlation.Metadata) []attribute.KeyValue {
	pairs := [...]pair{{MessagingMessageID, correlation.EventID}, {EventType, correlation.EventType},
		{Tenant, correlation.Tenant}, {CorrelationID, correlation.CorrelationID}, {CausationID, correlation.CausationID}}
	return pick(md, make([]attribute.KeyValue, 0, 8), pairs[:])
}

func place(md correlation.Metadata) []attribute.KeyValue {
	pairs := [...]pair{{Stream, correlation.Stream}, {Context, correlation.Context}, {Shard, correlation.Shard}}
	return pick(md, nil, pairs[:])
}

type pair struct {
	attr attribute.Key
	key  correlation.Key
}

// pick appends to out the attributes of md's keys in pairs, those it has.
func pick(md correlation.Metadata, out []attribute.KeyValue, pairs []pair) []attribute.KeyValue {
	for _, p := range pairs {
		if v := md.Get(p.key); v != "" {
			out = append(out, p.attr.String(v))
		}
	}
	return out
}
