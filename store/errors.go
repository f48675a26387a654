package store

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, for errors.Is.
var (
	// ErrWrongExpectedVersion: the stream was not at the expected version.
	// The error is a *WrongExpectedVersionError.
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	// ErrDuplicateEvent: an event ID is already stored at another place.
	ErrDuplicateEvent = errors.New("duplicate event")
	// ErrInvalid: bad input; the error is an *InvalidError naming it.
	ErrInvalid = errors.New("invalid input")
	// ErrEventNotFound: an event to link does not exist.
	ErrEventNotFound = errors.New("event not found")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrNotMigrated: a store opened without migrating (the backends'
	// Config.NoMigrate) has no schema, or one older than the build's.
	ErrNotMigrated = errors.New("store schema not migrated")
	// ErrUnavailable: the store's database could not be reached, or the
	// connection to it broke. Trying again once it is back may succeed.
	// The error is a *Error.
	ErrUnavailable = errors.New("database unavailable")
	// ErrOutcomeUnknown: a write was sent and its answer lost (the
	// connection broke, or ctx ended, while it was on its way), so it may
	// have committed. Append the same events again, with the same IDs: if
	// they were stored, the append succeeds as a replay without writing
	// twice. Every other failed write wrote nothing. The error is a *Error.
	ErrOutcomeUnknown = errors.New("outcome unknown: the write may have committed")
	// ErrCrossStore: a write to one store with a ctx that carries another
	// store's open transaction. The error is a *CrossStoreError.
	ErrCrossStore = errors.New("write to another store inside a transaction")
)

// CrossStoreError refuses a write (Op) to the store Target while ctx
// carries an open transaction of the store Open: no transaction spans two
// databases, so the write would commit on its own, survive the
// transaction's rollback and be repeated by a retry. Nothing was written.
// Write to Target in a transaction of its own (its Transact), or, for the
// rare write that may commit on its own, with Detach(ctx). Stores are
// named "context/shard".
type CrossStoreError struct {
	Op     string
	Target string
	Open   string
}

func (e *CrossStoreError) Error() string {
	return fmt.Sprintf("store %s: %s refused: ctx carries an open transaction of store %s, and no transaction spans two databases (use a transaction of %s, or store.Detach(ctx) to commit it on its own)",
		e.Target, e.Op, e.Open, e.Target)
}

// Is makes errors.Is(err, ErrCrossStore) true.
func (e *CrossStoreError) Is(target error) bool { return target == ErrCrossStore }

// WrongExpectedVersionError reports an append or link whose expected version
// did not match. Actual is the stream's last version, -1 when it has none.
type WrongExpectedVersionError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   int64
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("store: append to %q: wrong expected version: expected %s, actual %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) true.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// DuplicateEventError reports an event ID already stored at another place.
type DuplicateEventError struct {
	Stream string
	ID     string
}

func (e *DuplicateEventError) Error() string {
	return fmt.Sprintf("store: append to %q: event %s is already stored elsewhere", e.Stream, e.ID)
}

// Is makes errors.Is(err, ErrDuplicateEvent) true.
func (e *DuplicateEventError) Is(target error) bool { return target == ErrDuplicateEvent }

// InvalidError reports bad input: which field, the offending value (shortened
// when long) and why.
type InvalidError struct {
	Field  string
	Value  string
	Reason string
}

func (e *InvalidError) Error() string {
	v := e.Value
	if len(v) > 80 {
		v = strings.ToValidUTF8(v[:77], "") + "..."
	}
	return fmt.Sprintf("store: invalid %s %q: %s", e.Field, v, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Error is a failure of a store operation that is not about its input: the
// database went away, a query failed. Op names the operation, Store the
// store ("context/shard").
type Error struct {
	Op    string
	Store string
	Err   error
	// Unavailable: the database could not be reached, shut down, ran out of
	// resources, or the connection broke (errors.Is ErrUnavailable).
	Unavailable bool
	// MaybeWritten: the write may have committed (errors.Is
	// ErrOutcomeUnknown).
	MaybeWritten bool
}

// Is makes errors.Is(err, ErrUnavailable) and errors.Is(err,
// ErrOutcomeUnknown) say what the error is.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return e.Unavailable
	case ErrOutcomeUnknown:
		return e.MaybeWritten
	}
	return false
}

func (e *Error) Error() string { return fmt.Sprintf("store %s: %s: %v", e.Store, e.Op, e.Err) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }
