package sqlite

import (
	"context"
	"strconv"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/internal/backend"
	"github.com/switchyard-go/switchyard/store"
)

var _ store.Catalog = (*Store)(nil)

// Streams lists streams; see store.Catalog. A recursive query steps from
// one stream to the next through the (stream, version) index, one probe
// per stream, and stops at the first name without the prefix.
func (s *Store) Streams(ctx context.Context, prefix, after string, limit int) ([]store.StreamInfo, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := backend.CheckStreams(prefix, after, limit); err != nil {
		return nil, err
	}
	backend.NoteRead(ctx, s, "list streams", false)
	rows, err := s.readerFor(ctx).QueryContext(ctx, `WITH RECURSIVE walk(stream) AS (
			SELECT (SELECT stream FROM sw_events WHERE stream >= ?1 AND stream > ?2 ORDER BY stream LIMIT 1)
			UNION ALL
			SELECT (SELECT stream FROM sw_events WHERE stream > walk.stream ORDER BY stream LIMIT 1) FROM walk
			WHERE walk.stream IS NOT NULL AND substr(walk.stream, 1, length(?1)) = ?1
		)
		SELECT w.stream, (SELECT max(version) FROM sw_events e WHERE e.stream = w.stream)
		FROM walk w WHERE w.stream IS NOT NULL AND substr(w.stream, 1, length(?1)) = ?1 LIMIT ?3`, prefix, after, limit)
	if err != nil {
		return nil, s.fail("list streams", err)
	}
	defer rows.Close()
	var out []store.StreamInfo
	for rows.Next() {
		var si store.StreamInfo
		if err := rows.Scan(&si.Name, &si.Version); err != nil {
			return nil, s.fail("list streams", err)
		}
		out = append(out, si)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list streams", err)
	}
	return out, nil
}

// Event reads one event by its ID; see store.Catalog.
func (s *Store) Event(ctx context.Context, id uuid.UUID) (store.Event, error) {
	if s.closed.Load() {
		return store.Event{}, store.ErrClosed
	}
	backend.NoteRead(ctx, s, "read event "+id.String(), false)
	rows, err := s.readerFor(ctx).QueryContext(ctx, `SELECT `+eventColumns+` FROM sw_events o
		WHERE o.event_id = ? AND o.link = 0`, id.String())
	if err != nil {
		return store.Event{}, s.fail("read event "+id.String(), err)
	}
	evs, err := s.scanEvents(rows, false)
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
	what := "read correlation " + strconv.Quote(correlationID)
	backend.NoteRead(ctx, s, what, false)
	rows, err := s.readerFor(ctx).QueryContext(ctx, `SELECT `+eventColumns+` FROM sw_events o
		WHERE json_extract(o.metadata, '$.correlation_id') = ? AND o.link = 0
		ORDER BY o.position LIMIT ?`, correlationID, limit)
	if err != nil {
		return nil, s.fail(what, err)
	}
	evs, err := s.scanEvents(rows, false)
	if err != nil {
		return nil, s.fail(what, err)
	}
	return evs, nil
}

// Count counts the store's events, exactly; see store.Catalog.
func (s *Store) Count(ctx context.Context) (int64, bool, error) {
	if s.closed.Load() {
		return 0, false, store.ErrClosed
	}
	var n int64
	backend.NoteRead(ctx, s, "count events", false)
	if err := s.readerFor(ctx).QueryRowContext(ctx, `SELECT count(*) FROM sw_events WHERE link = 0`).Scan(&n); err != nil {
		return 0, false, s.fail("count events", err)
	}
	return n, true, nil
}
