package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The hand-written pipeline (raw-e2e*): pgx and nats.go only. The writers
// append one event per transaction; a relay tails the events table by
// (tx_id, global_position) below pg_snapshot_xmin, so that it never passes
// a transaction still to commit (watermill-sql's adapter does the same),
// publishes each batch asynchronously and saves its checkpoint; a durable
// pull consumer runs the handler.

const rawExtraCols = `,
	tx_id xid8 NOT NULL DEFAULT pg_current_xact_id()`

const rawSelectSQL = `
SELECT tx_id::text, global_position, id, stream, version, type, data
FROM events
WHERE (tx_id, global_position) > ($1::xid8, $2::bigint)
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx_id, global_position
LIMIT $3`

// rawInsertNotifySQL appends an event and wakes the relay, on channel (the
// harness's is "events").
func rawInsertNotifySQL(channel string) string {
	return `
WITH ins AS (
	INSERT INTO events (id, stream, version, type, data, metadata) VALUES ($1, $2, $3, $4, $5, $6) RETURNING 1
) SELECT pg_notify('` + channel + `', '') FROM ins`
}

// rawHandler is the handler side of a raw pipeline.
type rawHandler struct {
	ddl   string // tables the handler writes to, created with the events table
	notes string // the handler's part of the notes
	// handle processes one message: it tells the tracker when it starts
	// (received) and acks the message.
	handle func(ctx context.Context, m jetstream.Msg)
	check  func(r *result) // optional, after the run (outside the measured window)
}

// rawE2E: the handler only tells the tracker and acks.
func rawE2E(ctx context.Context, env *peerEnv) (*result, error) {
	return rawPipeline(ctx, env, func(_ *pgxpool.Pool, tr *tracker) *rawHandler {
		return &rawHandler{notes: "pull consumer Ack()", handle: func(_ context.Context, m jetstream.Msg) {
			seq, err := strconv.Atoi(m.Headers().Get("Seq"))
			if err != nil {
				_ = m.Term()
				return
			}
			tr.received(seq)
			_ = m.Ack()
		}}
	})
}

func rawPipeline(ctx context.Context, env *peerEnv, newHandler func(pool *pgxpool.Pool, tr *tracker) *rawHandler) (*result, error) {
	c := env.c
	pool, err := env.pool(ctx, c.writers+3)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	tr := newTracker(c.n)
	h := newHandler(pool, tr)
	if _, err := pool.Exec(ctx, rawDDL(h)); err != nil {
		return nil, err
	}
	_, _ = pool.Exec(ctx, "CHECKPOINT")
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	relay := &rawRelay{env: env, pool: pool, subject: "events.raw." + env.name}
	consumer, err := rawConsume(ctx, env, relay.subject)
	if err != nil {
		return nil, err
	}
	defer consumer.stop()
	if !c.backlog {
		if err := consumer.start(ctx, runCtx, env, h); err != nil {
			return nil, err
		}
	}
	// waitCtx ends the wait for the handlers when the relay fails.
	waitCtx, relayFailed := context.WithCancel(ctx)
	defer relayFailed()
	relayErr := make(chan error, 1)
	go func() {
		err := relay.run(runCtx)
		if err != nil && runCtx.Err() == nil {
			relayFailed()
			relayErr <- err
			return
		}
		relayErr <- nil
	}()
	before := readPGStats(ctx, pool)
	cs := snapCPU(c.pgPID, c.natsPID)
	lastCommit, err := tr.runWriters(ctx, c, rawAppend(env, pool))
	if err != nil {
		return nil, err
	}
	if c.backlog { // the handler starts once JetStream holds every event
		if err := consumer.holds(waitCtx, c.n); err != nil {
			return nil, err
		}
		tr.drainFrom(time.Now())
		if err := consumer.start(ctx, runCtx, env, h); err != nil {
			return nil, err
		}
	}
	r := &result{Writers: c.writers}
	tr.finish(waitCtx, r, lastCommit)
	ce := snapCPU(c.pgPID, c.natsPID)
	stopRun()
	if err := <-relayErr; err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	r.timed = cpuUse(cs, ce)
	applyPGStats(context.Background(), env, pool, r, before)
	relay.describe(r, h)
	if h.check != nil {
		h.check(r)
	}
	return r, nil
}

