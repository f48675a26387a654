package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// e2eScenario appends c.n events to c.shards stores, relays them and
// handles them with one consumer in this process; see the package doc.
func e2eScenario(ctx context.Context, c config) (*result, error) {
	inbox := c.scenario == "e2e-inbox"
	reg := sharding.NewRegistry()
	defer reg.Close()
	stores := make([]store.Store, c.shards)
	perShard := (c.writers + c.shards - 1) / c.shards
	for i := range c.shards {
		// The shard's writers, one more, two for its relay (reads and
		// checkpoints; the lease has its own), and the handler's transactions.
		st, cleanup, err := openShard(ctx, c, fmt.Sprintf("s%02d", i), perShard+4)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		if err := reg.Add(st); err != nil {
			return nil, err
		}
		stores[i] = st
		if inbox {
			if err := createEffects(ctx, st); err != nil {
				return nil, err
			}
		}
	}

	relayConn, closeRelayConn, err := connectNATS(ctx, c, 0)
	if err != nil {
		return nil, err
	}
	defer closeRelayConn()
	consumerConn := relayConn
	if c.nats != "" { // the consumer has a connection of its own, as in another process
		conn, closeConn, err := connectNATS(ctx, c, 0)
		if err != nil {
			return nil, err
		}
		defer closeConn()
		consumerConn = conn
	}
	js := relayConn.JetStream()
	for _, name := range []string{bus.StreamName(c.contextName), deadletter.StreamName(c.contextName)} {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("delete stream %s: %w", name, err)
		}
	}
	defer func() {
		if c.nats != "" {
			_ = js.DeleteStream(context.Background(), bus.StreamName(c.contextName))
			_ = js.DeleteStream(context.Background(), deadletter.StreamName(c.contextName))
		}
	}()

	ids := make([]uuid.UUID, c.n)
	index := make(map[uuid.UUID]int, c.n) // read-only once the run starts
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		index[ids[i]] = i
	}
	// Nanoseconds since t0 (monotonic); 0 = not yet.
	committed, acked, started := make([]atomic.Int64, c.n), make([]atomic.Int64, c.n), make([]atomic.Int64, c.n)
	done := make([]atomic.Int64, c.n) // e2e-inbox: the handler's transaction committed (handlers.AfterCommit)
	var handled, duplicates, doneN atomic.Int64
	var lastHandled atomic.Int64
	// The events to handle: all, less those of poisoned streams, known once
	// written; all is signalled whenever handled may have reached it.
	var target atomic.Int64
	target.Store(int64(c.n))
	all := make(chan struct{}, 1)
	poisoned := poisonedStreams(c)
	t0 := time.Now()
	begin := func(id uuid.UUID) {
		now := int64(time.Since(t0))
		i, ok := index[id]
		if !ok {
			return
		}
		if !started[i].CompareAndSwap(0, now) {
			duplicates.Add(1)
			return
		}
		lastHandled.Store(now)
		if handled.Add(1) >= target.Load() {
			signal(all)
		}
	}
	refuse := func(m handlers.Message) error {
		if poisoned[m.Event.Stream] {
			return handlers.Permanent(errors.New("bench: poisoned stream"))
		}
		begin(m.Event.ID)
		return nil
	}

	g := &handlers.Group{Name: "bench", Context: c.contextName}
	mws := handlers.Defaults(nil)
	var batches *sharding.Registry
	chain := "Recover, Correlate in the Router's span (the Router retries and dead-letters)"
	if inbox {
		mws, batches = handlers.Defaults(reg), reg
		chain += ", Shard, Inbox; a partition's waiting messages share a transaction (RouterConfig.Stores)"
		handlers.HandleMessage(g, "effect", "MoneyDeposited", func(ctx context.Context, m handlers.Message) error {
			if err := refuse(m); err != nil {
				return err
			}
			if i, ok := index[m.Event.ID]; ok {
				handlers.AfterCommit(ctx, func() {
					if done[i].CompareAndSwap(0, int64(time.Since(t0))) {
						doneN.Add(1)
					}
				})
			}
			return effect(ctx, m, c.derive)
		})
	} else {
		handlers.HandleMessage(g, "noop", "MoneyDeposited", func(ctx context.Context, m handlers.Message) error {
			return refuse(m)
		})
	}
	router, err := handlers.NewRouter(consumerConn, handlers.RouterConfig{Middleware: mws, Stores: batches, Logger: c.log, MaxInFlight: c.inFlight, Turns: c.turns, TurnWait: c.turnWait})
	if err != nil {
		return nil, err
	}
	if err := router.Add(g); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make(chan error, c.shards+1)
	running := 0
	run := func(fn func(context.Context) error) {
		running++
		go func() { errs <- fn(runCtx) }()
	}
	defer func() {
		stop()
		for range running {
			<-errs
		}
	}()
	relays := make([]*bus.Relay, c.shards)
	for i, st := range stores {
		onAcked := func(evs []store.Event) {
			now := int64(time.Since(t0))
			for _, ev := range evs {
				if i, ok := index[ev.ID]; ok {
					acked[i].CompareAndSwap(0, now)
				}
			}
		}
		if relays[i], err = bus.NewRelay(relayConn, st.(store.Outbox), bus.RelayConfig{Logger: c.log, Acked: onAcked}); err != nil {
			return nil, err
		}
		run(relays[i].Run)
	}
	startRouter := func() error {
		run(router.Run)
		select {
		case <-router.Ready():
			return nil
		case err := <-errs:
			return fmt.Errorf("consumer: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !c.backlog {
		if err := startRouter(); err != nil {
			return nil, err
		}
	}
	for _, r := range relays {
		for !r.Status().Leader {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			time.Sleep(time.Millisecond)
		}
	}

	var skipped atomic.Int64 // events of poisoned streams
	bad := make([]bool, c.n)
	_, start, wall, err := writeAll(ctx, stores[0], c, load{per: 1, rate: c.rate, ids: ids, stores: stores,
		committed: func(i int, stream string, at time.Time) {
			committed[i].Store(int64(at.Sub(t0)))
			if poisoned[stream] {
				bad[i] = true
				skipped.Add(1)
			}
		}})
	if err != nil {
		return nil, err
	}
	backlog := int(int64(c.n) - skipped.Load() - handled.Load()) // appended, not yet handled, as the last append returned
	if c.backlog {                                               // the handlers start once JetStream holds every event
		if err := waitAcked(ctx, acked, errs); err != nil {
			return nil, err
		}
		start = time.Now()
		if err := startRouter(); err != nil {
			return nil, err
		}
	}
	target.Store(int64(c.n) - skipped.Load())
	signal(all)
	for handled.Load() < target.Load() {
		select {
		case <-all:
		case err := <-errs:
			return nil, fmt.Errorf("a relay or the consumer stopped: %v", err)
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the handlers: %w: %d of %d handled", ctx.Err(), handled.Load(), target.Load())
		}
	}
	for inbox && doneN.Load() < target.Load() && ctx.Err() == nil { // the last handlers' commits
		time.Sleep(time.Millisecond)
	}
	var lat, relayLat, deliverLat, commitLat []time.Duration
	early, end := 0, lastHandled.Load()
	for i := range c.n {
		if bad[i] {
			continue
		}
		cm, ak, st := committed[i].Load(), acked[i].Load(), started[i].Load()
		if st < cm {
			early++ // the handler started before the writer noted its commit
		}
		lat = append(lat, time.Duration(max(st-cm, 0)))
		relayLat, deliverLat = append(relayLat, time.Duration(max(ak-cm, 0))), append(deliverLat, time.Duration(max(st-ak, 0)))
		if dn := done[i].Load(); dn > 0 {
			commitLat = append(commitLat, time.Duration(max(dn-cm, 0)))
			end = max(end, dn)
		}
	}
	elapsed := time.Duration(end) - start.Sub(t0) // to the last handler's start (e2e-inbox: commit)
	settings := map[string]any{
		"events_per_call": 1, "size": c.size, "shards": c.shards, "chain": chain, "partitions": bus.DefaultPartitions,
		"handler_before_commit_seen": early, "duplicates": duplicates.Load(),
	}
	natsSettings(c, settings)
	notes := "Append 1 event per call; relay per store; one handlers.Router, one group, no-op handler; latency = Append returned → handler start"
	if inbox {
		notes = "as e2e; the handler inserts a row and appends a derived event in the shard transaction (Shard + Inbox)"
		settings["derive"] = c.derive
		settings["turns"] = cmp.Or(c.turns, max(runtime.GOMAXPROCS(0), 2)) // RouterConfig.Turns's default
		if c.turns < 0 {
			settings["turns"] = "all partitions"
		}
	}
	settings["streams"], settings["poisoned_events"] = c.streamCount(), skipped.Load()
	if c.backlog {
		settings["backlog"] = "every event appended and relayed before the handlers started; handled_per_s from their start"
	}
	res := &result{N: c.n, Writers: c.writers, WallS: round(wall.Seconds(), 3), PerS: round(float64(c.n)/wall.Seconds(), 0),
		Handled: round(float64(target.Load())/elapsed.Seconds(), 0), Settings: settings, Notes: notes}
	res.P50Ms, res.P99Ms, res.MaxMs = percentiles(lat)
	settings["backlog_at_append_end"] = max(backlog, 0) // 0 printed too: the handlers kept up
	// Where the time goes: commit → the relay sees JetStream's ack, and that
	// ack → handler start (the two overlap when a handler starts before the
	// relay has read its ack).
	settings["relay_p50_ms"], settings["relay_p99_ms"], _ = percentiles(relayLat)
	settings["deliver_p50_ms"], settings["deliver_p99_ms"], _ = percentiles(deliverLat)
	if inbox { // commit → the handler's transaction committed
		settings["handler_commit_p50_ms"], settings["handler_commit_p99_ms"], _ = percentiles(commitLat)
	}
	return res, nil
}

// waitAcked waits until JetStream acknowledged every event, or a relay
// stopped.
func waitAcked(ctx context.Context, acked []atomic.Int64, errs <-chan error) error {
	for i := range acked {
		for acked[i].Load() == 0 {
			select {
			case err := <-errs:
				return fmt.Errorf("a relay stopped: %v", err)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	return nil
}

// createEffects makes the table e2e-inbox's handler writes to.
func createEffects(ctx context.Context, st store.Store) error {
	switch s := st.(type) {
	case *postgres.Store:
		_, err := s.Pool().Exec(ctx, `CREATE TABLE `+s.Schema()+`.bench_effects (event_id uuid PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL)`)
		return err
	case *sqlite.Store:
		_, err := s.DB().ExecContext(ctx, `CREATE TABLE bench_effects (event_id TEXT PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL)`)
		return err
	}
	return fmt.Errorf("no effects table for %T", st)
}

// effect is e2e-inbox's handler: a row of the application's own and a
// derived event, in the transaction Shard opened: deferred to the
// batch's commit, or appended at once (derive "append").
func effect(ctx context.Context, m handlers.Message, derive string) error {
	st, ok := handlers.Store(ctx)
	if !ok {
		return errors.New("no store in ctx")
	}
	switch s := st.(type) {
	case *postgres.Store:
		tx, _ := s.Tx(ctx)
		if _, err := tx.Exec(ctx, `INSERT INTO `+s.Schema()+`.bench_effects VALUES ($1, $2, $3)`, m.Event.ID, m.Event.Stream, m.Event.Version); err != nil {
			return err
		}
	case *sqlite.Store:
		tx, _ := s.Tx(ctx)
		if _, err := tx.ExecContext(ctx, `INSERT INTO bench_effects VALUES (?, ?, ?)`, m.Event.ID.String(), m.Event.Stream, m.Event.Version); err != nil {
			return err
		}
	}
	derived := store.Event{Type: "Derived", Data: []byte(`{"ok":true}`)}
	if derive == "append" {
		_, err := st.Append(ctx, "derived-"+m.Event.Stream, store.Any, derived)
		return err
	}
	return store.AppendDeferred(ctx, st, "derived-"+m.Event.Stream, store.Any, derived)
}

// poisonedStreams are the streams whose events e2e's handler refuses: a
// fraction c.poison of them, spread evenly.
func poisonedStreams(c config) map[string]bool {
	out := map[string]bool{}
	n := c.streamCount()
	if c.poison <= 0 {
		return out
	}
	every := max(int(1/c.poison), 1)
	for k := 0; k < n; k += every {
		out[c.streamName(k)] = true
	}
	return out
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
