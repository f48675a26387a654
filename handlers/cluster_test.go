package handlers_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/backoff"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/store"
)

// A three-node JetStream cluster, streams with three replicas, the relays
// and two consumer replicas: the node that leads the event stream is
// stopped while events flow and started again. Nothing is lost, nothing
// has two effects, and every stream's effects come in order.
func TestNATSClusterNodeGoesDown(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node cluster")
	}
	cl := natstest.StartCluster(t, 3)
	f := newFixture(t, testShards...)
	ctx := context.Background()
	connect := func() *bus.Conn {
		c, err := bus.Connect(ctx, bus.Config{URL: cl.URL, Stream: bus.StreamConfig{Replicas: 3},
			ReconnectWait: 50 * time.Millisecond, AckTimeout: 2 * time.Second, Logger: logger(t),
			// Three replicas on two loaded cores can take longer than 5s to
			// agree on a new consumer, and a CI run's other packages once
			// made creating a stream take over 30s.
			APITimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	relays := connect()
	for _, st := range f.stores {
		r, err := bus.NewRelay(relays, st, bus.RelayConfig{Backoff: backoff.Config{Max: 200 * time.Millisecond}, Logger: logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		background(t, r.Run)
	}
	for _, name := range []string{"r1", "r2"} {
		c := connect()
		g := &handlers.Group{Name: "effects", Context: "visits"}
		handlers.Handle(g, "record", "Booked", recordEffectAs(f, name))
		r, err := handlers.NewRouter(c, handlers.RouterConfig{Middleware: handlers.Defaults(f.reg), Stores: f.reg, AckWait: 2 * time.Second,
			Backoff: backoff.Config{Max: 200 * time.Millisecond}, Logger: logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Add(g); err != nil {
			t.Fatal(err)
		}
		background(t, r.Run)
		select {
		case <-r.Ready():
		case <-time.After(2 * time.Minute):
			t.Fatal("router not ready")
		}
	}

	const streams, perStream = 20, 30
	want := map[string][]store.Event{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, sh := range testShards {
		wg.Go(func() {
			for v := range perStream {
				for s := range streams {
					got := f.appendTo(t, sh, streamName(s), v, 1)
					mu.Lock()
					want[sh] = append(want[sh], got...)
					mu.Unlock()
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	total := func() int {
		return len(f.effects(t, "tenant-a", "effects")) + len(f.effects(t, "tenant-b", "effects"))
	}
	waitFor(t, "a first share of the effects", 60*time.Second, func() bool { return total() >= streams*perStream*2/4 })
	s, err := relays.JetStream().Stream(ctx, bus.StreamName("visits"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("stream info %+v, %v: no cluster leader", info, err)
	}
	leader := cl.Server(info.Cluster.Leader)
	leader.Stop()
	t.Logf("stopped %s, the stream's leader, after %d effects", info.Cluster.Leader, total())
	time.Sleep(time.Second)
	leader.Restart()
	wg.Wait()
	waitFor(t, "every effect", 120*time.Second, func() bool { return total() >= streams*perStream*2 })
	settled(t, relays, "effects")
	f.checkEffects(t, "effects", want)
}

func streamName(i int) string { return "cluster-" + string(rune('a'+i)) }
