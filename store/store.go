package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/internal/opentx"
)

// Store is the event log of one (context, shard). Both backends implement it
// and pass store/storetest.
type Store interface {
	// Context and Shard name the bounded context and shard the store belongs to.
	Context() string
	Shard() string

	// Append writes events to the end of stream if the stream is at expected.
	// All events commit together or none does. It returns the events as
	// stored: ID, Version, Position, RecordedAt and Metadata filled in.
	//
	// Appending the same event IDs at the same place again (a retried request
	// whose reply was lost) succeeds without writing and returns the stored
	// events; an ID stored anywhere else is ErrDuplicateEvent.
	//
	// With a transaction in ctx (from Transact or a backend's WithTx) the
	// events join it and reach ReadAll only when it commits.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...Event) ([]Event, error)

	// Link adds already stored events to stream, in the order given, if the
	// stream is at expected. Linked events keep their ID, data, metadata and
	// position; they are not appended to the global log again.
	Link(ctx context.Context, stream string, expected ExpectedVersion, ids ...uuid.UUID) error

	// Read returns up to limit events of stream starting at version from
	// (inclusive): Forward in ascending versions, Backward in descending ones
	// (from < 0 reads backward from the last event). A stream with no events
	// reads as empty.
	Read(ctx context.Context, stream string, dir Direction, from int64, limit int) ([]Event, error)

	// ReadAll returns up to limit events that come after the position after,
	// in log order. It never returns an event a later call could find before
	// a position it returned: events of transactions that may still commit
	// in between are held back until they have. Links are not returned.
	ReadAll(ctx context.Context, after Position, limit int) ([]Event, error)

	// Transact runs fn in one transaction: everything appended and linked
	// with the ctx fn receives commits when fn returns nil and is rolled
	// back when it returns an error or panics. Called with a ctx that already
	// carries a transaction of this store, fn runs in a savepoint of it:
	// when fn returns an error what it did is rolled back and the
	// transaction goes on without it; when fn returns nil it commits with
	// the transaction.
	Transact(ctx context.Context, fn func(ctx context.Context) error) error

	// Close releases the store's resources; further calls return ErrClosed.
	Close() error
}

// Detach returns ctx without the mark of an open transaction: a write to
// another store with it commits on its own, at once, whatever becomes of
// the transaction (which a write to its own store still joins). It is the
// escape hatch for the rare write that may; bounded contexts talk to each
// other through events.
func Detach(ctx context.Context) context.Context { return opentx.Without(ctx) }
