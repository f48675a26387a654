package correlation

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/propagation"
)

// Key is a well-known metadata key.
type Key string

// The well-known keys, in the order DESIGN.md lists them.
const (
	EventID       Key = "event_id"
	EventType     Key = "event_type"
	Stream        Key = "stream"
	StreamVersion Key = "stream_version"
	Position      Key = "position"
	Context       Key = "context"
	Shard         Key = "shard"
	Tenant        Key = "tenant"
	CorrelationID Key = "correlation_id"
	CausationID   Key = "causation_id"
	RecordedAt    Key = "recorded_at"
	TraceParent   Key = "traceparent"
	TraceState    Key = "tracestate"
)

// Keys returns every well-known key, in a fresh slice.
func Keys() []Key {
	return []Key{EventID, EventType, Stream, StreamVersion, Position, Context, Shard, Tenant,
		CorrelationID, CausationID, RecordedAt, TraceParent, TraceState}
}

// IsWellKnown reports whether k is one of [Keys].
func IsWellKnown(k string) bool {
	switch Key(k) {
	case EventID, EventType, Stream, StreamVersion, Position, Context, Shard, Tenant,
		CorrelationID, CausationID, RecordedAt, TraceParent, TraceState:
		return true
	}
	return false
}

// Metadata is an event's metadata: the well-known keys plus free-form
// application keys. It has the shape of OpenTelemetry's propagation.MapCarrier
// and watermill's message.Metadata, so trace context rides in it directly.
type Metadata map[string]string

// Get returns the value for k, or "".
func (m Metadata) Get(k Key) string { return m[string(k)] }

// Set sets k to v.
func (m Metadata) Set(k Key, v string) { m[string(k)] = v }

// Clone returns a copy of m (nil stays nil).
func (m Metadata) Clone() Metadata {
	if m == nil {
		return nil
	}
	c := make(Metadata, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Application returns the free-form entries of m: every key that is not
// well-known.
func (m Metadata) Application() map[string]string {
	var out map[string]string
	for k, v := range m {
		if IsWellKnown(k) {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[k] = v
	}
	return out
}

type causeKey struct{}
type valuesKey struct{}
type tenantKey struct{}

// WithTenant returns a context whose appended events carry tenant as their
// tenant key, unless the event sets its own or a message being handled
// gives one (a request for the tenant, say; see package web).
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFrom returns the tenant [WithTenant] put in ctx.
func TenantFrom(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(tenantKey{}).(string)
	return t, ok && t != ""
}

// NewContext returns a context carrying m as the message being handled: events
// appended with the returned context are caused by it.
func NewContext(ctx context.Context, m Metadata) context.Context {
	return context.WithValue(ctx, causeKey{}, m.Clone())
}

// FromContext returns the message being handled, if ctx carries one.
func FromContext(ctx context.Context) (Metadata, bool) {
	m, ok := ctx.Value(causeKey{}).(Metadata)
	return m, ok
}

// WithValues returns a context whose appended events carry the application
// metadata kv in addition to what ctx already carries (later values win).
// Well-known keys are ignored: they are set by the rules, not by hand.
func WithValues(ctx context.Context, kv map[string]string) context.Context {
	prev := Values(ctx)
	merged := make(map[string]string, len(prev)+len(kv))
	for k, v := range prev {
		merged[k] = v
	}
	for k, v := range kv {
		if !IsWellKnown(k) {
			merged[k] = v
		}
	}
	return context.WithValue(ctx, valuesKey{}, merged)
}

// Values returns the application metadata ctx carries: that of the message
// being handled, overlaid with what [WithValues] added. The map must not be
// modified.
func Values(ctx context.Context) map[string]string {
	if v, ok := ctx.Value(valuesKey{}).(map[string]string); ok {
		return v
	}
	if m, ok := FromContext(ctx); ok {
		return m.Application()
	}
	return nil
}

// Stamp applies the correlation rules to m, the metadata of an event with the
// given id being appended under ctx:
//
//   - application metadata from ctx is added where m has no value of its own;
//   - with a causing message in ctx, correlation_id = its correlation_id (or
//     its event_id when it has none) and causation_id = its event_id, and its
//     tenant is inherited;
//   - without one, correlation_id keeps a value the caller set, or becomes
//     eventID; causation_id stays as the caller set it;
//   - tenant, when m has none and no causing message gives one, is that of
//     [WithTenant];
//   - with a recording span in ctx, traceparent and tracestate are the span's
//     (W3C trace context), replacing whatever the caller set.
//
// Stamp does not set store-owned keys (event_id, stream, shard, ...); the
// store does. m must be non-nil.
func Stamp(ctx context.Context, m Metadata, eventID string) {
	for k, v := range Values(ctx) {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	if cause, ok := FromContext(ctx); ok {
		cid := cause.Get(CorrelationID)
		if cid == "" {
			cid = cause.Get(EventID)
		}
		if cid != "" {
			m.Set(CorrelationID, cid)
		}
		if id := cause.Get(EventID); id != "" {
			m.Set(CausationID, id)
		}
		if t := cause.Get(Tenant); t != "" && m.Get(Tenant) == "" {
			m.Set(Tenant, t)
		}
	}
	if strings.TrimSpace(m.Get(CorrelationID)) == "" {
		m.Set(CorrelationID, eventID)
	}
	if t, ok := TenantFrom(ctx); ok && m.Get(Tenant) == "" {
		m.Set(Tenant, t)
	}
	propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(m))
}