// rawDDL is the events table with tx_id, its index, the relay's checkpoint
// and the handler's tables.
func rawDDL(h *rawHandler) string {
	return eventsDDL("events", rawExtraCols) + `
CREATE INDEX events_tx_pos ON events (tx_id, global_position);
DROP TABLE IF EXISTS relay_checkpoint;
CREATE TABLE relay_checkpoint (name text PRIMARY KEY, tx_id xid8 NOT NULL, pos bigint NOT NULL);
INSERT INTO relay_checkpoint VALUES ('relay', '0', 0);` + h.ddl
}

// rawConsumer is the run's stream and the handler's durable consumer on it.
type rawConsumer struct {
	stream  jetstream.Stream
	closers []func()
}

// rawConsume makes the run's stream over subject (the harness's "EVENTS")
// and its durable consumer on an admin connection.
func rawConsume(ctx context.Context, env *peerEnv, subject string) (*rawConsumer, error) {
	ncAdmin, jsAdmin, err := env.natsConnect("raw-admin")
	if err != nil {
		return nil, err
	}
	rc := &rawConsumer{closers: []func(){ncAdmin.Close}}
	rc.stream, err = env.resetStream(ctx, jsAdmin, env.named("EVENTS"), subject)
	if err == nil {
		_, err = rc.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: rawDurable, AckPolicy: jetstream.AckExplicitPolicy})
	}
	if err != nil {
		rc.stop()
		return nil, err
	}
	return rc, nil
}

const rawDurable = "raw-handler"

// start runs the handler on a connection of its own until runCtx ends or
// stop is called.
func (rc *rawConsumer) start(ctx, runCtx context.Context, env *peerEnv, h *rawHandler) error {
	ncSub, _, err := env.natsConnect("raw-handler")
	if err != nil {
		return err
	}
	rc.closers = append(rc.closers, ncSub.Close)
	subJS, _ := jetstream.New(ncSub)
	subCons, err := subJS.Consumer(ctx, env.named("EVENTS"), rawDurable)
	var cc jetstream.ConsumeContext
	if err == nil {
		cc, err = subCons.Consume(func(m jetstream.Msg) { h.handle(runCtx, m) })
	}
	if err != nil {
		return err
	}
	rc.closers = append(rc.closers, cc.Stop)
	return nil
}

// holds waits until the stream holds n messages.
func (rc *rawConsumer) holds(ctx context.Context, n int) error {
	for {
		info, err := rc.stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs >= uint64(n) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (rc *rawConsumer) stop() {
	for i := len(rc.closers) - 1; i >= 0; i-- {
		rc.closers[i]()
	}
}

// rawAppend is a writer's append: BEGIN; INSERT (with pg_notify, unless
// -raw-notify=false); COMMIT. Each event's data carries its seq.
func rawAppend(env *peerEnv, pool *pgxpool.Pool) func(ctx context.Context, w, seq, version int) error {
	c := env.c
	data := make([][]byte, c.n)
	for i := range data {
		data[i] = payload(c.size, i)
	}
	meta := peerMeta(1)
	stmt := insertEventSQL
	if c.peer.rawNotify {
		stmt = rawInsertNotifySQL(env.name)
	}
	return func(ctx context.Context, w, seq, version int) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, stmt, uuid.New(), fmt.Sprintf("acct-%d-%d", c.rep, w), version, "MoneyDeposited", data[seq], meta)
			return err
		})
	}
}

// rawRelay is the hand-written relay.
type rawRelay struct {
	env               *peerEnv
	pool              *pgxpool.Pool
	subject           string
	batches, maxBatch int // read once run returned
}

type rawRow struct {
	tx      string
	pos     int64
	id      uuid.UUID
	stream  string
	version int
	typ     string
	data    []byte
}

