package bus_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
)

// childEnv makes the test binary run as a relay process (see
// TestKilledRelay) instead of running tests.
const childEnv = "SWITCHYARD_BUS_TEST_CHILD"

// childMain relays the store named by the environment until killed.
func childMain() int {
	ctx := context.Background()
	st, err := postgres.Open(ctx, os.Getenv("CHILD_PG"), postgres.Config{Context: "visits", Shard: "default", Schema: os.Getenv("CHILD_SCHEMA")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := bus.Connect(ctx, bus.Config{URL: os.Getenv("CHILD_NATS")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Slow checkpoints and small batches: a kill lands between publishing
	// and saving.
	r, err := bus.NewRelay(c, st, bus.RelayConfig{BatchSize: 50, SaveEvery: 300 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// The relay process is killed with -9 while it publishes: its successor
// publishes again what was not checkpointed, JetStream drops the
// duplicates, and every event is there once, in order per stream.
func TestKilledRelay(t *testing.T) {
	srv := natstest.Start(t, true)
	schema := pgtest.RandomName("s_")
	st := pgStore(t, schema)
	c := connect(t, srv.URL, bus.Config{})
	if _, err := c.ProvisionStream(context.Background(), "visits"); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=1", "CHILD_PG="+testURL, "CHILD_SCHEMA="+schema, "CHILD_NATS="+srv.URL)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill() //nolint:errcheck // already dead, normally

	var mu sync.Mutex
	var want []store.Event
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the application keeps appending throughout
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			evs := appendMany(t, st, fmt.Sprintf("r%d", i), 8, 6)
			mu.Lock()
			want = append(want, evs...)
			mu.Unlock()
		}
	}()
	js, err := c.JetStream().Stream(context.Background(), bus.StreamName("visits"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := func() int64 {
		info, err := js.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return int64(info.State.Msgs)
	}
	waitFor(t, "the child relay to publish", func() bool { return msgs() >= 1000 })
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait() //nolint:errcheck // killed
	close(stop)
	<-done
	checkpoint, err := st.Checkpoint(context.Background(), "nats")
	if err != nil {
		t.Fatal(err)
	}
	lag, err := st.CountAfter(context.Background(), checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	appended := int64(len(want))
	mu.Unlock()
	inJS := msgs()
	t.Logf("killed: %d in JetStream, checkpoint %s leaves %d of %d appended unsaved", inJS, checkpoint, lag, appended)
	if inJS <= appended-lag {
		t.Fatalf("the kill did not land between publish and checkpoint (%d in JetStream, %d checkpointed); the test proves nothing", inJS, appended-lag)
	}

	r := newRelay(t, c, st, bus.RelayConfig{})
	run(t, r)
	want = append(want, appendMany(t, st, "after", 8, 6)...)
	waitLag0(t, r)
	checkDelivered(t, c, want, bus.DefaultPartitions)
}
