package backend

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/internal/opentx"
	"github.com/switchyard-go/switchyard/internal/touch"
	"github.com/switchyard-go/switchyard/store"
)

// WithOpen returns ctx marked as carrying st's open transaction: a
// backend calls it wherever it puts a transaction of st in a context.
func WithOpen(ctx context.Context, st store.Store) context.Context { return opentx.With(ctx, st) }

// CheckWrite is what every write to st — verb, and the stream it writes
// to when there is one — passes first: refused with a
// *store.CrossStoreError when ctx carries another store's open
// transaction, a *store.ReadOnlyError in the Reading role, a
// *store.IsolationError outside ctx's store.Isolate. The relay's own
// bookkeeping (checkpoints, quarantine) does not pass here: it is not the
// application's code writing.
func CheckWrite(ctx context.Context, st store.Store, verb, stream string) error {
	op := func() string {
		if stream == "" {
			return verb
		}
		return verb + " " + strconv.Quote(stream)
	}
	if o, ok := opentx.Owner(ctx); ok && o != any(st) {
		return &store.CrossStoreError{Op: op(), Target: name(st), Open: name(o.(store.Store))} // WithOpen marks a store.Store
	}
	if store.RoleOf(ctx) == store.Reading {
		return &store.ReadOnlyError{Op: op(), Store: name(st)}
	}
	if ie := store.CheckIsolation(ctx, name(st)); ie != nil {
		ie.Op = op()
		return ie
	}
	return nil
}

// NoteRead reports a read of st (op), from its replica or not, to a
// recorder in ctx (package touchtest).
func NoteRead(ctx context.Context, st store.Store, op string, replica bool) {
	touch.Note(ctx, st.Context(), st.Shard(), op, false, replica)
}

// NoteWrite reports a write of st (op) that succeeded to a recorder in
// ctx. Appends report themselves (Telemetry.Append).
func NoteWrite(ctx context.Context, st store.Store, op string) {
	touch.Note(ctx, st.Context(), st.Shard(), op, true, false)
}

func name(st store.Store) string { return st.Context() + "/" + st.Shard() }

// CheckRead checks the arguments of a stream read.
func CheckRead(stream string, dir store.Direction, from int64, limit int) error {
	if err := store.CheckStream(stream); err != nil {
		return err
	}
	if dir != store.Forward && dir != store.Backward {
		return &store.InvalidError{Field: "direction", Value: strconv.Itoa(int(dir)), Reason: "want Forward or Backward"}
	}
	if dir == store.Forward && from < 0 {
		return &store.InvalidError{Field: "from version", Value: strconv.FormatInt(from, 10), Reason: "negative on a forward read"}
	}
	return CheckLimit(limit)
}

// CheckLimit checks a read limit: 1 to store.MaxReadLimit.
func CheckLimit(limit int) error {
	if limit < 1 || limit > store.MaxReadLimit {
		return &store.InvalidError{Field: "limit", Value: strconv.Itoa(limit), Reason: "want 1 to " + strconv.Itoa(store.MaxReadLimit)}
	}
	return nil
}

// CheckExpected checks an expected version.
func CheckExpected(e store.ExpectedVersion) error {
	if !e.Valid() {
		return &store.InvalidError{Field: "expected version", Value: strconv.FormatInt(int64(e), 10), Reason: "want Any, NoStream, StreamExists or Exact(n >= 0)"}
	}
	return nil
}

// CheckLink checks the arguments of a link.
func CheckLink(stream string, expected store.ExpectedVersion, ids []uuid.UUID) error {
	if err := store.CheckStream(stream); err != nil {
		return err
	}
	if err := CheckExpected(expected); err != nil {
		return err
	}
	if len(ids) == 0 {
		return &store.InvalidError{Field: "event ids", Value: stream, Reason: "nothing to link"}
	}
	seen := make(map[uuid.UUID]struct{}, len(ids))
	for _, id := range ids {
		if id == uuid.Nil {
			return &store.InvalidError{Field: "event id", Value: id.String(), Reason: "nil UUID"}
		}
		if _, dup := seen[id]; dup {
			return &store.InvalidError{Field: "event id", Value: id.String(), Reason: "appears twice in one link"}
		}
		seen[id] = struct{}{}
	}
	return nil
}

// CheckStreams checks the arguments of a catalog's stream listing: a
// prefix and an after that are, when given, what stream names may be.
func CheckStreams(prefix, after string, limit int) error {
	for field, v := range map[string]string{"stream prefix": prefix, "streams after": after} {
		if v == "" {
			continue
		}
		if err := store.CheckStream(v); err != nil {
			var ie *store.InvalidError
			if errors.As(err, &ie) {
				ie.Field = field
			}
			return err
		}
	}
	return CheckLimit(limit)
}

// CheckCorrelation checks a correlation id to look up: a metadata value.
func CheckCorrelation(id string, limit int) error {
	if id == "" {
		return &store.InvalidError{Field: "correlation id", Value: id, Reason: "empty"}
	}
	if err := store.CheckMetadata(map[string]string{"correlation_id": id}); err != nil {
		return err
	}
	return CheckLimit(limit)
}

// NoEvent is the error of a Catalog.Event that st does not hold.
func NoEvent(st store.Store, id uuid.UUID) error {
	return fmt.Errorf("store: event %s in %s: %w", id, name(st), store.ErrEventNotFound)
}