// run relays until ctx ends (nil) or something fails.
func (rl *rawRelay) run(ctx context.Context) error {
	wake, stopListen, err := rl.listen(ctx)
	if err != nil {
		return err
	}
	defer stopListen()
	nc, js, err := rl.env.natsConnect("raw-relay")
	if err != nil {
		return err
	}
	defer nc.Close()
	poll := rl.env.c.peer.rawPoll
	lastTx, lastPos := "0", int64(0)
	buf := make([]rawRow, 0, rl.env.c.peer.rawBatch)
	futs := make([]jetstream.PubAckFuture, 0, rl.env.c.peer.rawBatch)
	for ctx.Err() == nil {
		if buf, err = rl.fetch(ctx, buf[:0], lastTx, lastPos); err != nil {
			break
		}
		if len(buf) == 0 {
			select {
			case <-wake:
			case <-time.After(poll):
			case <-ctx.Done():
			}
			continue
		}
		rl.batches++
		rl.maxBatch = max(rl.maxBatch, len(buf))
		if futs, err = rl.publish(ctx, js, buf, futs[:0]); err != nil {
			break
		}
		last := buf[len(buf)-1]
		lastTx, lastPos = last.tx, last.pos
		if _, err = rl.pool.Exec(ctx, `UPDATE relay_checkpoint SET tx_id = $1::xid8, pos = $2 WHERE name = 'relay'`, lastTx, lastPos); err != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// listen LISTENs on a connection of its own; wake has a value once a
// notification came.
func (rl *rawRelay) listen(ctx context.Context) (wake chan struct{}, stop func(), err error) {
	lc, err := rl.env.conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := lc.Exec(ctx, "LISTEN "+rl.env.name); err != nil {
		lc.Close(context.Background())
		return nil, nil, err
	}
	wake = make(chan struct{}, 1)
	lctx, cancel := context.WithCancel(ctx)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			if _, err := lc.WaitForNotification(lctx); err != nil {
				return
			}
			signal(wake)
		}
	}()
	return wake, func() {
		cancel()
		<-exited
		lc.Close(context.Background())
	}, nil
}

// fetch reads the next batch into buf.
func (rl *rawRelay) fetch(ctx context.Context, buf []rawRow, lastTx string, lastPos int64) ([]rawRow, error) {
	rows, err := rl.pool.Query(ctx, rawSelectSQL, lastTx, lastPos, rl.env.c.peer.rawBatch)
	if err != nil {
		return buf, fmt.Errorf("relay query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r rawRow
		if err := rows.Scan(&r.tx, &r.pos, &r.id, &r.stream, &r.version, &r.typ, &r.data); err != nil {
			return buf, err
		}
		buf = append(buf, r)
	}
	return buf, rows.Err()
}

// publish sends a batch with PublishMsgAsync and waits for every ack.
func (rl *rawRelay) publish(ctx context.Context, js jetstream.JetStream, buf []rawRow, futs []jetstream.PubAckFuture) ([]jetstream.PubAckFuture, error) {
	for _, r := range buf {
		m := nats.NewMsg(rl.subject)
		m.Data = r.data
		m.Header.Set(jetstream.MsgIDHeader, r.id.String())
		m.Header.Set("Stream", r.stream)
		m.Header.Set("Version", strconv.Itoa(r.version))
		m.Header.Set("Type", r.typ)
		m.Header.Set("Seq", seqFromData(r.data))
		f, err := publishAsync(ctx, js, m)
		if err != nil {
			return futs, fmt.Errorf("relay publish: %w", err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return futs, fmt.Errorf("relay puback: %w", err)
		case <-ctx.Done():
			return futs, ctx.Err()
		}
	}
	return futs, nil
}

// describe adds the relay's settings and the pipeline's notes to r.
func (rl *rawRelay) describe(r *result, h *rawHandler) {
	k := rl.env.c.peer
	r.Settings = rl.env.settings(map[string]any{"relay_batch": k.rawBatch, "relay_idle_poll": k.rawPoll.String(), "notify_in_tx": k.rawNotify,
		"relay_batches": rl.batches, "relay_max_batch": rl.maxBatch})
	wakeup := "LISTEN/NOTIFY wake-up (pg_notify in every append tx)"
	if !k.rawNotify {
		wakeup = "no NOTIFY, relay re-polls every " + k.rawPoll.String() + " when idle"
	}
	r.Notes = "pgx pool; relay tails (tx_id xid8, global_position), " + wakeup + ", JetStream PublishMsgAsync per batch, checkpoint UPDATE per batch; " + h.notes + r.Notes
}

// seqFromData is the "seq" field payload puts first in the JSON object.
func seqFromData(b []byte) string {
	const pfx = `{"seq":`
	if len(b) < len(pfx) || string(b[:len(pfx)]) != pfx {
		return ""
	}
	i := len(pfx)
	for i < len(b) && b[i] == ' ' {
		i++
	}
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	return string(b[i:j])
}
