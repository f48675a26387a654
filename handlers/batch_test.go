package handlers_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
)

// appendAtOnce appends n Booked events to stream of shard in one call, so
// they reach a group's partition together and wait there as one batch.
func (f *fixture) appendAtOnce(t *testing.T, shard, stream string, n int) {
	t.Helper()
	evs := make([]store.Event, n)
	for i := range evs {
		evs[i] = mustBooked(t)
	}
	if _, err := f.stores[shard].Append(context.Background(), stream, store.Any, evs...); err != nil {
		t.Fatal(err)
	}
}

// appendTogether appends n Booked events to each of streams of shard in
// one transaction, so they reach a group's partition together.
func (f *fixture) appendTogether(t *testing.T, shard string, streams []string, n int) {
	t.Helper()
	if err := f.stores[shard].Transact(context.Background(), func(ctx context.Context) error {
		for _, stream := range streams {
			evs := make([]store.Event, n)
			for i := range evs {
				evs[i] = mustBooked(t)
			}
			if _, err := f.stores[shard].Append(ctx, stream, store.NoStream, evs...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// committed counts the effects of stream committed in shard, seen from
// outside any handler's transaction.
func (f *fixture) committed(t *testing.T, shard, stream string) int {
	t.Helper()
	return len(f.versions(t, shard, "effects", stream))
}

// A message failing in the middle of a batch: the ones before it commit
// once, it is tried again alone — the ones before it committed, none after
// it — and the ones after it follow in order. Every effect is there once.
func TestFailureInTheMiddleOfABatch(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	record := recordEffect(f)
	var failed atomic.Bool
	var mu sync.Mutex
	var seenAtRetry []int // effects committed before and after v10 when v10 is tried again
	g := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		if m.Event.Version == 10 {
			if failed.CompareAndSwap(false, true) {
				return errors.New("fails once")
			}
			before, after := 0, 0
			for _, got := range f.versions(t, "tenant-a", "effects", "s") {
				if got < 10 {
					before++
				} else {
					after++
				}
			}
			mu.Lock()
			seenAtRetry = append(seenAtRetry, before, after)
			mu.Unlock()
		}
		return record(ctx, v, m)
	})
	newRouter(t, f, c, g)
	f.appendAtOnce(t, "tenant-a", "s", 30)

	waitFor(t, "30 effects", 20*time.Second, func() bool { return f.committed(t, "tenant-a", "s") >= 30 })
	settled(t, c, "effects")
	if got := f.versions(t, "tenant-a", "effects", "s"); !slices.Equal(got, upTo(0, 29)) {
		t.Errorf("effects %v, want 0..29 once each, in order", got)
	}
	var txs int // the transactions the effects committed in: fewer than the effects when batched
	if err := f.stores["tenant-a"].Pool().QueryRow(context.Background(),
		`SELECT count(DISTINCT xmin::text) FROM `+f.schema("tenant-a")+`.effects WHERE stream = 's'`).Scan(&txs); err != nil {
		t.Fatal(err)
	}
	if txs >= 20 {
		t.Errorf("30 effects committed in %d transactions: the messages waiting together were not batched", txs)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seenAtRetry, []int{10, 0}) {
		t.Errorf("when v10 was tried again, %v effects before it and after it were committed; want 10 and 0", seenAtRetry)
	}
}

// A poison message inside a batch is dead-lettered as the policy says
// (Permanent: at once), the ones before it commit, the later ones of its
// stream are parked behind it, and the other streams of the batch go on.
func TestPoisonInsideABatch(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	record := recordEffect(f)
	others := sharing("s", "other", 2)
	g := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		if m.Event.Stream == "s" && m.Event.Version == 5 {
			return handlers.Permanent(errors.New("poison"))
		}
		return record(ctx, v, m)
	})
	newRouter(t, f, c, g)
	// One transaction: s 0..9 and the other streams of its partition, so
	// they reach the group together.
	f.appendTogether(t, "tenant-a", append([]string{"s"}, others...), 10)

	q, letters := parked(t, c, "effects", 1, 4, "the poison dead-lettered, 6..9 parked")
	if letters[0].Event.Stream != "s" || letters[0].Event.Version != 5 || letters[0].Attempts != 1 {
		t.Errorf("dead letter %s v%d after %d attempts, want s v5 after 1", letters[0].Event.Stream, letters[0].Event.Version, letters[0].Attempts)
	}
	waitFor(t, "the other streams", 20*time.Second, func() bool {
		return f.committed(t, "tenant-a", others[0]) == 10 && f.committed(t, "tenant-a", others[1]) == 10
	})
	if got := f.versions(t, "tenant-a", "effects", "s"); !slices.Equal(got, upTo(0, 4)) {
		t.Errorf("effects of s %v, want 0..4", got)
	}
	if err := q.Discard(context.Background(), letters[0].Seq, deadletter.ReleaseFollowers); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "6..9 released", 20*time.Second, func() bool { return f.committed(t, "tenant-a", "s") == 9 })
	if got := f.versions(t, "tenant-a", "effects", "s"); !slices.Equal(got, append(upTo(0, 4), upTo(6, 9)...)) {
		t.Errorf("effects of s %v, want 0..4 6..9", got)
	}
}

