package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// raw-e2e-inbox: the raw-e2e-poll pipeline whose handler is an exactly-once
// consumer written carefully by hand: per message ONE PostgreSQL transaction
// on the same database (an inbox row for dedup, the effect row, a derived
// event appended to the events table), COMMIT, then Ack().

const (
	inboxConsumer = "h"
	derivedType   = "DepositRecorded"
	inboxDDL      = `
DROP TABLE IF EXISTS inbox;
CREATE TABLE inbox (consumer text NOT NULL, event_id uuid NOT NULL, PRIMARY KEY (consumer, event_id));
DROP TABLE IF EXISTS effects;
CREATE TABLE effects (event_id uuid PRIMARY KEY, stream text NOT NULL, version int NOT NULL, at timestamptz NOT NULL DEFAULT now());`
	inboxInsertSQL  = `INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	effectInsertSQL = `INSERT INTO effects (event_id, stream, version) VALUES ($1, $2, $3)`
)

type inboxHandler struct {
	pool     *pgxpool.Pool
	tr       *tracker
	dups     atomic.Int64 // inbox conflicts: redeliveries of events already processed
	fails    atomic.Int64
	firstErr atomic.Value // string
}

func rawE2EInbox(ctx context.Context, env *peerEnv) (*result, error) {
	return rawPipeline(ctx, env, func(pool *pgxpool.Pool, tr *tracker) *rawHandler {
		tr.endAtCommit()
		h := &inboxHandler{pool: pool, tr: tr}
		return &rawHandler{
			ddl: inboxDDL,
			notes: "handler: per msg one PG tx (INSERT inbox ON CONFLICT DO NOTHING, 0 rows = duplicate, skip the rest; INSERT effects; " +
				"INSERT derived event), COMMIT, then Ack() (not DoubleAck: the inbox absorbs redeliveries); derived events are relayed too " +
				"and acked unprocessed (Type header); handled/s and wall_s end at the last handler COMMIT",
			handle: h.handle,
			check:  func(r *result) { h.check(env, r) },
		}
	})
}

func (h *inboxHandler) handle(ctx context.Context, m jetstream.Msg) {
	hd := m.Headers()
	if hd.Get("Type") == derivedType { // our own output, relayed back into the same subject
		_ = m.Ack()
		return
	}
	seq, err1 := strconv.Atoi(hd.Get("Seq"))
	version, err2 := strconv.Atoi(hd.Get("Version"))
	id, err3 := uuid.Parse(hd.Get(jetstream.MsgIDHeader))
	if err := errors.Join(err1, err2, err3); err != nil {
		h.fail(err)
		_ = m.Term()
		return
	}
	h.tr.received(seq)
	dup, err := h.process(ctx, id, hd.Get("Stream"), version)
	if err != nil {
		if ctx.Err() == nil {
			h.fail(err)
		}
		_ = m.Nak()
		return
	}
	if dup {
		h.dups.Add(1)
	}
	h.tr.committed(seq)
	_ = m.Ack()
}

// process runs the handler's transaction; dup reports that the inbox
// already had the event.
func (h *inboxHandler) process(ctx context.Context, id uuid.UUID, stream string, version int) (dup bool, err error) {
	tx, err := h.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	ct, err := tx.Exec(ctx, inboxInsertSQL, inboxConsumer, id)
	if err != nil {
		return false, err
	}
	if ct.RowsAffected() == 0 {
		return true, nil
	}
	if _, err := tx.Exec(ctx, effectInsertSQL, id, stream, version); err != nil {
		return false, err
	}
	// one new stream per derived event (version 0); causation_id = the source event's id
	data := fmt.Appendf(nil, `{"source_stream":%q,"source_version":%d}`, stream, version)
	meta := fmt.Appendf(nil, `{"causation_id":"%s","user":"bench"}`, id)
	if _, err := tx.Exec(ctx, insertEventSQL, uuid.New(), fmt.Sprintf("Derived-%s-%d", stream, version), 0, derivedType, data, meta); err != nil {
		return false, err
	}
	return false, tx.Commit(ctx)
}

func (h *inboxHandler) fail(err error) {
	if h.fails.Add(1) == 1 {
		h.firstErr.Store(err.Error())
	}
}

// check counts what the handler wrote, after the run: inbox rows, effects
// and derived events must each be n.
func (h *inboxHandler) check(env *peerEnv, r *result) {
	n := env.c.n
	r.Settings["inbox_duplicates"] = h.dups.Load()
	r.Settings["handler_errors"] = h.fails.Load()
	if e, ok := h.firstErr.Load().(string); ok {
		r.Notes += " [first handler error: " + e + "]"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := env.conn(ctx)
	if err != nil {
		r.Notes += " [check: " + err.Error() + "]"
		return
	}
	defer conn.Close(ctx)
	var inbox, effects, derived int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM inbox), (SELECT count(*) FROM effects), (SELECT count(*) FROM events WHERE type = $1)`,
		derivedType).Scan(&inbox, &effects, &derived); err != nil {
		r.Notes += " [check: " + err.Error() + "]"
		return
	}
	r.Settings["check_inbox_rows"], r.Settings["check_effects_rows"], r.Settings["check_derived_events"] = inbox, effects, derived
	if (inbox != n || effects != n || derived != n) && r.Error == "" {
		r.Error = fmt.Sprintf("check: inbox %d, effects %d, derived events %d; want %d each", inbox, effects, derived, n)
	}
}
