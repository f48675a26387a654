package main

import (
	"context"
	"fmt"
	"time"

	"github.com/switchyard-go/switchyard/internal/otlptest"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// traceModes are the values of -trace.
var traceModes = []string{"off", "otlp"}

// tracing sets the global providers as -trace says: "off" leaves the
// no-op ones, as a program with no OTEL_* variable has; "otlp" samples
// every span and exports spans and metrics (every second) over OTLP/HTTP to
// a receiver in this process, as a program exporting to a collector does;
// the receiver reads and drops what it is sent (a collector decodes it on a
// machine of its own).
// stop flushes what is left and reports what arrived.
func tracing(ctx context.Context, mode string) (stop func() string, err error) {
	if mode != "otlp" {
		return func() string { return "" }, nil
	}
	rcv := otlptest.Start(false)
	sx, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(rcv.Endpoint()+"/v1/traces"))
	if err != nil {
		rcv.Close()
		return nil, err
	}
	mx, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(rcv.Endpoint()+"/v1/metrics"))
	if err != nil {
		rcv.Close()
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(sx), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mx, sdkmetric.WithInterval(time.Second))))
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	return func() string {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
		_ = mp.Shutdown(sctx)
		rcv.Close()
		reqs, bytes := rcv.Received()
		return fmt.Sprintf("trace otlp: %d requests, %d KiB exported", reqs, bytes>>10)
	}, nil
}
