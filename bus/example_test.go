package bus_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// A store relayed to an embedded nats-server: the embedded defaults, with
// nothing installed.
func Example() {
	dir, _ := os.MkdirTemp("", "bus-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	st, err := sqlite.Open(ctx, sqlite.Config{Context: "visits", Shard: "default", Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	conn, err := bus.Connect(ctx, bus.Config{Embedded: bus.Embedded{Dir: filepath.Join(dir, "nats")}})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	relay, err := bus.NewRelay(conn, st, bus.RelayConfig{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- relay.Run(ctx) }()

	ev, _ := store.NewEvent("VisitScheduled", map[string]string{"patient": "p-1"})
	if _, err := st.Append(ctx, "Visit-42", store.NoStream, ev); err != nil {
		log.Fatal(err)
	}
	// Lag counts what JetStream has not acknowledged (as of the saved
	// checkpoint).
	for {
		if lag, err := relay.Lag(ctx); err == nil && lag == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done

	stream, err := conn.ProvisionStream(context.Background(), "visits")
	if err != nil {
		log.Fatal(err)
	}
	msg, err := stream.JetStream().GetLastMsgForSubject(context.Background(), "sw.visits.>")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.Subject)
	fmt.Println(msg.Header.Get("stream"), msg.Header.Get("stream_version"), msg.Header.Get("shard"))
	// Output:
	// sw.visits.default.5.VisitScheduled
	// Visit-42 0 default
}
