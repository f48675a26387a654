package jspub_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/internal/jspub"
)

// Three messages published without waiting, then their outcomes: the
// third is a duplicate of the first, which JetStream takes as stored.
func Example() {
	dir, _ := os.MkdirTemp("", "jspub-example")
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{JetStream: true, StoreDir: dir, DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server did not start")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EX", Subjects: []string{"ex.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		log.Fatal(err)
	}

	p, err := jspub.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	b := p.Batch(3, "EX")
	for i, id := range []string{"a", "b", "a"} {
		m := nats.NewMsg("ex.one")
		m.Header.Set(jetstream.MsgIDHeader, id)
		if err := b.Publish(i, m, false); err != nil {
			log.Fatal(err)
		}
	}
	b.Seal()
	fmt.Println(b.Wait(ctx, 5*time.Second))
	// Output: [<nil> <nil> <nil>]
}
