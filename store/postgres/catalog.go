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
	src, replica := s.source(ctx)
	backend.NoteRead(ctx, s, "list streams", replica)
	rows, err := src.Query(ctx, `WITH RECURSIVE walk(stream) AS (
			(SELECT stream FROM `+t+` WHERE stream >= $1 AND stream > $2 ORDER BY stream LIMIT 1)
			UNION ALL
			SELECT (`+next+`walk.stream ORDER BY stream LIMIT 1) FROM walk
			WHERE walk.stream IS NOT NULL AND starts_with(walk.stream, $1)
		)
		SELECT w.stream, (SELECT version FROM `+t+` e WHERE e.stream = w.stream ORDER BY version DESC LIMIT 1)
		FROM walk w WHERE w.stream IS NOT NULL AND starts_with(w.stream, $1) LIMIT $3`, prefix, after, limit)
	if err != nil {
		return nil, s.fail("list streams", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.StreamInfo, error) {
		var si store.StreamInfo
		return si, r.Scan(&si.Name, &si.Version)
	})
	if err != nil {
		return nil, s.fail("list streams", err)
	}
	return out, nil
}

// Event reads one event by its ID; see store.Catalog.
func (s *Store) Event(ctx context.Context, id uuid.UUID) (store.Event, error) {
	if s.closed.Load() {
		return store.Event{}, store.ErrClosed
	}
	src, replica := s.source(ctx)
	backend.NoteRead(ctx, s, "read event "+id.String(), replica)
	evs, err := s.query(ctx, src, false, `SELECT `+eventColumns+` FROM `+s.table("sw_events")+` o
		WHERE o.event_id = $1 AND NOT o.link`, pgUUID(id))
	if err != nil {
		return store.Event{}, s.fail("read event "+id.String(), err)
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
	src, replica := s.source(ctx)
	backend.NoteRead(ctx, s, "read correlation "+strconv.Quote(correlationID), replica)
	evs, err := s.query(ctx, src, false, `SELECT `+eventColumns+` FROM `+s.table("sw_events")+` o
		WHERE (o.metadata->>'correlation_id') = $1 AND NOT o.link
		ORDER BY o.commit_key, o.position LIMIT $2`, correlationID, limit)
	if err != nil {
		return nil, s.fail("read correlation "+strconv.Quote(correlationID), err)
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
	q, replica := s.source(ctx)
	t := s.table("sw_events")
	backend.NoteRead(ctx, s, "count events", replica)
	var estimate float64
	if err := q.QueryRow(ctx, `SELECT coalesce((SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)), -1)`, t).Scan(&estimate); err != nil {
		return 0, false, s.fail("count events", err)
	}
	if estimate > store.EstimateAbove {
		return int64(estimate), false, nil
	}
	var n int64
	if err := q.QueryRow(ctx, `SELECT count(*) FROM `+t+` WHERE NOT link`).Scan(&n); err != nil {
		return 0, false, s.fail("count events", err)
	}
	return n, true, nil
}

// ReplicaLag is how far the store's replica is behind the primary: 0 when
// it has replayed all it received, else the time since the last
// transaction it replayed committed. ok is false when the store has no
// replica.
func (s *Store) ReplicaLag(ctx context.Context) (lag time.Duration, ok bool, err error) {
	if s.replica == nil {
		return 0, false, nil
	}
	var secs float64
	err = s.replica.QueryRow(ctx, `SELECT CASE
		WHEN NOT pg_is_in_recovery() THEN -1
		WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
		ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END`).Scan(&secs)
	if err != nil {
		return 0, true, s.fail("read the replica's lag", err)
	}
	if secs < 0 {
		return 0, true, &store.Error{Op: "read the replica's lag", Store: s.name, Err: errors.New("the replica DSN names a primary, not a server in recovery")}
	}
	return time.Duration(secs * float64(time.Second)), true, nil
}
