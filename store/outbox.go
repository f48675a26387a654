package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Outbox is what a relay needs of a store beyond Store: the event log is the
// outbox, and the relay's own state lives in the store's database beside it.
// Both backends implement it.
type Outbox interface {
	Store

	// Commits returns a channel that receives a value after events appended
	// or linked through this Store value commit (Append outside a
	// transaction, Link, Transact). Signals coalesce: one value may stand
	// for many commits. Commits of transactions the caller began itself
	// (WithTx) send nothing. stop ends the subscription.
	Commits() (signal <-chan struct{}, stop func())

	// Checkpoint returns the position up to which the named relay has
	// delivered the log (the zero Position before its first save).
	Checkpoint(ctx context.Context, relay string) (Position, error)

	// SaveCheckpoint records, in one transaction, that relay has delivered
	// everything up to pos and set aside the quarantined events. A
	// checkpoint never moves back: saving an older position keeps the newer.
	SaveCheckpoint(ctx context.Context, relay string, pos Position, quarantined ...Quarantined) error

	// Quarantined lists the events relay set aside, in log order.
	Quarantined(ctx context.Context, relay string) ([]Quarantined, error)

	// CountAfter counts the log's committed events after pos: a relay's lag
	// when pos is its checkpoint.
	CountAfter(ctx context.Context, pos Position) (int64, error)

	// MaxEventBytes is the largest event (data plus metadata) Append
	// accepts: the relay checks that NATS takes its message.
	MaxEventBytes() int

	// TryLead makes this process the named relay's leader for this store
	// unless another holds it (ok is false then). Leadership lasts until
	// Release, until the process dies, or until the lease is lost (Lost is
	// closed: the connection holding it broke).
	TryLead(ctx context.Context, relay string) (lease Lease, ok bool, err error)
}

// Lease is a relay's leadership of one store.
type Lease interface {
	// Lost is closed when the lease ended without Release.
	Lost() <-chan struct{}
	// Release gives leadership up.
	Release()
}

// Quarantined is an event a relay could not deliver and set aside, so the
// events behind it keep flowing: one too large for the broker, say.
type Quarantined struct {
	EventID  uuid.UUID
	Type     string
	Stream   string
	Version  int64
	Position Position
	Size     int       // bytes the relay tried to send
	Reason   string    // why it could not be delivered
	At       time.Time // when it was set aside
}

// Holder is an Outbox whose ReadAll can be held back by a transaction
// still running (the PostgreSQL backend: see its doc on ordering). The
// relay asks it when a read finds nothing, to say why in its status, its
// lag and its log.
type Holder interface {
	// HeldBack reports the first event committed after after that ReadAll
	// does not return yet, and the transaction that holds it back; ok is
	// false when ReadAll returns everything committed after after, or the
	// transaction ended as it was looked up.
	HeldBack(ctx context.Context, after Position) (h Hold, ok bool, err error)
}

// Hold is a transaction that keeps ReadAll from returning the events
// committed after it began, until it ends.
//
// On PostgreSQL, State, Began and Query are empty for a session of
// another role unless the store's role may read all statistics
// (pg_read_all_stats, pg_monitor).
type Hold struct {
	Since       time.Time // when the first event held back was recorded
	Transaction uint64    // its id
	PID         int       // the server process running it; 0 when prepared
	Prepared    string    // a prepared transaction's name
	Database    string    // a prepared transaction's database (it may be another)
	Application string    // its session's application_name
	State       string    // "idle in transaction", "active", ...
	Began       time.Time // when it began, or was prepared
	Query       string    // its latest statement, cut to 200 bytes
}

// String describes h for a status column or a log line, without its
// Query: a statement may hold data that has no place in a status.
func (h Hold) String() string {
	var b strings.Builder
	switch {
	case h.Prepared != "":
		fmt.Fprintf(&b, "prepared transaction %q of database %q", h.Prepared, h.Database)
	default:
		fmt.Fprintf(&b, "transaction of pid %d", h.PID)
	}
	if h.Application != "" {
		fmt.Fprintf(&b, " (%s)", strconv.Quote(h.Application))
	}
	if h.State != "" {
		b.WriteString(", " + h.State)
	}
	if !h.Began.IsZero() {
		b.WriteString(", begun " + h.Began.UTC().Format(time.RFC3339))
	}
	return b.String()
}
