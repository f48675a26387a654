package bus_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/internal/natstest"
)

// A connection the application made itself, with its own credentials,
// relays every event in order; Close leaves it open. One made without the
// Adoption's options is refused.
func TestAdoption(t *testing.T) {
	srv := natstest.StartWith(t, func(o *server.Options) { o.Authorization = "app-token" })
	ad := bus.NewAdoption()
	nc, err := nats.Connect(srv.URL, append([]nats.Option{nats.Token("app-token"), nats.Name("the app's")}, ad.Options()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := ad.Conn(nc, bus.Config{Stream: bus.StreamConfig{Partitions: 4}})
	if err != nil {
		t.Fatal(err)
	}
	st := sqliteStore(t, filepath.Join(t.TempDir(), "visits.db"))
	r := newRelay(t, c, st, bus.RelayConfig{BatchSize: 64})
	stop := run(t, r)
	want := appendMany(t, st, "visit", 20, 10)
	waitLag0(t, r)
	checkDelivered(t, c, want, 4)
	stop()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if nc.IsClosed() {
		t.Error("Close closed the application's connection")
	}

	plain, err := nats.Connect(srv.URL, nats.Token("app-token"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := bus.NewAdoption().Conn(plain, bus.Config{}); !errors.Is(err, bus.ErrNotAdoptable) {
		t.Errorf("a connection made without the options: %v, want ErrNotAdoptable", err)
	}
}
