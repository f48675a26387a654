package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/switchyard-go/switchyard/internal/backend"
	"github.com/switchyard-go/switchyard/store"
)

// held is an append AppendDeferred holds, prepared.
type held struct {
	stream   string
	expected store.ExpectedVersion
	pending  []backend.Pending
	now      time.Time
}

// holding is what a transaction (or savepoint) Transact began holds:
// its deferred appends, in order, until flush writes them on tx. err is
// a flush that failed: the appends it took are not written, so the
// transaction cannot commit. done is set once it is over: nothing can be
// held for it then.
type holding struct {
	tx      pgx.Tx
	mu      sync.Mutex
	appends []held
	err     error
	done    bool
}

type holdingKey struct{ s *Store }

// AppendDeferred appends events to stream, in a transaction Transact
// began when it is written; see store.AppendDeferred. It runs in a
// producer span, as Append does, whose trace context the events carry.
func (s *Store) AppendDeferred(ctx context.Context, stream string, expected store.ExpectedVersion, events ...store.Event) error {
	h, ok := s.holding(ctx)
	if !ok {
		_, err := s.Append(ctx, stream, expected, events...)
		return err
	}
	_, err := s.tel.Append(ctx, stream, len(events), func(ctx context.Context, now time.Time) ([]store.Event, error) {
		pending, err := s.prepare(ctx, stream, expected, events, now)
		if err != nil {
			return nil, err
		}
		err = h.hold(held{stream, expected, pending, now})
		if err == pgx.ErrTxClosed { //nolint:errorlint // hold's own sentinel, not wrapped
			err = s.fail("append to "+strconv.Quote(stream), err)
		}
		return nil, err
	})
	return err
}

// hold returns ctx for tx, a transaction or savepoint Transact began,
// holding its deferred appends; end the holding when tx is over.
func (s *Store) hold(ctx context.Context, tx pgx.Tx) (context.Context, *holding) {
	h := &holding{tx: tx}
	return context.WithValue(s.WithTx(ctx, tx), holdingKey{s}, h), h
}

// holding returns what the transaction of ctx holds, when Transact began
// it: not in a savepoint the application began itself (WithTx), where
// what is held cannot be written, since it would go with the savepoint.
func (s *Store) holding(ctx context.Context) (*holding, bool) {
	h, ok := ctx.Value(holdingKey{s}).(*holding)
	if !ok {
		return nil, false
	}
	tx, _ := s.Tx(ctx)
	return h, tx == h.tx
}

// hold adds a to the appends held. It returns pgx.ErrTxClosed once the
// transaction is over, or the failure that keeps it from committing.
func (h *holding) hold(a held) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.done:
		return pgx.ErrTxClosed
	case h.err != nil:
		return h.err
	}
	h.appends = append(h.appends, a)
	return nil
}

// take returns the appends held, and holds none from then on; with end,
// none can be held any more. After a flush that failed it returns its
// error instead.
func (h *holding) take(end bool) ([]held, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.appends
	h.appends, h.done = nil, h.done || end
	return out, h.err
}

// failed records err, a flush's failure: every later flush returns it.
func (h *holding) failed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
}

// end drops what is still held: the transaction is over.
func (h *holding) end() { h.take(true) } //nolint:errcheck // nothing to write any more

// flush writes the appends held for the transaction of ctx, in order, on
// it: all in one statement when there are several (writeHeld), else, or
// when that one could not write them all, one at a time as Append writes
// them, so that a conflict is told apart as Append tells it, and an
// append under store.Any that lost a race for a version is tried again.
// With end, nothing more can be held. A flush that fails leaves the
// transaction unable to commit: the appends it took are not written,
// whatever the caller makes of the error, so every later flush, the one
// before the commit too, returns it.
func (s *Store) flush(ctx context.Context, end bool) error {
	h, ok := s.holding(ctx)
	if !ok {
		return nil
	}
	hs, err := h.take(end)
	if err != nil || len(hs) == 0 {
		return err
	}
	if err := s.writeAll(ctx, h.tx, hs); err != nil {
		h.failed(err)
		return err
	}
	return nil
}

// writeAll writes hs on tx: see flush.
func (s *Store) writeAll(ctx context.Context, tx pgx.Tx, hs []held) error {
	if len(hs) > 1 {
		written, err := s.writeHeld(ctx, tx, hs)
		if err != nil {
			return s.fail("append to "+strconv.Quote(hs[0].stream)+" and others", err)
		}
		if written > 0 {
			s.tel.Wrote(ctx, written)
			return nil
		}
	}
	for _, h := range hs {
		out, err := s.write(ctx, h.stream, h.expected, h.pending, h.now)
		if err != nil {
			return err
		}
		s.tel.Count(ctx, out, h.now)
	}
	return nil
}

// writeHeld inserts every event of hs in one statement, under a
// savepoint, or none: written counts them, 0 when an expectation did not
// hold or a row conflicted, which rolled the savepoint back.
func (s *Store) writeHeld(ctx context.Context, tx pgx.Tx, hs []held) (written int, err error) {
	var n int
	for _, h := range hs {
		n += len(h.pending)
	}
	streams := make([]string, 0, n)
	expected := make([]int64, 0, n)
	ids := make([]pgtype.UUID, 0, n)
	types := make([]string, 0, n)
	data := make([]string, 0, n)
	meta := make([]string, 0, n)
	at := make([]time.Time, 0, n)
	for _, h := range hs {
		for i, p := range h.pending {
			e := int64(follows)
			if i == 0 {
				e = int64(h.expected)
			}
			streams, expected = append(streams, h.stream), append(expected, e)
			ids, types = append(ids, pgUUID(p.Event.ID)), append(types, p.Event.Type)
			data, meta = append(data, string(p.Event.Data)), append(meta, string(p.Metadata))
			at = append(at, h.now)
		}
	}
	var inserted int64
	err = underSavepoint(ctx, tx, "sw_deferred", func(b *pgx.Batch) {
		b.Queue(s.sql.appendHeld, streams, expected, ids, types, data, meta, at).Exec(func(ct pgconn.CommandTag) error {
			inserted = ct.RowsAffected()
			return nil
		})
	})
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return 0, nil // rolled back to the savepoint: a version or an event id taken
	case err != nil:
		return 0, err
	case inserted != 0 && inserted != int64(n):
		return 0, fmt.Errorf("held appends: %d rows inserted for %d events", inserted, n)
	}
	return int(inserted), nil
}

// follows stands, in appendHeld, for the expected version of an event
// after the first of its append: the one before it.
const follows = -3

// underSavepoint sends what queue adds to a batch between a savepoint of
// tx and its release, in one round trip. When the server refuses a
// statement the savepoint made usable, tx is rolled back to it, and the
// error returned; when that rollback fails, its error.
func underSavepoint(ctx context.Context, tx pgx.Tx, name string, queue func(*pgx.Batch)) error {
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT " + name)
	queue(b)
	b.Queue("RELEASE SAVEPOINT " + name)
	err := tx.SendBatch(ctx, b).Close()
	if err != nil && statementFailed(err) {
		if _, rbErr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name); rbErr != nil {
			// Only rbErr can be told apart: the transaction is not
			// usable, whatever err was.
			return fmt.Errorf("rolling back to savepoint %s after %v: %w", name, err, rbErr)
		}
	}
	return err
}
