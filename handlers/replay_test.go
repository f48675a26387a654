package handlers_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/backoff"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/store"
)

// startRouter runs a router of groups with the default chain until stop
// or the end of the test.
func startRouter(t *testing.T, f *fixture, c *bus.Conn, ackWait time.Duration, groups ...*handlers.Group) (*handlers.Router, func()) {
	t.Helper()
	r, err := handlers.NewRouter(c, handlers.RouterConfig{Middleware: handlers.Defaults(f.reg), Stores: f.reg, AckWait: ackWait,
		Backoff: backoff.Config{Max: 200 * time.Millisecond}, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(groups...); err != nil {
		t.Fatal(err)
	}
	stop := testrun.Background(t, "router", r.Run)
	select {
	case <-r.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("router not ready")
	}
	return r, stop
}

// failing is the effects group whose handler fails for the events fails
// says, and records the others.
func failing(f *fixture, name string, fails func(m handlers.Message) bool) *handlers.Group {
	record := recordEffect(f)
	g := &handlers.Group{Name: name, Context: "visits", MaxAttempts: 1}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		if fails(m) {
			return errors.New("fails")
		}
		return record(ctx, v, m)
	})
	return g
}

// published waits until every store's relay has published what it holds
// and group has nothing pending: whatever the group would do with the
// events appended so far is done.
func (f *fixture) published(t *testing.T, c *bus.Conn, group string) {
	t.Helper()
	for shard, r := range f.relays {
		waitFor(t, "the relay of "+shard, 20*time.Second, func() bool {
			n, err := r.Lag(context.Background())
			return err == nil && n == 0
		})
	}
	settled(t, c, group)
}

