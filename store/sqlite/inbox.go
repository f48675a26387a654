package sqlite

import (
	"context"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/internal/backend"
	"github.com/switchyard-go/switchyard/store"
)

var _ store.Inbox = (*Store)(nil)

// MarkHandled records that group handled event id; see store.Inbox.
func (s *Store) MarkHandled(ctx context.Context, group string, id uuid.UUID) (bool, error) {
	if s.closed.Load() {
		return false, store.ErrClosed
	}
	if err := store.CheckName("group", group); err != nil {
		return false, err
	}
	if err := backend.CheckWrite(ctx, s, "record in the inbox of group "+group, ""); err != nil {
		return false, err
	}
	var first bool
	err := s.inWriteTx(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `INSERT INTO sw_inbox (group_name, event_id, handled_at) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, group, id.String(), time.Now().UnixNano())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		first = n == 1
		return err
	})
	if err != nil {
		return false, s.fail("record "+id.String()+" in the inbox of group "+group, err)
	}
	backend.NoteWrite(ctx, s, "record in the inbox of group "+group)
	return first, nil
}

// MarkAllHandled records that group handled the events ids; see
// store.Inbox.
func (s *Store) MarkAllHandled(ctx context.Context, group string, ids []uuid.UUID) ([]bool, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := store.CheckName("group", group); err != nil {
		return nil, err
	}
	if err := backend.CheckWrite(ctx, s, "record in the inbox of group "+group, ""); err != nil {
		return nil, err
	}
	first := make([]bool, len(ids))
	err := s.inWriteTx(ctx, func(q querier) error {
		now := time.Now().UnixNano()
		for i, id := range ids {
			res, err := q.ExecContext(ctx, `INSERT INTO sw_inbox (group_name, event_id, handled_at) VALUES (?, ?, ?)
				ON CONFLICT DO NOTHING`, group, id.String(), now)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			first[i] = n == 1
		}
		return nil
	})
	if err != nil {
		return nil, s.fail("record "+strconv.Itoa(len(ids))+" events in the inbox of group "+group, err)
	}
	backend.NoteWrite(ctx, s, "record in the inbox of group "+group)
	return first, nil
}