// AfterCommit runs once the message's effect is committed, batched or
// not, and never for an attempt rolled back.
func TestAfterCommit(t *testing.T) {
	for _, unbatched := range []bool{false, true} {
		t.Run(map[bool]string{false: "batched", true: "unbatched"}[unbatched], func(t *testing.T) {
			f := newFixture(t, "tenant-a")
			c := connect(t, f.srv.URL)
			f.relay(t, c)
			record := recordEffect(f)
			var failed atomic.Bool
			var mu sync.Mutex
			var ran []int64       // versions whose callback ran, in order
			var invisible []int64 // versions whose effect was not committed when it ran
			g := &handlers.Group{Name: "effects", Context: "visits", Unbatched: unbatched}
			handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
				version := m.Event.Version
				handlers.AfterCommit(ctx, func() {
					committed := slices.Contains(f.versions(t, "tenant-a", "effects", "s"), version)
					mu.Lock()
					defer mu.Unlock()
					ran = append(ran, version)
					if !committed {
						invisible = append(invisible, version)
					}
				})
				if err := record(ctx, v, m); err != nil {
					return err
				}
				if version == 3 && failed.CompareAndSwap(false, true) {
					return errors.New("fails once, after its effect and its callback")
				}
				return nil
			})
			newRouter(t, f, c, g)
			f.appendAtOnce(t, "tenant-a", "s", 8)
			waitFor(t, "8 callbacks", 20*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(ran) >= 8
			})
			settled(t, c, "effects")
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(ran, []int64{0, 1, 2, 3, 4, 5, 6, 7}) || len(invisible) > 0 {
				t.Errorf("callbacks ran for %v (want 0..7 once each), before their commit for %v", ran, invisible)
			}
		})
	}
}

// A partition holds the streams of every shard: its waiting messages are
// batched shard by shard, each shard's in a transaction of its own store,
// and a failure in one shard holds back none of the other's. Stream s of
// both shards shares a partition.
func TestBatchesPerShard(t *testing.T) {
	f := newFixture(t, "tenant-a", "tenant-b")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	record := recordEffect(f)
	var failed atomic.Bool
	g := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		if m.Shard == "tenant-a" && m.Event.Version == 10 && failed.CompareAndSwap(false, true) {
			return errors.New("fails once")
		}
		return record(ctx, v, m)
	})
	newRouter(t, f, c, g)
	for range 3 {
		f.appendAtOnce(t, "tenant-a", "s", 10) // versions 0..29 in three calls
		f.appendAtOnce(t, "tenant-b", "s", 10)
	}
	for _, sh := range []string{"tenant-a", "tenant-b"} {
		waitFor(t, sh+": 30 effects", 20*time.Second, func() bool { return f.committed(t, sh, "s") >= 30 })
	}
	settled(t, c, "effects")
	for _, sh := range []string{"tenant-a", "tenant-b"} {
		if got := f.versions(t, sh, "effects", "s"); !slices.Equal(got, upTo(0, 29)) {
			t.Errorf("%s: effects %v, want 0..29 once each, in order", sh, got)
		}
		var txs int
		if err := f.stores[sh].Pool().QueryRow(context.Background(),
			`SELECT count(DISTINCT xmin::text) FROM `+f.schema(sh)+`.effects`).Scan(&txs); err != nil {
			t.Fatal(err)
		}
		if txs >= 20 {
			t.Errorf("%s: 30 effects in %d transactions: not batched", sh, txs)
		}
	}
}

