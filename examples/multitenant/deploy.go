package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchyard-go/switchyard/cli"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/stores"
	"github.com/switchyard-go/switchyard/telemetry"
	"github.com/switchyard-go/switchyard/web"
	"go.opentelemetry.io/otel"
)

// program is the example's handlers as a deployable binary: run, migrate,
// status and the rest of package cli.
func program() cli.Program {
	return cli.Program{Name: "multitenant", Groups: groups(nil), Migrate: createReadModel}
}

// serveMain serves the HTTP producer on its own until SIGTERM: the stores
// of SWITCHYARD_CONFIG (and SWITCHYARD_* variables), no relay (the run
// replicas relay what it appends), and GET /healthz for health checks
// (multitenant health -http :8000 -path /healthz).
func serveMain(args []string) error {
	fs := flag.NewFlagSet("multitenant serve", flag.ExitOnError)
	addr := fs.String("http", ":8000", "address to serve POST /visits on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("multitenant serve: unexpected arguments %q", fs.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	tel, err := telemetry.Setup(ctx, telemetry.Config{Service: "multitenant-producer"})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // the SDK logs a failure
	otel.SetTracerProvider(tel.TracerProvider)
	otel.SetMeterProvider(tel.MeterProvider)
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(os.Stderr, nil)))

	cfg, err := stores.Read(os.Getenv("SWITCHYARD_CONFIG"), os.Environ())
	if err != nil {
		return err
	}
	if len(cfg.Contexts) == 0 {
		return errors.New("multitenant serve: no context configured: set SWITCHYARD_CONFIG, or SWITCHYARD_CONTEXT_VISITS_SHARDS")
	}
	reg, err := stores.Open(ctx, cfg, stores.WithLogger(logger))
	if err != nil {
		return err
	}
	defer reg.Close()
	mw, err := web.Requests(reg, web.Config{})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {}) // up: 200
	mux.Handle("/", mw(producer(reg)))
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	logger.InfoContext(ctx, "multitenant: serving the producer", "addr", *addr)
	select {
	case err := <-served:
		return err // it could not listen
	case <-ctx.Done():
	}
	// Requests in flight finish their appends before the stores close.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// forEachStore calls fn with every store of reg.
func forEachStore(reg *sharding.Registry, fn func(store.Store) error) error {
	for _, c := range reg.Contexts() {
		for _, sh := range reg.Shards(c) {
			st, err := reg.Store(c, sh)
			if err == nil {
				err = fn(st)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
