package store

import (
	"context"

	"github.com/google/uuid"
)

// Catalog is what a store tells about its contents beyond reading a
// stream: which streams it holds, one event by its ID, the events of one
// correlation chain, and how many events it holds. Both backends implement
// it; the event browser (package browser) reads through it.
//
// Streams returns up to limit streams whose names start with prefix and
// sort after after ("" for the first page), in the database's name order,
// each with its last version. It reads one index entry per stream, however
// long the streams are.
//
// Event returns the event appended with id (never a link to it), or an
// error matching ErrEventNotFound.
//
// Correlated returns up to limit events whose correlation_id is
// correlationID, in log order, through an index.
//
// Count returns how many events the store holds (links not counted):
// exactly, or, where counting would read a big table whole (PostgreSQL
// past EstimateAbove rows), the database's estimate with exact false.
type Catalog interface {
	Streams(ctx context.Context, prefix, after string, limit int) ([]StreamInfo, error)
	Event(ctx context.Context, id uuid.UUID) (Event, error)
	Correlated(ctx context.Context, correlationID string, limit int) ([]Event, error)
	Count(ctx context.Context) (n int64, exact bool, err error)
}

// EstimateAbove is the size past which Catalog.Count may estimate.
const EstimateAbove = 100_000

// StreamInfo is one stream of a store, as Catalog.Streams lists it.
type StreamInfo struct {
	Name    string
	Version int64 // its last version: the stream holds Version+1 entries
}
