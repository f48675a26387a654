// Command quickstart runs Switchyard's whole flow on embedded defaults:
// SQLite files under ./data and an embedded nats-server, nothing to
// install.
//
//	go run ./examples/quickstart
//
// It configures a "visits" context with a shard per tenant, starts a
// runner (the relays of every store, two handler groups), and schedules a
// visit for two tenants. Each event is appended in its tenant's shard,
// relayed to JetStream, and handled by "visit-log", which appends a
// derived VisitLogged event in the same shard and transaction; a second
// group, "visit-notify", handles that one. Once every chain is handled it
// prints them, with full ids, and exits 0.
//
// Configuration comes from the environment: SWITCHYARD_NATS_URL points at a
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
	"os"
	"strconv"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/stores"
	"github.com/switchyard-go/switchyard/telemetry"
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

// VisitScheduled is what the application appends.
type VisitScheduled struct {
	Visit string `json:"visit"`
	At    string `json:"at"`
}

// VisitLogged is what the visit-log handler appends in reaction.
type VisitLogged struct {
	Visit string `json:"visit"`
}

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	tel, err := telemetry.Setup(ctx, telemetry.Config{Service: "quickstart"})
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
	conn, err := bus.Connect(ctx, bus.Config{URL: os.Getenv("SWITCHYARD_NATS_URL"), Logger: logger})
	if err != nil {
		return err
	}
	defer conn.Close()
	return flow(ctx, reg, conn, logger)
}

// flow runs the runner, schedules a visit per tenant, waits until both
// chains are handled and prints them.
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

	run := strconv.FormatInt(time.Now().UnixNano(), 36) // streams of this run only
	want := map[string]bool{}
	for _, tenant := range []string{"acme", "globex"} {
		stream, err := schedule(ctx, reg, tenant, run)
		if err != nil {
			return err
		}
		want["VisitLog-"+stream] = true
	}
	var chains []handlers.Message
	timeout := time.After(30 * time.Second)
	for len(chains) < len(want) {
		select {
		case m := <-notified:
			if want[m.Event.Stream] {
				chains = append(chains, m)
			}
		case err := <-done:
			return errors.Join(errors.New("quickstart: the runner stopped before every chain was handled"), err)
		case <-timeout:
			return errors.New("quickstart: the chains were not handled within 30s")
		}
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
	// The unknown tenant is an error, never a default.
	if _, err := reg.ShardOf("initech"); err != nil {
		fmt.Println("initech:", err)
	}
	return nil
}

// groups are the example's handlers: visit-log appends VisitLogged in the
// shard of each VisitScheduled; visit-notify hands each VisitLogged to
// notified.
func groups(notified chan<- handlers.Message) []*handlers.Group {
	log := &handlers.Group{Name: "visit-log", Context: "visits"}
	handlers.Handle(log, "log", "VisitScheduled", func(ctx context.Context, v VisitScheduled, m handlers.Message) error {
		st, _ := handlers.Store(ctx) // the shard's store, in the handler's transaction
		ev, err := store.NewEvent("VisitLogged", VisitLogged{Visit: v.Visit})
		if err != nil {
			return err
		}
		_, err = st.Append(ctx, "VisitLog-"+m.Event.Stream, store.Any, ev) // correlation, causation, shard inherited
		return err
	})
	notify := &handlers.Group{Name: "visit-notify", Context: "visits"}
	handlers.HandleMessage(notify, "notify", "VisitLogged", func(_ context.Context, m handlers.Message) error {
		notified <- m
		return nil
	})
	return []*handlers.Group{log, notify}
}

// schedule appends a VisitScheduled for tenant, as a request for it would,
// and returns its stream.
func schedule(ctx context.Context, reg *sharding.Registry, tenant, run string) (string, error) {
	shard, err := reg.ShardOf(tenant)
	if err != nil {
		return "", err
	}
	ctx = sharding.NewContext(ctx, shard)
	ctx = correlation.WithValues(ctx, map[string]string{"user_id": "u-7"})
	visits, err := reg.For(ctx, "visits")
	if err != nil {
		return "", err
	}
	stream := "Visit-" + tenant + "-" + run
	ev, err := store.NewEvent("VisitScheduled", VisitScheduled{Visit: stream, At: "09:00"})
	if err != nil {
		return "", err
	}
	_, err = visits.Append(ctx, stream, store.NoStream, ev)
	return stream, err
}

// printChain prints the chain that ends in m: the event that caused it,
// then m.
func printChain(ctx context.Context, reg *sharding.Registry, m handlers.Message) error {
	visits, err := reg.Store("visits", m.Shard)
	if err != nil {
		return err
	}
	cause, err := visits.Read(ctx, m.Event.Stream[len("VisitLog-"):], store.Forward, 0, 1)
	if err != nil {
		return err
	}
	fmt.Printf("chain %s (shard %s)\n", m.Event.Metadata.Get(correlation.CorrelationID), m.Shard)
	for _, e := range append(cause, m.Event) {
		md := e.Metadata
		fmt.Printf("  %-14s %s  stream=%s@%d causation=%s user=%s trace=%s\n", e.Type, e.ID, e.Stream, e.Version,
			or(md.Get(correlation.CausationID), "-"), md["user_id"], or(md.Get(correlation.TraceParent), "-"))
	}
	return nil
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
