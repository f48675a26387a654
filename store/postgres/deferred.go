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

// holding is what a transaction Transact began holds: its deferred
// appends, in order, until flush writes them. done is set once the
// transaction is over: nothing can be held for it then.
type holding struct {
	mu      sync.Mutex
	appends []held
	done    bool
}

type holdingKey struct{ s *Store }

// AppendDeferred appends events to stream, in a transaction Transact
// began when it is written; see store.AppendDeferred. It runs in a
// producer span, as Append does, whose trace context the events carry.
func (s *Store) AppendDeferred(ctx context.Context, stream string, expected store.ExpectedVersion, events ...store.Event) error {
	h, ok := ctx.Value(holdingKey{s}).(*holding)
	if _, inTx := s.Tx(ctx); !ok || !inTx {
		_, err := s.Append(ctx, stream, expected, events...)
		return err
	}
	_, err := s.tel.Append(ctx, stream, len(events), func(ctx context.Context, now time.Time) ([]store.Event, error) {
		if s.closed.Load() {
			return nil, store.ErrClosed
		}
		if err := backend.CheckWrite(ctx, s, "append to", stream); err != nil {
			return nil, err
		}
		pending, err := backend.Prepare(ctx, stream, expected, events, s.cfg.MaxEventBytes, now)
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.done {
			return nil, s.fail("append to "+strconv.Quote(stream), pgx.ErrTxClosed)
		}
		h.appends = append(h.appends, held{stream, expected, pending, now})
		return nil, nil
	})
	return err
}

// hold returns ctx for a transaction Transact began, holding its
// deferred appends.
func (s *Store) hold(ctx context.Context) (context.Context, *holding) {
	h := &holding{}
	return context.WithValue(ctx, holdingKey{s}, h), h
}

// take returns the appends held for the transaction of ctx, and holds
// none from then on; with end, none can be held any more.
func (s *Store) take(ctx context.Context, end bool) []held {
	h, ok := ctx.Value(holdingKey{s}).(*holding)
	if !ok {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.appends
	h.appends, h.done = nil, h.done || end
	return out
}

// flush writes the appends held for the transaction of ctx, in order:
// all in one statement when there are several (writeHeld), else, or when
// that one could not write them all, one at a time as Append writes, so
// that a conflict is told apart as Append tells it, and an append under
// store.Any that lost a race for a version is tried again.
func (s *Store) flush(ctx context.Context) error {
	hs := s.take(ctx, false)
	if len(hs) == 0 {
		return nil
	}
	tx, _ := s.Tx(ctx)
	if len(hs) > 1 {
		written, err := s.writeHeld(ctx, tx, hs)
		if err != nil {
			return s.fail("append to "+strconv.Quote(hs[0].stream)+" and others", err)
		}
		if written {
			n := 0
			for _, h := range hs {
				n += len(h.pending)
			}
			s.tel.Wrote(ctx, n)
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
// savepoint, or none: written is false when an expectation did not hold
// or a row conflicted, which rolled the savepoint back.
func (s *Store) writeHeld(ctx context.Context, tx pgx.Tx, hs []held) (written bool, err error) {
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
		return false, nil // rolled back to the savepoint: a version or an event id taken
	case err != nil:
		return false, err
	case inserted != 0 && inserted != int64(n):
		return false, fmt.Errorf("held appends: %d rows inserted for %d events", inserted, n)
	}
	return inserted == int64(n), nil
}

// follows stands, in appendHeld, for the expected version of an event
// after the first of its append: the one before it.
const follows = -3

// underSavepoint sends what queue adds to a batch between a savepoint of
// tx and its release, in one round trip. When the server refuses a
// statement the savepoint made usable, tx is rolled back to it, and the
// error returned.
func underSavepoint(ctx context.Context, tx pgx.Tx, name string, queue func(*pgx.Batch)) error {
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT " + name)
	queue(b)
	b.Queue("RELEASE SAVEPOINT " + name)
	err := tx.SendBatch(ctx, b).Close()
	if err != nil && statementFailed(err) {
		if _, rbErr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name); rbErr != nil {
			return errors.Join(err, rbErr)
		}
	}
	return err
}
