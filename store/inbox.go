package store

import (
	"context"

	"github.com/google/uuid"
)

// Inbox records which events a consumer group has handled, in the store the
// group writes to, so that a redelivered event has no second effect. Both
// backends implement it.
//
// MarkHandled records (group, id) and reports whether this was the first
// time. With a transaction in ctx (from Transact) the record joins it: it
// commits with the handler's own writes and the events it appends, or not at
// all. A concurrent transaction recording the same pair makes the second
// wait for the first and then report false once it commits (or true once
// it rolls back).
//
// MarkAllHandled does the same for many events at once, in one statement
// where the backend can: first[i] reports whether ids[i] was recorded now
// (an id given twice is first once). It is how a batch of messages handled
// in one transaction records them.
type Inbox interface {
	MarkHandled(ctx context.Context, group string, id uuid.UUID) (first bool, err error)
	MarkAllHandled(ctx context.Context, group string, ids []uuid.UUID) (first []bool, err error)
}
