package store

import "context"

// Deferrer is a store that can hold the appends made in a transaction
// and write them together, in one statement, before it commits. The
// postgres backend is one; use it through [AppendDeferred].
type Deferrer interface {
	AppendDeferred(ctx context.Context, stream string, expected ExpectedVersion, events ...Event) error
}

// AppendDeferred appends events to stream as st.Append does, but, in a
// transaction st's Transact began, need not write them at once: a
// [Deferrer] holds them and writes every held append of the transaction
// in one statement, in the order they were made, when the store is next
// used in it (an append, link, read or nested Transact, whose error their
// failure then is) or when Transact's function returns, before the
// commit (Transact's error). It is for the events a handler derives: a
// batch of messages sharing one transaction then pays one statement for
// all of them rather than one each.
//
// Bad input is refused at once, as Append refuses it, and the events are
// stamped with ctx's correlation and trace context then. A conflict
// (ErrWrongExpectedVersion, ErrDuplicateEvent) shows when they are
// written; a failure to write them leaves the transaction unable to
// commit, whatever the caller makes of that error: every later use of
// the store in it, and Transact, returns it. What the application reads
// with its own SQL in the transaction does not see them until they are
// written; the store's own reads do. Anywhere else — no transaction, one
// or a savepoint the application began itself (a backend's WithTx), a
// store that is no Deferrer — it is Append.
func AppendDeferred(ctx context.Context, st Store, stream string, expected ExpectedVersion, events ...Event) error {
	if d, ok := st.(Deferrer); ok {
		return d.AppendDeferred(ctx, stream, expected, events...)
	}
	_, err := st.Append(ctx, stream, expected, events...)
	return err
}
