// Package telemetry sets up OpenTelemetry export for a Switchyard program
// from the standard OTEL_* environment variables, serves its metrics to
// Prometheus, and puts trace ids on log records.
//
// Switchyard's packages report to the TracerProvider and MeterProvider of
// their configuration, or to the global ones: only a main package sets
// those, with what Setup returns.
//
//	tel, err := telemetry.Setup(ctx, telemetry.Config{Service: "billing"})
//	if err != nil { ... }
//	defer tel.Shutdown(context.WithoutCancel(ctx)) // flushes what is left
//	otel.SetTracerProvider(tel.TracerProvider)
//	otel.SetMeterProvider(tel.MeterProvider)
//	slog.SetDefault(slog.New(telemetry.LogHandler(slog.NewTextHandler(os.Stderr, nil))))
//
// What is exported:
//
//   - Nothing, and nothing is logged about it, when no OTEL_* variable
//     asks for an exporter: Setup returns no-op providers.
//   - Traces when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (OTLP, over
//     OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf by default, or grpc), or
//     when OTEL_TRACES_EXPORTER names one (otlp, console; none for none).
//   - Metrics likewise (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
//     OTEL_METRICS_EXPORTER: otlp, prometheus, console, none), and to the
//     Prometheus handler [Telemetry.Metrics] when Config.Prometheus is set.
//   - OTEL_SDK_DISABLED=true turns everything off; OTEL_SERVICE_NAME and
//     OTEL_RESOURCE_ATTRIBUTES name the service; OTEL_TRACES_SAMPLER
//     samples.
//
// The spans and metrics Switchyard records are listed in the README's
// "Traces, metrics and logs"; this package only decides where they go.
// A *Telemetry is safe for concurrent use.
package telemetry
