package consumer_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/internal/testrun"
)

// publishTo publishes n messages on partition p of context visits.
func publishTo(t *testing.T, c *bus.Conn, p, n int) {
	t.Helper()
	for i := range n {
		if _, err := c.JetStream().Publish(context.Background(), bus.Subject("visits", "default", p, "Booked"), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// pending is how many deliveries of group g's consumer of partition p
// are out, unacknowledged.
func pending(t *testing.T, c *bus.Conn, p int) int {
	t.Helper()
	info, err := c.JetStream().Consumer(context.Background(), bus.StreamName("visits"), consumer.DurableName("g", p))
	if err != nil {
		t.Fatal(err)
	}
	return info.CachedInfo().NumAckPending
}

// batches records the batches RunBatch handed, per partition, and how
// many calls ran at once at most.
type batches struct {
	mu      sync.Mutex
	sizes   map[int][]int
	running atomic.Int32
	most    atomic.Int32
}

func (b *batches) enter(ds []*consumer.Delivery) {
	n := b.running.Add(1)
	for m := b.most.Load(); n > m && !b.most.CompareAndSwap(m, n); m = b.most.Load() {
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sizes == nil {
		b.sizes = map[int][]int{}
	}
	b.sizes[ds[0].Partition] = append(b.sizes[ds[0].Partition], len(ds))
}

func (b *batches) of(p int) []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes[p]...)
}

// ackAll acknowledges ds, but first, at partition 1's first delivery,
// waits for hold to close (or ctx to end).
func ackAll(ctx context.Context, ds []*consumer.Delivery, hold <-chan struct{}, inside chan<- struct{}) {
	for _, d := range ds {
		if d.Partition == 1 && d.Attempt == 1 && hold != nil {
			select {
			case inside <- struct{}{}:
				select {
				case <-hold:
				case <-ctx.Done():
				}
			default:
			}
		}
		_ = d.Ack()
	}
}

// With one turn, a partition whose deliveries arrive while another's
// batch runs waits for it, and then takes all of them in one batch.
func TestTurnsGrowBatches(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL)
	k := group(t, c, consumer.Config{MaxInFlight: 64, MaxBatch: 64, Turns: 1, TurnWait: time.Minute, DrainTimeout: time.Second})
	var b batches
	hold, inside := make(chan struct{}), make(chan struct{}, 1)
	testrun.Background(t, "RunBatch", func(ctx context.Context) error {
		return k.RunBatch(ctx, func(ctx context.Context, ds []*consumer.Delivery) {
			b.enter(ds)
			defer b.running.Add(-1)
			ackAll(ctx, ds, hold, inside)
		})
	})
	publishTo(t, c, 1, 1)
	<-inside // partition 1's batch has the one turn
	publishTo(t, c, 0, 20)
	waitFor(t, "partition 0's 20 deliveries in this process", func() bool { return pending(t, c, 0) == 20 })
	if got := b.of(0); len(got) > 0 {
		t.Fatalf("partition 0 handed batches %v while the only turn was taken", got)
	}
	close(hold)
	waitFor(t, "partition 0 acknowledged", func() bool { return pending(t, c, 0) == 0 })
	if got := b.of(0); len(got) != 1 || got[0] != 20 {
		t.Errorf("partition 0's batches %v, want one of 20", got)
	}
	if most := b.most.Load(); most != 1 {
		t.Errorf("%d calls at once, want 1 (Turns 1)", most)
	}
}

// A function that does not return delays the other partitions' batches
// by TurnWait: it does not stop them.
func TestTurnWaitBoundsAHungFunction(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL)
	k := group(t, c, consumer.Config{MaxInFlight: 64, MaxBatch: 64, Turns: 1, TurnWait: 50 * time.Millisecond, DrainTimeout: time.Second})
	var handled atomic.Int32
	hold, inside := make(chan struct{}), make(chan struct{}, 1)
	testrun.Background(t, "RunBatch", func(ctx context.Context) error {
		return k.RunBatch(ctx, func(ctx context.Context, ds []*consumer.Delivery) {
			ackAll(ctx, ds, hold, inside)
			if ds[0].Partition == 0 {
				handled.Add(int32(len(ds)))
			}
		})
	})
	t.Cleanup(func() { close(hold) }) // before RunBatch stops
	publishTo(t, c, 1, 1)
	<-inside
	for range 5 { // one at a time: each waits for a turn anew
		before := handled.Load()
		publishTo(t, c, 0, 1)
		waitFor(t, "partition 0 handled past the hung function", func() bool { return handled.Load() > before })
	}
}

