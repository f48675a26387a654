package postgres

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/switchyard-go/switchyard/internal/backend"
	"github.com/switchyard-go/switchyard/store"
)

var _ store.Catalog = (*Store)(nil)

// Streams lists streams; see store.Catalog. A recursive query steps from
// one stream to the next through the primary key, one index probe per
// stream, and stops at the first name without the prefix: names that share
// a prefix sort together in the C collation and, but for punctuation that
// some collations ignore, in the others.
func (s *Store) Streams(ctx context.Context, prefix, after string, limit int) ([]store.StreamInfo, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := backend.CheckStreams(prefix, after, limit); err != nil {
		return nil, err
	}
	t := s.table("sw_events")
	next := `SELECT stream FROM ` + t + ` WHERE stream > `
	src, replica, err := s.source(ctx)
	if err != nil {
		return nil, err
	}
	op := readOp("list streams", replica)
	backend.NoteRead(ctx, s, op, replica)
	rows, err := src.Query(ctx, `WITH RECURSIVE walk(stream) AS (
			(SELECT stream FROM `+t+` WHERE stream >= $1 AND stream > $2 ORDER BY stream LIMIT 1)
			UNION ALL
			SELECT (`+next+`walk.stream ORDER BY stream LIMIT 1) FROM walk
			WHERE walk.stream IS NOT NULL AND starts_with(walk.stream, $1)
		)
		SELECT w.stream, (SELECT version FROM `+t+` e WHERE e.stream = w.stream ORDER BY version DESC LIMIT 1)
		FROM walk w WHERE w.stream IS NOT NULL AND starts_with(w.stream, $1) LIMIT $3`, prefix, after, limit)
	if err != nil {
		return nil, s.fail(op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.StreamInfo, error) {
		var si store.StreamInfo
		return si, r.Scan(&si.Name, &si.Version)
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// Event reads one event by its ID; see store.Catalog.
func (s *Store) Event(ctx context.Context, id uuid.UUID) (store.Event, error) {
	if s.closed.Load() {
		return store.Event{}, store.ErrClosed
	}
	src, replica, err := s.source(ctx)
	if err != nil {
		return store.Event{}, err
	}
	op := readOp("read event "+id.String(), replica)
	backend.NoteRead(ctx, s, op, replica)
	evs, err := s.query(ctx, src, false, `SELECT `+eventColumns+` FROM `+s.table("sw_events")+` o
		WHERE o.event_id = $1 AND NOT o.link`, pgUUID(id))
	if err != nil {
		return store.Event{}, s.fail(op, err)
	}
	if len(evs) == 0 {
		return store.Event{}, backend.NoEvent(s, id)
	}
	return evs[0], nil
}

// Correlated reads a correlation chain's events; see store.Catalog.
func (s *Store) Correlated(ctx context.Context, correlationID string, limit int) ([]store.Event, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := backend.CheckCorrelation(correlationID, limit); err != nil {
		return nil, err
	}
	src, replica, err := s.source(ctx)
	if err != nil {
		return nil, err
	}
	op := readOp("read correlation "+strconv.Quote(correlationID), replica)
	backend.NoteRead(ctx, s, op, replica)
	evs, err := s.query(ctx, src, false, `SELECT `+eventColumns+` FROM `+s.table("sw_events")+` o
		WHERE (o.metadata->>'correlation_id') = $1 AND NOT o.link
		ORDER BY o.commit_key, o.position LIMIT $2`, correlationID, limit)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return evs, nil
}

// Count counts the store's events; see store.Catalog. Past
// store.EstimateAbove rows it is the planner's estimate (pg_class), which
// counts links too.
func (s *Store) Count(ctx context.Context) (int64, bool, error) {
	if s.closed.Load() {
		return 0, false, store.ErrClosed
	}
	q, replica, err := s.source(ctx)
	if err != nil {
		return 0, false, err
	}
	t := s.table("sw_events")
	op := readOp("count events", replica)
	backend.NoteRead(ctx, s, op, replica)
	var estimate float64
	if err := q.QueryRow(ctx, `SELECT coalesce((SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)), -1)`, t).Scan(&estimate); err != nil {
		return 0, false, s.fail(op, err)
	}
	if estimate > store.EstimateAbove {
		return int64(estimate), false, nil
	}
	var n int64
	if err := q.QueryRow(ctx, `SELECT count(*) FROM `+t+` WHERE NOT link`).Scan(&n); err != nil {
		return 0, false, s.fail(op, err)
	}
	return n, true, nil
}

// ReplicaLag is how far the store's replica is behind the primary: 0 when
// it has replayed all the primary had written when asked, else the time
// since the last transaction it replayed committed — which grows, too,
// when the replica is cut off from the primary. A replica DSN that names
// a server not in recovery is an error. ok is false when the store has no
// replica.
func (s *Store) ReplicaLag(ctx context.Context) (lag time.Duration, ok bool, err error) {
	if s.replica == nil {
		return 0, false, nil
	}
	if s.closed.Load() {
		return 0, true, store.ErrClosed
	}
	const op = "read the replica's lag"
	var written string
	if err := s.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&written); err != nil {
		return 0, true, s.fail(op, err)
	}
	var (
		recovering, caughtUp bool
		since                *float64
	)
	err = s.replica.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false),
		extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8`, written).Scan(&recovering, &caughtUp, &since)
	switch {
	case err != nil:
		return 0, true, s.fail(op+" from the replica", err)
	case !recovering:
		return 0, true, &store.Error{Op: op, Store: s.name, Err: errors.New("the replica DSN names a server that is not a replica")}
	case caughtUp:
		return 0, true, nil
	case since == nil:
		return 0, true, &store.Error{Op: op, Store: s.name, Err: errors.New("the replica is behind and has replayed no transaction yet")}
	}
	return time.Duration(*since * float64(time.Second)), true, nil
}
