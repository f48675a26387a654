package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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
	tag, err := s.reader(ctx).Exec(ctx, `INSERT INTO `+s.table("sw_inbox")+` (group_name, event_id, handled_at)
		VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, group, pgUUID(id), time.Now().UTC())
	if err != nil {
		return false, s.fail("record "+id.String()+" in the inbox of group "+group, err)
	}
	backend.NoteWrite(ctx, s, "record in the inbox of group "+group)
	return tag.RowsAffected() == 1, nil
}

// MarkAllHandled records that group handled the events ids, in one
// statement; see store.Inbox. Rows are inserted in id order, so two
// transactions recording overlapping sets wait for each other instead of
// deadlocking.
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
	what := "record " + strconv.Itoa(len(ids)) + " events in the inbox of group " + group
	rows, err := s.reader(ctx).Query(ctx, `INSERT INTO `+s.table("sw_inbox")+` (group_name, event_id, handled_at)
		SELECT $1, id, $3 FROM unnest($2::uuid[]) AS t(id) ORDER BY id
		ON CONFLICT DO NOTHING RETURNING event_id`, group, uuidArg(ids), time.Now().UTC())
	if err != nil {
		return nil, s.fail(what, err)
	}
	recorded, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
	if err != nil {
		return nil, s.fail(what, err)
	}
	backend.NoteWrite(ctx, s, "record in the inbox of group "+group)
	now := make(map[uuid.UUID]bool, len(recorded))
	for _, id := range recorded {
		now[id.Bytes] = true
	}
	first := make([]bool, len(ids))
	for i, id := range ids {
		first[i] = now[id]
		delete(now, id) // the same id twice: the first only
	}
	return first, nil
}
