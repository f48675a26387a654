package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
)

// relayBatch is the relay's read and publish batch (bus's default).
const relayBatch = 1000

// relayRun is a relay of one store to a fresh JetStream stream, counting the
// events JetStream acknowledged.
type relayRun struct {
	c      config
	relay  *bus.Relay
	stream *bus.Stream
	want   int64
	acked  atomic.Int64
	all    chan struct{} // closed once want events were acked
	exited chan struct{} // closed when Run returned; runErr is its error
	runErr error
	cancel context.CancelFunc
}

// newRelay connects to NATS (or starts an embedded server in a temporary
// folder), provisions the run's stream empty, and prepares the relay of st;
// hook, when set, also sees every acked run of events. stop stops the relay
// and closes the connection.
func newRelay(ctx context.Context, c config, st store.Outbox, hook func([]store.Event)) (r *relayRun, stop func(), err error) {
	conn, closeConn, err := connectNATS(ctx, c, 0)
	if err != nil {
		return nil, nil, err
	}
	r = &relayRun{c: c, want: int64(c.n), all: make(chan struct{}), exited: make(chan struct{})}
	stop = func() {
		if r.cancel != nil {
			r.cancel()
			<-r.exited
		}
		if c.nats != "" {
			_ = conn.JetStream().DeleteStream(context.Background(), bus.StreamName(c.contextName))
		}
		closeConn()
	}
	// The context is new, so its stream should not exist; delete it anyway
	// in case an earlier run on the same server left one.
	if err := conn.JetStream().DeleteStream(ctx, bus.StreamName(c.contextName)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		stop()
		return nil, nil, fmt.Errorf("delete stream %s: %w", bus.StreamName(c.contextName), err)
	}
	if r.stream, err = conn.ProvisionStream(ctx, c.contextName); err != nil {
		stop()
		return nil, nil, err
	}
	r.relay, err = bus.NewRelay(conn, st, bus.RelayConfig{BatchSize: relayBatch, Logger: c.log, Acked: func(evs []store.Event) {
		if hook != nil {
			hook(evs)
		}
		// Acked runs on the relay's goroutine only: the run that reaches
		// want closes all, once.
		if n := r.acked.Add(int64(len(evs))); n >= r.want && n-int64(len(evs)) < r.want {
			close(r.all)
		}
	}})
	if err != nil {
		stop()
		return nil, nil, err
	}
	return r, stop, nil
}