// A delivery waiting to be tried again holds no turn: the other
// partitions go on at once, though TurnWait is long.
func TestARetryHoldsNoTurn(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL)
	k := group(t, c, consumer.Config{MaxInFlight: 64, MaxBatch: 64, Turns: 1, TurnWait: time.Hour, DrainTimeout: time.Second})
	var handled atomic.Int32
	asked := make(chan struct{})
	var once sync.Once
	testrun.Background(t, "RunBatch", func(ctx context.Context) error {
		return k.RunBatch(ctx, func(ctx context.Context, ds []*consumer.Delivery) {
			if ds[0].Partition == 1 {
				ds[0].RetryAfter(time.Hour)
				once.Do(func() { close(asked) })
				return
			}
			ackAll(ctx, ds, nil, nil)
			handled.Add(int32(len(ds)))
		})
	})
	publishTo(t, c, 1, 1)
	<-asked
	publishTo(t, c, 0, 3)
	waitFor(t, "partition 0 handled while partition 1 waits to retry", func() bool { return handled.Load() == 3 })
}

// quick polls cond for up to 5s.
func quick(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testrun.Wait(t, what, 5*time.Second, cond)
}

// A batch of other groups' markers only, which hands the function
// nothing, holds no turn after it.
func TestMarkersHoldNoTurn(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL)
	k := group(t, c, consumer.Config{MaxInFlight: 64, MaxBatch: 64, Turns: 1, TurnWait: time.Hour, DrainTimeout: time.Second})
	var handled atomic.Int32
	stop := testrun.Background(t, "RunBatch", func(ctx context.Context) error {
		return k.RunBatch(ctx, func(ctx context.Context, ds []*consumer.Delivery) {
			for _, d := range ds {
				_ = d.Ack()
			}
			handled.Add(int32(len(ds)))
		})
	})
	for range 3 {
		m := nats.NewMsg(bus.Subject("visits", "default", 0, "Booked"))
		m.Header.Set(bus.HeaderReplayGroup, "other")
		m.Data = []byte("1")
		if _, err := c.JetStream().PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "markers acked", func() bool { return pending(t, c, 0) == 0 && handled.Load() == 0 })
	time.Sleep(100 * time.Millisecond)
	if n := consumer.TurnsHeld(k); n != 0 {
		t.Errorf("%d turns held after markers only", n)
	}
	publishTo(t, c, 1, 1)
	quick(t, "partition 1 handled", func() bool { return handled.Load() == 1 })
	stop()
	if n := consumer.TurnsHeld(k); n != 0 {
		t.Errorf("%d turns held after RunBatch returned", n)
	}
}

// A partition released while it waits for a turn gives the turn back
// once it has it.
func TestReleaseWhileWaitingForATurn(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL)
	k := group(t, c, consumer.Config{MaxInFlight: 64, MaxBatch: 64, Turns: 1, TurnWait: time.Hour, DrainTimeout: time.Second})
	hold, inside := make(chan struct{}), make(chan struct{}, 1)
	var handled atomic.Int32
	stop := testrun.Background(t, "RunBatch", func(ctx context.Context) error {
		return k.RunBatch(ctx, func(ctx context.Context, ds []*consumer.Delivery) {
			ackAll(ctx, ds, hold, inside)
			if ds[0].Partition == 0 {
				handled.Add(int32(len(ds)))
			}
		})
	})
	publishTo(t, c, 1, 1)
	<-inside
	publishTo(t, c, 0, 5)
	waitFor(t, "p0 waits", func() bool { return pending(t, c, 0) == 5 })
	time.Sleep(200 * time.Millisecond) // p0 in take
	consumer.ReleasePartition(k, 0)
	close(hold)
	waitFor(t, "p0 handled after release", func() bool { return handled.Load() >= 5 })
	time.Sleep(100 * time.Millisecond)
	if n := consumer.TurnsHeld(k); n != 0 {
		t.Errorf("%d turns held", n)
	}
	publishTo(t, c, 3, 1)
	publishTo(t, c, 0, 1)
	quick(t, "p0 again", func() bool { return handled.Load() >= 6 })
	stop()
	if n := consumer.TurnsHeld(k); n != 0 {
		t.Errorf("%d turns held after RunBatch returned", n)
	}
}
