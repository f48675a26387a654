package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/internal/filelock"
	"github.com/switchyard-go/switchyard/store"
)

// Commits signals commits made through s; see store.Outbox.
func (s *Store) Commits() (<-chan struct{}, func()) { return s.commits.Subscribe() }

// MaxEventBytes is the largest event Append accepts; see store.Outbox.
func (s *Store) MaxEventBytes() int { return s.cfg.MaxEventBytes }

// Checkpoint returns relay's checkpoint; see store.Outbox.
func (s *Store) Checkpoint(ctx context.Context, relay string) (store.Position, error) {
	if err := s.checkRelay(relay); err != nil {
		return store.Position{}, err
	}
	var p store.Position
	err := s.reader.QueryRowContext(ctx, `SELECT position FROM sw_relay_checkpoints WHERE relay = ?`, relay).Scan(&p.Seq)
	if errors.Is(err, sql.ErrNoRows) {
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
	if pos.Commit != 0 {
		return &store.InvalidError{Field: "position", Value: pos.String(), Reason: "SQLite positions have commit 0"}
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return s.fail("save checkpoint of relay "+strconv.Quote(relay), err)
	}
	defer tx.Rollback() //nolint:errcheck // harmless after Commit
	for _, q := range quarantined {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sw_relay_quarantine (relay, event_id, event_type, stream, version, position, size, reason, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			relay, q.EventID.String(), q.Type, q.Stream, q.Version, q.Position.Seq, q.Size, q.Reason, q.At.UnixMicro()); err != nil {
			return s.fail("save checkpoint of relay "+strconv.Quote(relay), err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sw_relay_checkpoints (relay, position, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (relay) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
		WHERE position < excluded.position`, relay, pos.Seq, time.Now().UnixMicro()); err != nil {
		return s.fail("save checkpoint of relay "+strconv.Quote(relay), err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail("save checkpoint of relay "+strconv.Quote(relay), err)
	}
	return nil
}

// Quarantined lists relay's quarantined events; see store.Outbox.
func (s *Store) Quarantined(ctx context.Context, relay string) ([]store.Quarantined, error) {
	if err := s.checkRelay(relay); err != nil {
		return nil, err
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT event_id, event_type, stream, version, position, size, reason, at
		FROM sw_relay_quarantine WHERE relay = ? ORDER BY position`, relay)
	if err != nil {
		return nil, s.fail("list quarantine of relay "+strconv.Quote(relay), err)
	}
	defer rows.Close()
	var out []store.Quarantined
	for rows.Next() {
		var q store.Quarantined
		var id string
		var at int64
		if err := rows.Scan(&id, &q.Type, &q.Stream, &q.Version, &q.Position.Seq, &q.Size, &q.Reason, &at); err != nil {
			return nil, s.fail("list quarantine of relay "+strconv.Quote(relay), err)
		}
		if q.EventID, err = uuid.Parse(id); err != nil {
			return nil, s.fail("list quarantine of relay "+strconv.Quote(relay), err)
		}
		q.At = time.UnixMicro(at).UTC()
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
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
	if err := s.reader.QueryRowContext(ctx, `SELECT count(*) FROM sw_events WHERE link = 0 AND position > ?`, pos.Seq).Scan(&n); err != nil {
		return 0, s.fail("count events", err)
	}
	return n, nil
}

// TryLead takes relay's leadership of this store with an exclusive lock on
// the file <store file>.<relay>.lock: one process at a time relays a SQLite
// file, and a process that dies frees the lock with it.
func (s *Store) TryLead(ctx context.Context, relay string) (store.Lease, bool, error) {
	if err := s.checkRelay(relay); err != nil {
		return nil, false, err
	}
	release, ok, err := filelock.Lock(s.cfg.Path + "." + relay + ".lock")
	if err != nil {
		return nil, false, s.fail("lead relay "+strconv.Quote(relay), err)
	}
	if !ok {
		return nil, false, nil
	}
	return &fileLease{release: release}, true, nil
}

type fileLease struct {
	once    sync.Once
	release func()
}

// Lost never closes: only Release or the process's end frees a file lock.
func (l *fileLease) Lost() <-chan struct{} { return nil }

func (l *fileLease) Release() { l.once.Do(l.release) }

func (s *Store) checkRelay(relay string) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return store.CheckName("relay", relay)
}
