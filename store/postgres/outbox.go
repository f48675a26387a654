package postgres

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/switchyard-go/switchyard/store"
)

// LeaseCheck is how often a relay lease checks that its connection, and so
// its advisory lock, is still there.
var LeaseCheck = time.Second

// Commits signals commits made through s; see store.Outbox.
func (s *Store) Commits() (<-chan struct{}, func()) { return s.commits.Subscribe() }

func (s *Store) table(name string) string {
	return pgx.Identifier{s.cfg.Schema}.Sanitize() + "." + name
}

// MaxEventBytes is the largest event Append accepts; see store.Outbox.
func (s *Store) MaxEventBytes() int { return s.cfg.MaxEventBytes }

// Checkpoint returns relay's checkpoint; see store.Outbox.
func (s *Store) Checkpoint(ctx context.Context, relay string) (store.Position, error) {
	if err := s.checkRelay(relay); err != nil {
		return store.Position{}, err
	}
	var p store.Position
	err := s.pool.QueryRow(ctx, `SELECT commit_key, position FROM `+s.table("sw_relay_checkpoints")+` WHERE relay = $1`, relay).
		Scan(&p.Commit, &p.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Position{}, nil
	}
	if err != nil {
		return store.Position{}, s.fail("read checkpoint of relay "+strconv.Quote(relay), err)
	}
	return p, nil
}

// SaveCheckpoint moves relay's checkpoint forward; see store.Outbox.
func (s *Store) SaveCheckpoint(ctx context.Context, relay string, pos store.Position, quarantined ...store.Quarantined) error {
	if err := s.checkRelay(relay); err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, q := range quarantined {
		b.Queue(`INSERT INTO `+s.table("sw_relay_quarantine")+` (relay, event_id, event_type, stream, version, commit_key, position, size, reason, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
			relay, pgUUID(q.EventID), q.Type, q.Stream, q.Version, int64(q.Position.Commit), q.Position.Seq, q.Size, q.Reason, q.At)
	}
	t := s.table("sw_relay_checkpoints")
	b.Queue(`INSERT INTO `+t+` AS c (relay, commit_key, position, updated_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (relay) DO UPDATE SET commit_key = excluded.commit_key, position = excluded.position, updated_at = excluded.updated_at
		WHERE (c.commit_key, c.position) < (excluded.commit_key, excluded.position)`,
		relay, int64(pos.Commit), pos.Seq)
	var err error
	if len(quarantined) == 0 {
		err = s.pool.SendBatch(ctx, b).Close()
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	}
	if err != nil {
		return s.fail("save checkpoint of relay "+strconv.Quote(relay), err)
	}
	return nil
}

// Quarantined lists relay's quarantined events; see store.Outbox.
func (s *Store) Quarantined(ctx context.Context, relay string) ([]store.Quarantined, error) {
	if err := s.checkRelay(relay); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT event_id, event_type, stream, version, commit_key, position, size, reason, at
		FROM `+s.table("sw_relay_quarantine")+` WHERE relay = $1 ORDER BY commit_key, position`, relay)
	if err != nil {
		return nil, s.fail("list quarantine of relay "+strconv.Quote(relay), err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Quarantined, error) {
		var q store.Quarantined
		var id uuid.UUID
		err := row.Scan((*[16]byte)(&id), &q.Type, &q.Stream, &q.Version, &q.Position.Commit, &q.Position.Seq, &q.Size, &q.Reason, &q.At)
		q.EventID = id
		return q, err
	})
	if err != nil {
		return nil, s.fail("list quarantine of relay "+strconv.Quote(relay), err)
	}
	return out, nil
}

// CountAfter counts committed events after pos; see store.Outbox.
func (s *Store) CountAfter(ctx context.Context, pos store.Position) (int64, error) {
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+s.table("sw_events")+`
		WHERE NOT link AND (commit_key, position) > ($1::text::xid8, $2::bigint)`,
		strconv.FormatUint(pos.Commit, 10), pos.Seq).Scan(&n)
	if err != nil {
		return 0, s.fail("count events", err)
	}
	return n, nil
}

// HeldBack reports what holds ReadAll back after pos; see store.Holder.
func (s *Store) HeldBack(ctx context.Context, pos store.Position) (store.Hold, bool, error) {
	if s.closed.Load() {
		return store.Hold{}, false, store.ErrClosed
	}
	var h store.Hold
	var began *time.Time
	err := s.pool.QueryRow(ctx, s.sql.heldBack, strconv.FormatUint(pos.Commit, 10), pos.Seq).
		Scan(&h.Since, &h.Transaction, &h.PID, &h.Prepared, &h.Database, &h.Application, &h.State, &began, &h.Query)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && h.PID == 0 && h.Prepared == "" {
		return store.Hold{}, false, nil // nothing held back, or it ended as it was looked up
	}
	if err != nil {
		return store.Hold{}, false, s.fail("read what holds the log back", err)
	}
	if began != nil {
		h.Began = *began
	}
	return h, true, nil
}

// TryLead takes relay's leadership of this store through a session advisory
// lock held on a connection of its own: the lock goes when the connection
// does, so a leader that dies (even by kill -9) frees it at once, and one
// cut off from the database loses it (Lost closes within LeaseCheck).
func (s *Store) TryLead(ctx context.Context, relay string) (store.Lease, bool, error) {
	if err := s.checkRelay(relay); err != nil {
		return nil, false, err
	}
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, false, s.fail("lead relay "+strconv.Quote(relay), err)
	}
	var ok bool
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`,
		"switchyard.relay."+s.cfg.Schema+"."+relay).Scan(&ok)
	if err != nil || !ok {
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, false, s.fail("lead relay "+strconv.Quote(relay), err)
		}
		return nil, false, nil
	}
	l := &lease{conn: conn, lost: make(chan struct{}), stop: make(chan struct{})}
	l.done.Add(1)
	go l.watch()
	return l, true, nil
}

type lease struct {
	conn *pgx.Conn
	lost chan struct{}
	stop chan struct{}
	once sync.Once
	done sync.WaitGroup
}

func (l *lease) Lost() <-chan struct{} { return l.lost }

func (l *lease) watch() {
	defer l.done.Done()
	t := time.NewTicker(LeaseCheck)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), LeaseCheck)
			err := l.conn.Ping(ctx)
			cancel()
			if err != nil {
				close(l.lost)
				return
			}
		}
	}
}

func (l *lease) Release() {
	l.once.Do(func() {
		close(l.stop)
		l.done.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Unlock first: closing the session frees the lock only once the
		// server's backend has exited, after Close has returned, so another
		// process trying at once could still find it taken.
		l.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`) //nolint:errcheck // Close frees it anyway
		l.conn.Close(ctx)
	})
}

func (s *Store) checkRelay(relay string) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return store.CheckName("relay", relay)
}
