package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The peers' event store is the harness's table, written with pgx alone.

// eventsDDL is the harness's events table; extraCols lets raw-e2e add the
// tx_id xid8 column it tails by.
func eventsDDL(table string, extraCols string) string {
	return fmt.Sprintf(`
DROP TABLE IF EXISTS %[1]s;
CREATE TABLE %[1]s (
	id uuid NOT NULL PRIMARY KEY,
	stream text NOT NULL,
	version int NOT NULL,
	type text NOT NULL,
	data jsonb NOT NULL,
	metadata jsonb NOT NULL,
	global_position bigserial NOT NULL%[2]s,
	UNIQUE (stream, version)
);`, table, extraCols)
}

const insertEventSQL = `INSERT INTO events (id, stream, version, type, data, metadata) VALUES ($1, $2, $3, $4, $5, $6)`

// The transactions are pgx.BeginFunc's: BEGIN, the statements, COMMIT (or
// ROLLBACK after an error), as the harness writes them out.

// pgAppendSingle: one event per transaction (BEGIN; INSERT; COMMIT), each
// writer on a stream of its own (versions 1..k); latency per transaction.
func pgAppendSingle(ctx context.Context, env *peerEnv) (*result, error) {
	c := env.c
	pool, err := peerTable(ctx, env)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	data := make([][]byte, 64)
	for i := range data {
		data[i] = payload(c.size, i)
	}
	meta := peerMeta(1)
	lat := make([]time.Duration, c.n)
	streams, versions := writerStreams(c), make([]int, c.writers)
	r, err := timeAppends(ctx, env, pool, c.n, func(w, i int) error {
		versions[w]++
		t0 := time.Now()
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, insertEventSQL, uuid.New(), streams[w], versions[w], "MoneyDeposited", data[i%64], meta)
			return err
		}); err != nil {
			return err
		}
		lat[i] = time.Since(t0)
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.P50Ms, r.P99Ms, r.MaxMs = percentiles(lat)
	r.Notes = "BEGIN; INSERT; COMMIT per event (3 round trips), pgx pool, statement cache"
	return r, nil
}

// pgAppendBatch: 100 events per transaction through CopyFrom; latency per
// transaction.
func pgAppendBatch(ctx context.Context, env *peerEnv) (*result, error) {
	const batch = 100
	c := env.c
	pool, err := peerTable(ctx, env)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	data := make([]json.RawMessage, 64)
	for i := range data {
		data[i] = payload(c.size, i)
	}
	meta := json.RawMessage(peerMeta(1))
	nb := (c.n + batch - 1) / batch
	lat := make([]time.Duration, nb)
	streams, versions := writerStreams(c), make([]int, c.writers)
	rows := make([][][]any, c.writers)
	cols := []string{"id", "stream", "version", "type", "data", "metadata"}
	r, err := timeAppends(ctx, env, pool, nb, func(w, b int) error {
		rows[w] = rows[w][:0]
		for j := 0; j < batch && b*batch+j < c.n; j++ {
			versions[w]++
			rows[w] = append(rows[w], []any{uuid.New(), streams[w], versions[w], "MoneyDeposited", data[(b*batch+j)%64], meta})
		}
		t0 := time.Now()
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, cols, pgx.CopyFromRows(rows[w]))
			return err
		}); err != nil {
			return err
		}
		lat[b] = time.Since(t0)
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.P50Ms, r.P99Ms, r.MaxMs = percentiles(lat)
	r.Notes = "CopyFrom 100 rows per tx; latency = per-tx (100 events)"
	return r, nil
}

// writerStreams are the writers' streams, one each.
func writerStreams(c config) []string {
	s := make([]string, c.writers)
	for w := range s {
		s[w] = fmt.Sprintf("acct-%d-%d", c.rep, w)
	}
	return s
}

// peerTable is a pool of one connection per writer and one more, over a
// new events table.
func peerTable(ctx context.Context, env *peerEnv) (*pgxpool.Pool, error) {
	pool, err := env.pool(ctx, env.c.writers+1)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, eventsDDL("events", "")); err != nil {
		pool.Close()
		return nil, err
	}
	_, _ = pool.Exec(ctx, "CHECKPOINT")
	return pool, nil
}

// timeAppends runs calls appends on the writers, timing them (wall_s,
// per_s of the run's events, CPU) and PostgreSQL's WAL and commits; it
// closes pool.
func timeAppends(ctx context.Context, env *peerEnv, pool *pgxpool.Pool, calls int, appendFn func(w, i int) error) (*result, error) {
	c := env.c
	before := readPGStats(ctx, pool)
	cs := snapCPU(c.pgPID, c.natsPID)
	start := time.Now()
	err := spread(c.writers, calls, appendFn)
	wall := time.Since(start)
	ce := snapCPU(c.pgPID, c.natsPID)
	if err != nil {
		return nil, err
	}
	r := &result{N: c.n, Writers: c.writers, WallS: round(wall.Seconds(), 3), PerS: round(float64(c.n)/wall.Seconds(), 0), timed: cpuUse(cs, ce)}
	applyPGStats(ctx, env, pool, r, before)
	return r, nil
}

type pgStats struct {
	walSync  int64
	walBytes float64
	commits  int64
}

func readPGStats(ctx context.Context, pool *pgxpool.Pool) pgStats {
	var s pgStats
	_ = pool.QueryRow(ctx, `SELECT wal_sync, wal_bytes::float8 FROM pg_stat_wal`).Scan(&s.walSync, &s.walBytes)
	_ = pool.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&s.commits)
	return s
}

// applyPGStats closes the pool first (backends flush their pending
// statistics on exit), then reads pg_stat_wal and pg_stat_database on a
// fresh connection.
func applyPGStats(ctx context.Context, env *peerEnv, pool *pgxpool.Pool, r *result, before pgStats) {
	pool.Close()
	time.Sleep(300 * time.Millisecond)
	p2, err := env.pool(ctx, 1)
	if err != nil {
		return
	}
	defer p2.Close()
	after := readPGStats(ctx, p2)
	r.WALSyncs = after.walSync - before.walSync
	r.WALMB = round((after.walBytes-before.walBytes)/1e6, 1)
	r.Commits = after.commits - before.commits
}
