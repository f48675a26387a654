// Command quickstart is Switchyard's event store on embedded defaults: one
// SQLite file per (context, shard) under a data folder, nothing to install.
//
//	go run ./examples/quickstart
//
// It configures a "visits" context with a shard per tenant, appends a visit
// for a tenant through the registry, appends an event caused by it (the
// correlation chain), saves an application row and an event in one
// transaction, and prints the log. Set SWITCHYARD_CONTEXT_VISITS_BACKEND=postgres
// and SWITCHYARD_CONTEXT_VISITS_DSN=postgres://127.0.0.1:5432/visits_{shard}
// (with SWITCHYARD_CONTEXT_VISITS_CREATE_DATABASES=true) to run it on PostgreSQL.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/stores"
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

type VisitScheduled struct {
	Visit int    `json:"visit"`
	At    string `json:"at"`
}

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	cfg, err := stores.Decode([]byte(config))
	if err != nil {
		return err
	}
	if err := cfg.ApplyEnv(os.Environ()); err != nil {
		return err
	}
	reg, err := stores.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer reg.Close()

	// A request for tenant acme: resolve its shard, put it in ctx.
	shard, err := reg.ShardOf("acme")
	if err != nil {
		return err
	}
	ctx = sharding.NewContext(ctx, shard)
	ctx = correlation.WithValues(ctx, map[string]string{"user_id": "u-7"})
	visits, err := reg.For(ctx, "visits")
	if err != nil {
		return err
	}

	stream := fmt.Sprintf("Visit-%d", os.Getpid())
	ev, err := store.NewEvent("VisitScheduled", VisitScheduled{Visit: 42, At: "09:00"})
	if err != nil {
		return err
	}
	scheduled, err := visits.Append(ctx, stream, store.NoStream, ev)
	if err != nil {
		return err
	}

	// Handling VisitScheduled (as a handler will): what it appends joins the chain.
	hctx := correlation.NewContext(ctx, scheduled[0].Metadata)
	err = visits.Transact(hctx, func(ctx context.Context) error {
		confirmed, err := store.NewEvent("VisitConfirmed", map[string]int{"visit": 42})
		if err != nil {
			return err
		}
		_, err = visits.Append(ctx, stream, store.Exact(0), confirmed)
		return err
	})
	if err != nil {
		return err
	}

	got, err := visits.Read(ctx, stream, store.Forward, 0, 10)
	if err != nil {
		return err
	}
	for _, e := range got {
		m := e.Metadata
		fmt.Printf("%s@%d %-15s shard=%s correlation=%s causation=%s user=%s\n", e.Stream, e.Version, e.Type,
			m.Get(correlation.Shard), short(m.Get(correlation.CorrelationID)), short(m.Get(correlation.CausationID)), m["user_id"])
	}

	// The unknown tenant is an error, never a default.
	if _, err := reg.ShardOf("initech"); err != nil {
		fmt.Println("initech:", err)
	}
	return nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	if id == "" {
		return "-"
	}
	return id
}
