// Command multitenant runs Switchyard's whole flow for a multi-tenant
// application on embedded defaults: SQLite files under ./data and an
// embedded nats-server, nothing to install.
//
//	go run ./examples/multitenant
//
// It configures a "visits" context with a shard per tenant and starts the
// runtime: the relays of every store and two handler groups. It serves an
// HTTP producer whose tenant comes from the Host header (acme.localhost is
// tenant acme, on shard tenant-a) through web.Requests, and sends itself a
// request per tenant, and one for a tenant it does not know (404, nothing
// written). Each VisitBooked is appended in its tenant's shard with the
// request's metadata, relayed to JetStream, and handled by LogVisitsByIp,
// which counts the visit in a read model of that shard and appends a
// derived VisitLogged in the same transaction; a second handler,
// NotifyVisitLogged, handles that one. Once every chain is handled it
// prints them, with full ids, and exits 0.
//
// Deployed, the same binary is two programs (docker-compose.yml runs both):
//
//	multitenant serve -http :8000   # the HTTP producer alone: appends, relays nothing
//	multitenant run                 # relays and handlers (package cli), as many replicas as you like
//	multitenant status              # and the other operator's subcommands of package cli
//
// Both read their stores from SWITCHYARD_CONFIG and SWITCHYARD_* variables.
//
// Configuration of the demo comes from the environment: SWITCHYARD_NATS_URL points at a
// NATS server instead of the embedded one, SWITCHYARD_CONTEXT_VISITS_BACKEND=postgres
// and SWITCHYARD_CONTEXT_VISITS_DSN=postgres://127.0.0.1:5432/visits_{shard}
// (with SWITCHYARD_CONTEXT_VISITS_CREATE_DATABASES=true) put the stores on
// PostgreSQL, and the standard OTEL_* variables export the chain's traces
// and the metrics (OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/stores"
	"github.com/switchyard-go/switchyard/telemetry"
	"github.com/switchyard-go/switchyard/web"
	"go.opentelemetry.io/otel"
)

const config = `
data_dir: data
contexts:
  visits:
    shards: [default, tenant-a, tenant-b]
tenants:
  acme: tenant-a
  globex: tenant-b
`

func main() {
	var err error
	switch args := os.Args[1:]; {
	case len(args) == 0:
		err = run(context.Background())
	case args[0] == "serve":
		err = serveMain(args[1:])
	default:
		program().Main()
	}
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	tel, err := telemetry.Setup(ctx, telemetry.Config{Service: "multitenant"})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx) // flushes what is left; the SDK logs a failure
	}()
	otel.SetTracerProvider(tel.TracerProvider)
	otel.SetMeterProvider(tel.MeterProvider)
	logger := slog.New(telemetry.LogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	cfg, err := stores.Decode([]byte(config))
	if err != nil {
		return err
	}
	if err := cfg.ApplyEnv(os.Environ()); err != nil {
		return err
	}
	reg, err := stores.Open(ctx, cfg, stores.WithLogger(logger))
	if err != nil {
		return err
	}
	defer reg.Close()
	if err := forEachStore(reg, func(st store.Store) error { return createReadModel(ctx, st) }); err != nil {
		return err
	}
	conn, err := bus.Connect(ctx, bus.Config{URL: os.Getenv("SWITCHYARD_NATS_URL"), Logger: logger})
	if err != nil {
		return err
	}
	defer conn.Close()
	return flow(ctx, reg, conn, logger)
}

// flow runs the runtime and the HTTP producer, sends a request per tenant,
// waits until every chain is handled and prints them.
func flow(ctx context.Context, reg *sharding.Registry, conn *bus.Conn, logger *slog.Logger) error {
	notified := make(chan handlers.Message, 16)
	runner, err := handlers.NewRunner(conn, reg, handlers.RunnerConfig{Logger: logger})
	if err != nil {
		return err
	}
	if err := runner.Add(groups(notified)...); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	select {
	case <-runner.Ready():
	case err := <-done:
		return err
	}
	addr, stop, err := serve(reg)
	if err != nil {
		return err
	}
	defer stop()

	want := map[string]bool{} // the streams of the derived events to wait for
	for _, host := range []string{"acme.localhost", "globex.localhost", "initech.localhost"} {
		stream, err := bookVisit(ctx, addr, host)
		if err != nil {
			return err
		}
		if stream != "" {
			want["VisitLog-"+stream] = true
		}
	}
	chains, err := await(notified, done, want)
	if err != nil {
		return err
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	for _, m := range chains {
		if err := printChain(context.Background(), reg, m); err != nil {
			return err
		}
	}
	return nil
}

// serve serves the producer on a free loopback port until stop.
func serve(reg *sharding.Registry) (addr string, stop func(), err error) {
	mw, err := web.Requests(reg, web.Config{})
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mw(producer(reg)), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	return ln.Addr().String(), func() { srv.Close() }, nil
}

// await waits until every stream of want has had its derived event
// handled, and returns those messages.
func await(notified <-chan handlers.Message, done <-chan error, want map[string]bool) ([]handlers.Message, error) {
	var chains []handlers.Message
	timeout := time.After(30 * time.Second)
	for len(chains) < len(want) {
		select {
		case m := <-notified:
			if want[m.Event.Stream] {
				chains = append(chains, m)
			}
		case err := <-done:
			return nil, errors.Join(errors.New("multitenant: the runner stopped before every chain was handled"), err)
		case <-timeout:
			return nil, fmt.Errorf("multitenant: %d of %d chains handled within 30s", len(chains), len(want))
		}
	}
	return chains, nil
}