// After a restart the first delivery of a partition is a marker — of this
// group or of another — and the dead letters the replica before made in
// that partition still park their streams.
func TestHandoverKnowsTheDeadLetters(t *testing.T) {
	for _, firstIs := range []string{"own marker", "other group's marker"} {
		t.Run(firstIs, func(t *testing.T) {
			f := newFixture(t, "tenant-a")
			c := connect(t, f.srv.URL)
			f.relay(t, c)
			T := sharing("S", "T", 1)[0]
			groups := func() []*handlers.Group {
				effects := failing(f, "effects", func(m handlers.Message) bool {
					return m.Event.Version == 1 && (m.Event.Stream == "S" || firstIs == "own marker")
				})
				audit := failing(f, "audit", func(m handlers.Message) bool { return m.Event.Stream == T && m.Event.Version == 0 })
				return []*handlers.Group{effects, audit}
			}
			_, stop := startRouter(t, f, c, 2*time.Second, groups()...)
			f.appendTo(t, "tenant-a", "S", 0, 3)
			f.appendTo(t, "tenant-a", T, 0, 3)
			f.published(t, c, "effects")
			f.published(t, c, "audit")
			stop()
			// While no replica runs, a marker lands first in the partition.
			q, _ := deadletter.Provision(context.Background(), c, "visits")
			group := "audit"
			if firstIs == "own marker" {
				group = "effects"
			}
			dls, err := q.List(context.Background(), group, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, dl := range dls {
				if dl.Event.Stream == T {
					if err := q.Discard(context.Background(), dl.Seq, deadletter.ReleaseFollowers); err != nil {
						t.Fatal(err)
					}
				}
			}
			startRouter(t, f, c, 2*time.Second, groups()...)
			f.appendTo(t, "tenant-a", "S", 3, 1)
			f.published(t, c, "effects")
			if got := f.versions(t, "tenant-a", "effects", "S"); !slices.Equal(got, []int64{0}) {
				t.Fatalf("S handled %v while its v1 is dead-lettered; want only 0", got)
			}
		})
	}
}

// A dead letter replayed twice — the second marker past JetStream's
// de-duplication window, both waiting behind a blocked partition — while
// it still fails: the first replay dead-letters it anew in its place, and
// the second finds the new one standing and does nothing.
func TestReplayOfAReplacedDeadLetter(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c, err := bus.Connect(context.Background(), bus.Config{URL: f.srv.URL, Logger: logger(t), Stream: bus.StreamConfig{Duplicates: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f.relay(t, c)
	var down atomic.Bool
	W := sharing("S", "W", 1)[0]
	record := recordEffect(f)
	g := &handlers.Group{Name: "effects", Context: "visits", MaxAttempts: 1}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		switch {
		case m.Event.Stream == "S" && m.Event.Version == 3:
			return errors.New("S v3 fails")
		case m.Event.Stream == W && down.Load():
			return handlers.Unavailable(errors.New("down"))
		}
		return record(ctx, v, m)
	})
	r, _ := startRouter(t, f, c, 2*time.Second, g)
	f.appendTo(t, "tenant-a", "S", 0, 6)
	q, dls := parked(t, c, "effects", 1, 2, "S v3 dead, v4 and v5 parked")
	down.Store(true)
	f.appendTo(t, "tenant-a", W, 0, 1)
	p := bus.Partition("S", bus.DefaultPartitions)
	waitFor(t, "the partition blocked behind W", 20*time.Second, func() bool { _, ok := r.Status().Groups["effects"].Blocked[p]; return ok })
	if err := q.Replay(context.Background(), dls[0].Seq); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past the de-duplication window: a second marker
	if err := q.Replay(context.Background(), dls[0].Seq); err != nil {
		t.Fatal(err)
	}
	down.Store(false)
	waitFor(t, "W handled", 20*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", W)) == 1 })
	f.published(t, c, "effects")
	if got := f.versions(t, "tenant-a", "effects", "S"); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("S handled %v while v3 is dead-lettered again; want 0 1 2", got)
	}
	left, err := q.List(context.Background(), "effects", 0, 10)
	if err != nil || len(left) != 1 || left[0].Event.Version != 3 || left[0].Parked != 2 || left[0].Seq == dls[0].Seq {
		t.Fatalf("left %+v, %v; want S v3 dead-lettered anew with v4 and v5 behind it", left, err)
	}
}

// A parked message, or a dead letter with messages parked behind it, is
// not replayed, discarded or deleted on its own: the error says so.
func TestParkedRecordsAreEndedByTheirDeadLetter(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	startRouter(t, f, c, 2*time.Second, failing(f, "effects", func(m handlers.Message) bool { return m.Event.Version == 1 }))
	f.appendTo(t, "tenant-a", "S", 0, 4)
	q, dls := parked(t, c, "effects", 1, 2, "S v1 dead, v2 and v3 parked")
	ps, err := q.Parked(context.Background(), dls[0].Group, dls[0].ParkKey, 0, 10)
	if err != nil || len(ps) != 2 || !ps[0].IsParked || dls[0].IsParked {
		t.Fatalf("Parked = %+v, %v", ps, err)
	}
	for name, err := range map[string]error{
		"replay of a parked message":          q.Replay(context.Background(), ps[1].Seq),
		"discard of a parked message":         q.Discard(context.Background(), ps[0].Seq, deadletter.DropFollowers),
		"delete of a parked message":          q.Delete(context.Background(), ps[0].Seq),
		"delete of a dead letter with parked": q.Delete(context.Background(), dls[0].Seq),
	} {
		if !errors.Is(err, deadletter.ErrParked) {
			t.Errorf("%s: %v; want ErrParked", name, err)
		}
	}
	f.published(t, c, "effects")
	if got := f.versions(t, "tenant-a", "effects", "S"); !slices.Equal(got, []int64{0}) {
		t.Fatalf("S handled %v; want 0", got)
	}
}

// An event at the store's limit whose handler fails with a long error is
// dead-lettered: its dead letter fits NATS too.
func TestAnEventAtTheLimitCanBeDeadLettered(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	g := &handlers.Group{Name: "sizes", Context: "visits"}
	handlers.HandleMessage(g, "fail", "Booked", func(ctx context.Context, m handlers.Message) error {
		return handlers.Permanent(errors.New(strings.Repeat("e", 8192)))
	})
	startRouter(t, f, c, 2*time.Second, g)
	if _, err := f.stores["tenant-a"].Append(context.Background(), "big", store.Any, sized(t, store.DefaultMaxEventBytes)); err != nil {
		t.Fatal(err)
	}
	dls := deadLetters(t, c, "sizes", 1)
	if len(dls[0].Data) < store.DefaultMaxEventBytes/2 || len(dls[0].Error) > 4100 {
		t.Fatalf("dead letter of %d bytes, error of %d", len(dls[0].Data), len(dls[0].Error))
	}
}

// A marker carries the headers of the delivery that was dead-lettered;
// the pin that delivery came with must not stick: after the replay, a
// graceful stop leaves no pin behind, and the next replica goes on at
// once.
func TestAMarkerDoesNotCarryAStalePin(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	var fixed atomic.Bool
	group := func() *handlers.Group {
		return failing(f, "effects", func(m handlers.Message) bool { return m.Event.Version == 1 && !fixed.Load() })
	}
	const ackWait = 10 * time.Second
	_, stop := startRouter(t, f, c, ackWait, group())
	f.appendTo(t, "tenant-a", "S", 0, 3)
	q, dls := parked(t, c, "effects", 1, 1, "S v1 dead, v2 parked")
	stop()
	_, stop = startRouter(t, f, c, ackWait, group()) // another pin
	fixed.Store(true)
	if err := q.Replay(context.Background(), dls[0].Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "S replayed", 20*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", "S")) >= 3 })
	f.published(t, c, "effects")
	stop()
	startRouter(t, f, c, ackWait, group())
	start := time.Now()
	f.appendTo(t, "tenant-a", "S", 3, 1)
	waitFor(t, "S v3", 30*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", "S")) >= 4 })
	if d := time.Since(start); d > ackWait/2 {
		t.Fatalf("S v3 took %v after a graceful stop (AckWait %v): the pin was left behind", d, ackWait)
	}
}
