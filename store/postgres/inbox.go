package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"
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
	tag, err := s.reader(ctx).Exec(ctx, `INSERT INTO `+s.table("sw_inbox")+` (group_name, event_id, handled_at)
		VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, group, pgUUID(id), time.Now().UTC())
	if err != nil {
		return false, s.fail("record "+id.String()+" in the inbox of group "+group, err)
	}
	return tag.RowsAffected() == 1, nil
}
