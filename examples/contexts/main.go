// Command contexts shows two bounded contexts, each with its own store
// database, talking only through events, on embedded defaults (a SQLite
// file per context and shard, an embedded nats-server):
//
//	go run ./examples/contexts
//
// The visits context books a visit. The billing context's group
// billing-charges consumes visits' events and issues an invoice in billing's
// own store; the visits context's group visits-invoiced consumes billing's
// events and records in visits' store that the visit was invoiced. Neither
// writes to the other's database: a handler that tries is refused with a
// *store.CrossStoreError, and nothing is written. The three events form one
// correlation chain across both stores, which the program prints before
// exiting 0.
//
// SWITCHYARD_CONTEXT_VISITS_BACKEND=postgres, SWITCHYARD_CONTEXT_VISITS_DSN
// and the same for BILLING put each context in a PostgreSQL database of its
// own; SWITCHYARD_NATS_URL points at an external NATS.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/stores"
)

const config = `
data_dir: data
contexts:
  visits:
    shards: [tenant-a]
  billing:
    shards: [tenant-a]
tenants:
  acme: tenant-a
`

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
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

	invoiced := make(chan handlers.Message, 4)
	refused := make(chan error, 4)
	runner, err := handlers.NewRunner(conn, reg, handlers.RunnerConfig{Logger: logger})
	if err != nil {
		return err
	}
	if err := runner.Add(billingCharges(reg, refused), visitsInvoiced(invoiced)); err != nil {
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

	booked, err := bookVisit(ctx, reg, "acme")
	if err != nil {
		return err
	}
	var last handlers.Message
	for last.Event.Metadata.Get(correlation.CorrelationID) != booked.ID.String() {
		select {
		case last = <-invoiced:
		case err := <-done:
			return errors.Join(errors.New("contexts: the runner stopped before the chain was handled"), err)
		case <-time.After(30 * time.Second):
			return errors.New("contexts: the chain was not handled within 30s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	fmt.Println("billing's handler tried to write to visits' store:", <-refused)
	return printChain(context.Background(), reg, booked, last)
}
