package telemetry

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Config says what Setup sets up besides what the environment asks for.
// The zero value works.
type Config struct {
	// Service is the service.name of everything exported, unless
	// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise
	// (default: the program's file name).
	Service string
	// Prometheus makes the metrics readable through Telemetry.Metrics,
	// whatever else exports them.
	Prometheus bool
}

// Telemetry is what Setup set up: the providers to hand to Switchyard's
// packages (or to make global), and the Prometheus handler.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider

	metrics  http.Handler
	shutdown []func(context.Context) error
}

// Setup builds the providers the environment asks for (see the package
// doc). An exporter the environment names but that cannot be built (an
// unknown OTEL_TRACES_EXPORTER, say) is an error naming the variable.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	t := &Telemetry{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}
	if isTrue(os.Getenv("OTEL_SDK_DISABLED")) {
		return t, nil
	}
	res, err := newResource(ctx, cfg.Service)
	if err != nil {
		return nil, err
	}
	if err := t.traces(ctx, res); err != nil {
		return nil, err
	}
	if err := t.meters(ctx, res, cfg.Prometheus); err != nil {
		return nil, errors.Join(err, t.Shutdown(ctx))
	}
	return t, nil
}

func newResource(ctx context.Context, service string) (*resource.Resource, error) {
	if service == "" {
		exe, _ := os.Executable()
		service = exe[strings.LastIndexByte(exe, '/')+1:]
	}
	// Later detectors win: the environment over Config.Service. Each
	// process is an instance of its own, so replicas' series stay apart.
	return resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service),
		attribute.String("service.instance.id", uuid.NewString())),
		resource.WithHost(), resource.WithTelemetrySDK(), resource.WithFromEnv())
}

// traces sets up the tracer provider when an exporter is asked for.
func (t *Telemetry) traces(ctx context.Context, res *resource.Resource) error {
	if !asked("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
		return nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return exporterError(err, "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return nil
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t.TracerProvider = tp
	t.shutdown = append(t.shutdown, tp.Shutdown)
	return nil
}

// meters sets up the meter provider when a reader is asked for.
func (t *Telemetry) meters(ctx context.Context, res *resource.Resource, prom bool) error {
	var readers []sdkmetric.Reader
	if asked("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return exporterError(err, "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
		}
		if !autoexport.IsNoneMetricReader(r) {
			readers = append(readers, r)
		}
	}
	if prom {
		reg := prometheus.NewRegistry()
		r, err := promexporter.New(promexporter.WithRegisterer(reg))
		if err != nil {
			return err
		}
		readers = append(readers, r)
		t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	if len(readers) == 0 {
		return nil
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	for _, r := range readers {
		opts = append(opts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	t.MeterProvider = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)
	return nil
}

// asked reports whether the environment asks for an exporter: the
// signal's own variables, or the OTLP endpoint of every signal.
func asked(exporter, endpoint string) bool {
	return os.Getenv(exporter) != "" || os.Getenv(endpoint) != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

func isTrue(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "true") }

// Metrics serves the metrics in Prometheus' text format, when
// Config.Prometheus was set and OTEL_SDK_DISABLED is not; otherwise it
// answers 404.
func (t *Telemetry) Metrics() http.Handler {
	if t.metrics == nil {
		return http.NotFoundHandler()
	}
	return t.metrics
}

// Shutdown flushes what is left to export and stops the exporters; ctx
// bounds how long it may take.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	t.shutdown = nil
	return errors.Join(errs...)
}

// exporterError names the variable behind err: the first of the signal's
// variables that is set, or else the OTLP protocol.
func exporterError(err error, signal ...string) *Error {
	for _, v := range signal {
		if os.Getenv(v) != "" {
			return &Error{Variable: v, Value: os.Getenv(v), Err: err}
		}
	}
	return &Error{Variable: "OTEL_EXPORTER_OTLP_PROTOCOL", Value: os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), Err: err}
}

// Error is an exporter the environment asks for that cannot be built.
type Error struct {
	Variable string // the OTEL_* variable that chose it
	Value    string // its value
	Err      error
}

func (e *Error) Error() string {
	return "telemetry: " + e.Variable + "=" + strconv.Quote(e.Value) + ": " + e.Err.Error()
}
func (e *Error) Unwrap() error { return e.Err }