// RouterConfig.Stores that is not the chain's registry (the same
// databases opened twice) cannot carry the chain's transactions: the
// group falls back to a transaction per message, and nothing is
// dead-lettered for it.
func TestBatchesWithAnotherRegistry(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	other := sharding.NewRegistry()
	if err := other.Add(f.open(t, "tenant-a")); err != nil {
		t.Fatal(err)
	}
	g := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(g, "record", "Booked", recordEffect(f))
	r, err := handlers.NewRouter(c, handlers.RouterConfig{Middleware: handlers.Defaults(f.reg), Stores: other, AckWait: 2 * time.Second, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(g); err != nil {
		t.Fatal(err)
	}
	background(t, r.Run)
	f.appendAtOnce(t, "tenant-a", "s", 20)
	waitFor(t, "20 effects", 20*time.Second, func() bool { return f.committed(t, "tenant-a", "s") >= 20 })
	settled(t, c, "effects")
	if got := f.versions(t, "tenant-a", "effects", "s"); !slices.Equal(got, upTo(0, 19)) {
		t.Errorf("effects %v, want 0..19 once each, in order", got)
	}
	q, _ := deadletter.Provision(context.Background(), c, "visits")
	if dls, _ := q.List(context.Background(), "", 0, 10); len(dls) != 0 {
		t.Fatalf("dead-lettered: %+v", dls)
	}
}

// A handler that leaves the transaction unable to commit (it swallows an
// SQL error): the batch's commit fails, no other message is blamed, each
// goes through a transaction of its own, and only the culprit is retried
// and dead-lettered.
func TestCommitFailureBlamesItsCause(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	record := recordEffect(f)
	others := sharing("bad", "other", 3)
	var blamed atomic.Int64 // attempts past the first at the other streams' messages
	g := &handlers.Group{Name: "effects", Context: "visits", MaxAttempts: 2}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		if m.Event.Stream != "bad" && m.Attempt > 1 {
			blamed.Add(1)
		}
		if m.Event.Stream == "bad" {
			st, _ := handlers.Store(ctx)
			tx, _ := st.(*postgres.Store).Tx(ctx)
			_, _ = tx.Exec(ctx, `SELECT 1/0`) // swallowed: the transaction can no longer commit
			return nil
		}
		return record(ctx, v, m)
	})
	newRouter(t, f, c, g)
	f.appendTogether(t, "tenant-a", []string{others[0], "bad", others[1], others[2]}, 2)
	dls := deadLetters(t, c, "effects", 1)
	if dls[0].Event.Stream != "bad" || dls[0].Event.Version != 0 || dls[0].Attempts != 2 {
		t.Errorf("dead letter %s v%d after %d attempts, want bad v0 after 2", dls[0].Event.Stream, dls[0].Event.Version, dls[0].Attempts)
	}
	waitFor(t, "the other streams", 20*time.Second, func() bool {
		return !slices.ContainsFunc(others, func(s string) bool { return f.committed(t, "tenant-a", s) < 2 })
	})
	settled(t, c, "effects")
	for _, s := range others {
		if got := f.versions(t, "tenant-a", "effects", s); !slices.Equal(got, upTo(0, 1)) {
			t.Errorf("%s: effects %v, want 0 1", s, got)
		}
	}
	if n := blamed.Load(); n != 0 {
		t.Errorf("%d failed attempts counted against messages that did nothing wrong", n)
	}
}

// With one turn, the messages of a partition that arrive while another
// partition's batch runs wait for it, then share one transaction.
func TestTurnsBatchWhatWaits(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	slow, fast := "slow", "fast"
	for i := 0; bus.Partition(fast, bus.DefaultPartitions) == bus.Partition(slow, bus.DefaultPartitions); i++ {
		fast = "fast-" + strconv.Itoa(i)
	}
	hold, inside := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	txs := map[string]int{} // fast's messages per transaction id
	g := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, _ Booked, m handlers.Message) error {
		if m.Event.Stream == slow {
			once.Do(func() {
				close(inside)
				select {
				case <-hold:
				case <-ctx.Done():
				}
			})
			return nil
		}
		st, _ := handlers.Store(ctx)
		tx, ok := st.(*postgres.Store).Tx(ctx)
		if !ok {
			return errors.New("no transaction in ctx")
		}
		var id string
		if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&id); err != nil {
			return err
		}
		mu.Lock()
		txs[id]++
		mu.Unlock()
		return nil
	})
	r, err := handlers.NewRouter(c, handlers.RouterConfig{Middleware: handlers.Defaults(f.reg), Stores: f.reg, Turns: 1, TurnWait: time.Minute, AckWait: 2 * time.Second, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(g); err != nil {
		t.Fatal(err)
	}
	background(t, r.Run)
	// fast's events go to JetStream as the relay would send them: slow's
	// open transaction holds the relay back.
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			ev := mustBooked(t)
			ev.ID, ev.Stream, ev.Version, ev.Position, ev.RecordedAt = uuid.Must(uuid.NewV7()), fast, int64(i), store.Position{Commit: 1000, Seq: int64(i)}, time.Now()
			if _, err := c.JetStream().PublishMsg(context.Background(), bus.Encode(ev, "visits", "tenant-a", bus.DefaultPartitions)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 1) // the partition's first delivery, a hand-over, goes alone
	waitFor(t, "fast's first message", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(txs) == 1
	})
	f.appendAtOnce(t, "tenant-a", slow, 1)
	select {
	case <-inside: // slow's batch has the one turn
	case <-time.After(30 * time.Second):
		t.Fatal("the slow stream's message was not handled")
	}
	publish(1, 21)
	jc, err := c.JetStream().Consumer(context.Background(), bus.StreamName("visits"), consumer.DurableName("effects", bus.Partition(fast, bus.DefaultPartitions)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fast's 20 messages in hand", 30*time.Second, func() bool {
		info, err := jc.Info(context.Background())
		return err == nil && info.NumAckPending == 20
	})
	close(hold)
	settled(t, c, "effects")
	mu.Lock()
	defer mu.Unlock()
	if len(txs) != 2 {
		t.Errorf("fast's 1 + 20 messages took transactions %v, want two", txs)
	}
}
