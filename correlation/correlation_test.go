package correlation_test

import (
	"context"
	"testing"

	"github.com/switchyard-go/switchyard/correlation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestStamp(t *testing.T) {
	cause := correlation.Metadata{"event_id": "e-1", "correlation_id": "c-0", "tenant": "acme", "user_id": "u-7", "shard": "s1"}
	cases := []struct {
		name string
		ctx  context.Context
		in   correlation.Metadata
		want map[string]string
	}{
		{"no cause", context.Background(), correlation.Metadata{}, map[string]string{"correlation_id": "self", "causation_id": ""}},
		{"no cause, caller's correlation kept", context.Background(), correlation.Metadata{"correlation_id": "given"}, map[string]string{"correlation_id": "given"}},
		{"cause", correlation.NewContext(context.Background(), cause), correlation.Metadata{},
			map[string]string{"correlation_id": "c-0", "causation_id": "e-1", "tenant": "acme", "user_id": "u-7", "shard": ""}},
		{"cause wins over caller", correlation.NewContext(context.Background(), cause), correlation.Metadata{"correlation_id": "forged", "causation_id": "forged"},
			map[string]string{"correlation_id": "c-0", "causation_id": "e-1"}},
		{"cause without correlation", correlation.NewContext(context.Background(), correlation.Metadata{"event_id": "e-9"}), correlation.Metadata{},
			map[string]string{"correlation_id": "e-9", "causation_id": "e-9"}},
		{"values", correlation.WithValues(context.Background(), map[string]string{"request_id": "r-1", "event_id": "ignored"}), correlation.Metadata{"request_id": "mine"},
			map[string]string{"request_id": "mine", "event_id": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.in.Clone()
			correlation.Stamp(c.ctx, m, "self")
			for k, v := range c.want {
				if m[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, m[k], v, m)
				}
			}
		})
	}
}

func TestValuesLayer(t *testing.T) {
	ctx := correlation.NewContext(context.Background(), correlation.Metadata{"event_id": "e", "user_id": "u-1", "ip": "1.2.3.4"})
	ctx = correlation.WithValues(ctx, map[string]string{"user_id": "u-2"})
	v := correlation.Values(ctx)
	if v["user_id"] != "u-2" || v["ip"] != "1.2.3.4" || v["event_id"] != "" {
		t.Errorf("values %v", v)
	}
}

func TestStampTrace(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background()) //nolint:errcheck
	ctx, span := tp.Tracer("t").Start(context.Background(), "s")
	defer span.End()
	m := correlation.Metadata{"traceparent": "00-stale"}
	correlation.Stamp(ctx, m, "id")
	sc := span.SpanContext()
	if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; m.Get(correlation.TraceParent) != want {
		t.Errorf("traceparent %q, want %q", m.Get(correlation.TraceParent), want)
	}
}

func TestKeys(t *testing.T) {
	keys := correlation.Keys()
	if len(keys) != 13 {
		t.Fatalf("%d keys", len(keys))
	}
	for _, k := range keys {
		if !correlation.IsWellKnown(string(k)) {
			t.Errorf("%s not well-known", k)
		}
	}
	if correlation.IsWellKnown("user_id") {
		t.Error("user_id is application metadata")
	}
	if (correlation.Metadata{"user_id": "u", "shard": "s"}).Application()["shard"] != "" {
		t.Error("Application kept a well-known key")
	}
}

// The tenant of WithTenant is stamped on an event that has none, below
// the event's own and a causing message's.
func TestStampTenant(t *testing.T) {
	ctx := correlation.WithTenant(context.Background(), "acme")
	for _, tt := range []struct {
		name string
		ctx  context.Context
		md   correlation.Metadata
		want string
	}{
		{"from ctx", ctx, correlation.Metadata{}, "acme"},
		{"the event's own", ctx, correlation.Metadata{"tenant": "globex"}, "globex"},
		{"the cause's", correlation.NewContext(ctx, correlation.Metadata{"event_id": "e1", "tenant": "initech"}), correlation.Metadata{}, "initech"},
		{"none", context.Background(), correlation.Metadata{}, ""},
	} {
		correlation.Stamp(tt.ctx, tt.md, "e2")
		if got := tt.md.Get(correlation.Tenant); got != tt.want {
			t.Errorf("%s: tenant %q, want %q", tt.name, got, tt.want)
		}
	}
}
