package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/store"
)

// A message a group gave up on, listed with its error, and discarded.
func Example() {
	dir, _ := os.MkdirTemp("", "deadletter-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	conn, err := bus.Connect(ctx, bus.Config{Embedded: bus.Embedded{Dir: filepath.Join(dir, "nats")}})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ProvisionStream(ctx, "visits"); err != nil {
		log.Fatal(err)
	}
	q, err := deadletter.Provision(ctx, conn, "visits")
	if err != nil {
		log.Fatal(err)
	}

	// What handlers' DeadLetter middleware does after the last attempt.
	ev, _ := store.NewEvent("VisitBooked", map[string]string{"visit": "42"})
	ev.Stream = "Visit-42"
	m := bus.Encode(ev, "visits", "default", bus.DefaultPartitions)
	d := &consumer.Delivery{Subject: m.Subject, Header: m.Header, Data: m.Data, Seq: 1}
	if err := q.Put(ctx, d, deadletter.Record{Group: "billing", Cause: errors.New("card declined"), Attempts: 5}); err != nil {
		log.Fatal(err)
	}

	letters, err := q.List(ctx, "billing", 0, 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, dl := range letters {
		fmt.Println(dl.Group, dl.Subject, dl.Error, dl.Attempts)
		if err := q.Discard(ctx, dl.Seq, deadletter.DropFollowers); err != nil {
			log.Fatal(err)
		}
	}
	left, _ := q.List(ctx, "", 0, 10)
	fmt.Println("left:", len(left))
	// Output:
	// billing sw.visits.default.5.VisitBooked card declined 5
	// left: 0
}