// start runs the relay in the background; with leading it returns once the
// relay leads the store.
func (r *relayRun) start(ctx context.Context, leading bool) error {
	runCtx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	go func() {
		r.runErr = r.relay.Run(runCtx)
		close(r.exited)
	}()
	for leading && !r.relay.Status().Leader {
		select {
		case <-r.exited:
			return fmt.Errorf("relay stopped: %v", r.runErr)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the relay to lead: %w (last error: %v)", ctx.Err(), r.relay.Status().LastError)
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// wait returns once JetStream acknowledged every event.
func (r *relayRun) wait(ctx context.Context) error {
	select {
	case <-r.all:
		return nil
	case <-r.exited:
		return fmt.Errorf("relay stopped: %v", r.runErr)
	case <-ctx.Done():
		return fmt.Errorf("waiting for the relay: %w: %d of %d events acked (last error: %v)",
			ctx.Err(), r.acked.Load(), r.want, r.relay.Status().LastError)
	}
}

// finish waits for the relay's saved lag to reach 0, checks that the stream
// holds exactly the events appended, and adds the relay's settings.
func (r *relayRun) finish(ctx context.Context, settings map[string]any) error {
	for {
		lag, err := r.relay.Lag(ctx)
		if err == nil && lag == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for lag 0: %w (lag %d, %v)", ctx.Err(), lag, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	info, err := r.stream.JetStream().Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != uint64(r.want) {
		return fmt.Errorf("stream %s holds %d messages, want %d", r.stream.Name, info.State.Msgs, r.want)
	}
	settings["relay"] = true
	settings["relay_batch"] = relayBatch
	natsSettings(r.c, settings)
	return nil
}

// natsSettings notes the NATS server a run used: c.nats, fsyncing as it is
// configured, or the embedded one, as -nats-sync says.
func natsSettings(c config, settings map[string]any) {
	settings["nats"], settings["nats_sync"] = "external", "server"
	if c.nats == "" {
		settings["nats"], settings["nats_sync"] = "embedded", c.natsSync
	}
}

// drainScenario pre-fills a store with c.n events, 100 to an Append, then
// times a relay from its start until JetStream acknowledged all of them.
func drainScenario(ctx context.Context, c config) (*result, error) {
	s, cleanup, err := openStore(ctx, c)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	r, stop, err := newRelay(ctx, c, s, nil)
	if err != nil {
		return nil, err
	}
	defer stop()
	const per = 100
	_, _, fill, err := writeAll(ctx, s, c, load{per: per, newStream: true})
	if err != nil {
		return nil, fmt.Errorf("pre-fill: %w", err)
	}
	cpu0 := snapCPU(c.pgPID, c.natsPID)
	start := time.Now()
	if err := r.start(ctx, false); err != nil {
		return nil, err
	}
	if err := r.wait(ctx); err != nil {
		return nil, err
	}
	wall := time.Since(start)
	timed := cpuUse(cpu0, snapCPU(c.pgPID, c.natsPID))
	settings := map[string]any{"events_per_call": per, "size": c.size, "prefill_s": round(fill.Seconds(), 3)}
	if err := r.finish(ctx, settings); err != nil {
		return nil, err
	}
	perS := round(float64(c.n)/wall.Seconds(), 0)
	return &result{N: c.n, Writers: c.writers, WallS: round(wall.Seconds(), 3), PerS: perS, Handled: perS, Settings: settings, timed: timed,
		Notes: "store pre-filled with n events (100 per Append, one stream per Append, by the writers); wall_s from relay start to JetStream's last ack; per_s = events acked per second"}, nil
}

// latencyScenario appends one event per Append at c.rate events/s with a
// relay running; an event's latency runs from its Append returning to the
// relay seeing JetStream's ack. Both instants are recorded as they happen
// (an ack may be seen before its writer notes the commit) and paired at the
// end.
func latencyScenario(ctx context.Context, c config) (*result, error) {
	s, cleanup, err := openStore(ctx, c)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	ids := make([]uuid.UUID, c.n)
	index := make(map[uuid.UUID]int, c.n) // read-only once the run starts
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		index[ids[i]] = i
	}
	// Nanoseconds since t0 (monotonic); 0 = not yet.
	committed, acked := make([]atomic.Int64, c.n), make([]atomic.Int64, c.n)
	var lastAck atomic.Int64
	t0 := time.Now()
	r, stop, err := newRelay(ctx, c, s, func(evs []store.Event) {
		now := int64(time.Since(t0))
		for _, ev := range evs {
			if i, ok := index[ev.ID]; ok {
				acked[i].CompareAndSwap(0, now)
			}
		}
		lastAck.Store(now)
	})
	if err != nil {
		return nil, err
	}
	defer stop()
	if err := r.start(ctx, true); err != nil {
		return nil, err
	}
	_, start, wall, err := writeAll(ctx, s, c, load{per: 1, rate: c.rate, ids: ids,
		committed: func(i int, _ string, at time.Time) { committed[i].Store(int64(at.Sub(t0))) }})
	if err != nil {
		return nil, err
	}
	if err := r.wait(ctx); err != nil {
		return nil, err
	}
	settings := map[string]any{"events_per_call": 1, "size": c.size}
	if err := r.finish(ctx, settings); err != nil {
		return nil, err
	}
	lat := make([]time.Duration, c.n)
	early := 0
	for i := range lat {
		cm, ak := committed[i].Load(), acked[i].Load()
		if cm == 0 || ak == 0 {
			return nil, fmt.Errorf("event %d: commit or ack not recorded", i)
		}
		if ak < cm {
			early++ // the ack was seen before the writer noted its commit
		}
		lat[i] = time.Duration(max(ak-cm, 0))
	}
	settings["ack_before_commit_seen"] = early
	handled := time.Duration(lastAck.Load()) - start.Sub(t0)
	res := &result{N: c.n, Writers: c.writers, WallS: round(wall.Seconds(), 3), PerS: round(float64(c.n)/wall.Seconds(), 0),
		Handled: round(float64(c.n)/handled.Seconds(), 0), Settings: settings,
		Notes: "Append 1 event per call at -rate with a relay running; latency = Append returned → JetStream ack seen by the relay; handled_per_s over first append → last ack"}
	res.P50Ms, res.P99Ms, res.MaxMs = percentiles(lat)
	return res, nil
}

// headersScenario is js-publish-async (one connection, nats.go's
// PublishMsgAsync, wait for every ack) with the very messages the relay
// sends — bus.Encode's subject and headers, a fresh event ID each — so that
// relay-drain can be compared with the cost of the message format alone.
func headersScenario(ctx context.Context, c config) (*result, error) {
	conn, closeConn, err := connectNATS(ctx, c, 0)
	if err != nil {
		return nil, err
	}
	defer closeConn()
	defer conn.JetStream().DeleteStream(context.Background(), bus.StreamName(c.contextName)) //nolint:errcheck // cleanup
	stream, err := conn.ProvisionStream(ctx, c.contextName)
	if err != nil {
		return nil, err
	}
	msgs := make([]*nats.Msg, c.n)
	for i := range msgs {
		ev, err := store.NewEvent("BenchEvent", nil)
		if err != nil {
			return nil, err
		}
		ev.ID = uuid.Must(uuid.NewV7()) // the Nats-Msg-Id: without it every message after the first is a duplicate
		ev.Data = payload(c.size, i)
		ev.Stream, ev.Version = fmt.Sprintf("bench-%d", i%c.writers), int64(i/c.writers)
		ev.Position = store.Position{Commit: uint64(1000 + i), Seq: int64(i + 1)}
		ev.RecordedAt = time.Now()
		ev.Metadata = correlation.Metadata{"correlation_id": ev.ID.String()}
		msgs[i] = bus.Encode(ev, c.contextName, "default", stream.Partitions)
	}
	js := conn.JetStream()
	cpu0 := snapCPU(c.pgPID, c.natsPID)
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, c.n)
	for _, m := range msgs {
		for {
			f, err := js.PublishMsgAsync(m)
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				continue
			}
			if err != nil {
				return nil, err
			}
			futures = append(futures, f)
			break
		}
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	wall := time.Since(start)
	timed := cpuUse(cpu0, snapCPU(c.pgPID, c.natsPID))
	hdr := 0
	for k, v := range msgs[0].Header {
		hdr += len(k) + len(v[0]) + 4
	}
	return &result{N: c.n, WallS: round(wall.Seconds(), 3), PerS: round(float64(c.n)/wall.Seconds(), 0), timed: timed,
		Settings: map[string]any{"header_bytes": hdr, "headers": len(msgs[0].Header), "msg_bytes": c.size},
		Notes:    "PublishMsgAsync of the relay's own messages (bus.Encode: subject, every metadata header, Nats-Msg-Id), 1 connection, wait for every ack: the message format's cost with nats.go's stock async publishing"}, nil
}

// connectNATS connects to c.nats, or starts an embedded server fsyncing as
// c.natsSync in a temporary folder, listening on port (bus.Embedded.Port:
// 0 nowhere, -1 a free one); closeConn closes the connection and removes
// the folder.
func connectNATS(ctx context.Context, c config, port int) (conn *bus.Conn, closeConn func(), err error) {
	cfg := bus.Config{URL: c.nats, Logger: c.log}
	dir := ""
	if c.nats == "" {
		if dir, err = os.MkdirTemp("", "sw-bench-nats-"); err != nil {
			return nil, nil, err
		}
		cfg.Embedded = bus.Embedded{Dir: dir, SyncInterval: c.natsSync, Port: port}
	}
	if conn, err = bus.Connect(ctx, cfg); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return conn, func() {
		conn.Close()
		if dir != "" {
			os.RemoveAll(dir)
		}
	}, nil
}
