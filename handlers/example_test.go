package handlers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

type VisitBooked struct {
	Visit string `json:"visit"`
}

type VisitCharged struct {
	Visit  string `json:"visit"`
	Amount int    `json:"amount"`
}

// A billing group charges every booked visit: its handler appends to
// billing's store for the visit's shard, in the transaction the Shard
// middleware opened, and the charge inherits the booking's correlation.
// Everything runs on embedded defaults: SQLite stores and an in-process
// nats-server.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "switchyard-example")
	defer os.RemoveAll(dir)

	reg := sharding.NewRegistry()
	defer reg.Close()
	for _, name := range []string{"visits", "billing"} {
		st, err := sqlite.Open(ctx, sqlite.Config{Context: name, Shard: "tenant-a", Path: filepath.Join(dir, name+".db")})
		if err != nil {
			panic(err)
		}
		reg.Add(st)
	}
	conn, err := bus.Connect(ctx, bus.Config{Embedded: bus.Embedded{Dir: filepath.Join(dir, "nats")}})
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	// One relay per store: visits' bookings and billing's charges go out.
	for _, name := range []string{"visits", "billing"} {
		st, _ := reg.Store(name, "tenant-a")
		relay, _ := bus.NewRelay(conn, st.(store.Outbox), bus.RelayConfig{})
		go relay.Run(ctx)
	}

	charges := &handlers.Group{Name: "charges", Context: "billing", Source: "visits"}
	handlers.Handle(charges, "charge", "VisitBooked", func(ctx context.Context, v VisitBooked, m handlers.Message) error {
		st, _ := handlers.Store(ctx)
		ev, err := store.NewEvent("VisitCharged", VisitCharged{Visit: v.Visit, Amount: 40})
		if err != nil {
			return err
		}
		_, err = st.Append(ctx, "Invoice-"+v.Visit, store.NoStream, ev)
		return err
	})
	router, _ := handlers.NewRouter(conn, handlers.RouterConfig{Middleware: handlers.Defaults(reg)})
	if err := router.Add(charges); err != nil {
		panic(err)
	}
	go router.Run(ctx)

	visits, _ := reg.Store("visits", "tenant-a")
	ev, _ := store.NewEvent("VisitBooked", VisitBooked{Visit: "42"})
	booked, err := visits.Append(ctx, "Visit-42", store.NoStream, ev)
	if err != nil {
		panic(err)
	}

	billing, _ := reg.Store("billing", "tenant-a")
	for {
		charged, err := billing.Read(ctx, "Invoice-42", store.Forward, 0, 1)
		if err != nil {
			panic(err)
		}
		if len(charged) == 1 {
			md := charged[0].Metadata
			fmt.Println(charged[0].Type, string(charged[0].Data))
			fmt.Println("same correlation:", md[string(correlation.CorrelationID)] == booked[0].ID.String())
			fmt.Println("caused by the booking:", md[string(correlation.CausationID)] == booked[0].ID.String())
			fmt.Println("shard:", md[string(correlation.Shard)])
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Output:
	// VisitCharged {"visit":"42","amount":40}
	// same correlation: true
	// caused by the booking: true
	// shard: tenant-a
}
