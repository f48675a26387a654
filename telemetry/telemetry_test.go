package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchyard-go/switchyard/internal/otlptest"
	"github.com/switchyard-go/switchyard/telemetry"
	"go.opentelemetry.io/otel/trace"
)

// clearOTEL unsets every OTEL_* variable the test run inherited.
func clearOTEL(t *testing.T) {
	for _, v := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_SERVICE_NAME"} {
		t.Setenv(v, "")
	}
}

// With no OTEL_* variable nothing is exported: the providers record
// nothing, and nothing is logged.
func TestNothingAskedNothingExported(t *testing.T) {
	clearOTEL(t)
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "s")
	if span.IsRecording() {
		t.Error("a span records with nothing configured")
	}
	if code := status(tel.Metrics()); code != 404 {
		t.Errorf("/metrics without Config.Prometheus answers %d, want 404", code)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func status(h http.Handler) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Code
}

// OTEL_SDK_DISABLED turns everything off, the Prometheus handler too.
func TestDisabled(t *testing.T) {
	clearOTEL(t)
	t.Setenv("OTEL_SDK_DISABLED", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "s"); span.IsRecording() || status(tel.Metrics()) != 404 {
		t.Error("OTEL_SDK_DISABLED=true still records spans or serves metrics")
	}
}

// An exporter the environment names but that does not exist is an error
// naming the variable.
func TestUnknownExporter(t *testing.T) {
	clearOTEL(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "carrier-pigeon")
	_, err := telemetry.Setup(context.Background(), telemetry.Config{})
	var te *telemetry.Error
	if !errors.As(err, &te) || te.Variable != "OTEL_TRACES_EXPORTER" || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("Setup = %v, want a *telemetry.Error naming OTEL_TRACES_EXPORTER and the value", err)
	}
}

// OTEL_EXPORTER_OTLP_ENDPOINT exports spans and metrics over OTLP/HTTP,
// under the service named by OTEL_SERVICE_NAME over Config.Service;
// Shutdown flushes them.
func TestOTLPEndpoint(t *testing.T) {
	clearOTEL(t)
	rcv := otlptest.Start(true)
	defer rcv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.Endpoint())
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "from-config"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "exported")
	span.End()
	c, _ := tel.MeterProvider.Meter("t").Int64Counter("exported.count")
	c.Add(context.Background(), 3)
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := rcv.Spans()
	if len(spans) != 1 || spans[0].Name != "exported" || spans[0].Service != "from-env" {
		t.Errorf("received %+v, want one span %q of service from-env", spans, "exported")
	}
	if got := rcv.Sums()["exported.count"]; got != 3 {
		t.Errorf("exported.count = %v, want 3", got)
	}
}

// Config.Prometheus serves the metrics in Prometheus' text format.
func TestPrometheus(t *testing.T) {
	clearOTEL(t)
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background()) //nolint:errcheck // nothing to flush
	c, _ := tel.MeterProvider.Meter("t").Int64Counter("switchyard.events.appended")
	c.Add(context.Background(), 5)
	rec := httptest.NewRecorder()
	tel.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), "switchyard_events_appended_total") || !strings.Contains(string(body), " 5") {
		t.Errorf("/metrics:\n%s\nwant switchyard_events_appended_total 5", body)
	}
}

// Records logged with a span's ctx carry its trace and span ids; others
// do not.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewTextHandler(&buf, nil))).With("k", "v").WithGroup("g")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.InfoContext(ctx, "traced")
	log.Info("plain")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "trace_id=4bf92f3577b34da6a3ce929d0e0e4736") ||
		!strings.Contains(lines[0], "span_id=00f067aa0ba902b7") || strings.Contains(lines[1], "trace_id") {
		t.Errorf("logged:\n%s", buf.String())
	}
}
