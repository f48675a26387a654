package telemetry_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/switchyard-go/switchyard/telemetry"
	"go.opentelemetry.io/otel/trace"
)

// A record logged with a ctx that holds a span carries its ids, so a log
// line leads to its trace.
func ExampleLogHandler() {
	plain := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	log := slog.New(telemetry.LogHandler(plain))

	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.WarnContext(ctx, "handlers: message failed; trying again", "attempt", 1)
	// Output:
	// level=WARN msg="handlers: message failed; trying again" attempt=1 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7
}
