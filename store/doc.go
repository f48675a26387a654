// Package store is Switchyard's event store: the event log of one bounded
// context and one shard.
//
// A [Store] appends events to streams with optimistic concurrency, reads a
// stream forward or backward, links existing events into other streams, and
// reads the whole log in commit order with [Store.ReadAll] — the log is the
// outbox the relay tails. Appends join a transaction carried by the context
// (see [Store.Transact] and each backend's WithTx), so an application saves its
// own rows and its events atomically.
//
//	st, err := sqlite.Open(ctx, sqlite.Config{Dir: "data", Context: "visits", Shard: "default"})
//	ev, _ := store.NewEvent("VisitScheduled", VisitScheduled{ID: 42})
//	_, err = st.Append(ctx, "Visit-42", store.NoStream, ev)
//	var wrong *store.WrongExpectedVersionError
//	if errors.As(err, &wrong) { ... wrong.Actual ... }
//
// Open a store with a backend: store/postgres (pgx/v5) or store/sqlite (pure
// Go, the embedded default); both pass the conformance suite in
// store/storetest. Package stores opens every store a configuration lists.
// Beside [Store], a backend offers [Outbox] (what the relay needs: commit
// signals, its checkpoint, leadership) and [Inbox] (what the handlers'
// exactly-once middleware needs).
//
// # Transactions
//
// A transaction belongs to its store: with a ctx that carries one store's
// open transaction (Transact, a backend's WithTx, a handler's), an append,
// link or transaction on any other store is refused with a
// [*CrossStoreError] naming both, and nothing is written. No transaction
// spans two databases: such a write would commit on its own, survive the
// rollback and be repeated by a retry. Bounded contexts talk to each other
// through events; for the rare write that may commit on its own, [Detach]
// the ctx.
//
// [AppendDeferred] is Append for the events a transaction derives, when
// it need not see them stored at once: a backend that is a [Deferrer]
// (postgres) holds them and writes all of a transaction's in one
// statement, before it commits, or before the store is next used in it.
// A batch of handled messages so pays one statement for its derived
// events instead of one each.
//
// # Roles and isolation
//
// A ctx carries a Role (WithRole): Writing, the default, or Reading, in
// which stream and catalog reads go to the store's replica where it has
// one (store/postgres Config.ReplicaDSN) and every write — append, link,
// transaction, inbox record — is refused with a *ReadOnlyError. Isolate
// makes a ctx able to write only to the stores it names ("billing/*"),
// refusing any other write with an *IsolationError; reads stay allowed.
// Package touchtest records, for tests, which stores a ctx's code read
// and wrote.
//
// # Ordering
//
// A stream's versions are 0, 1, 2, … without gaps. An event's [Position] is its
// place in the store's global log; [Store.ReadAll] returns events in Position
// order, which is commit order as a reader sees it: a reader that has gone past
// a position never later finds an event before it, and one stream's events
// always come in version order.
//
// # Metadata
//
// Append stamps every event with the well-known keys of package correlation:
// event_id, event_type, stream, stream_version, position, context, shard,
// recorded_at, correlation_id / causation_id by the chaining rules, and
// traceparent / tracestate when a span is active. The keys the store sets
// from its own columns and names (all but the correlation and trace keys)
// are dropped from what an application gives; the rest of the application's
// metadata is kept as given ([CheckMetadata] says what is allowed).
//
// # Errors
//
// Conflicts are [ErrWrongExpectedVersion] (as [*WrongExpectedVersionError]) and
// [ErrDuplicateEvent]; bad input is [ErrInvalid] (as [*InvalidError], naming
// the input); a link to an event that does not exist is [ErrEventNotFound];
// a write to another store inside a transaction is [ErrCrossStore]; a
// write in the Reading role is [ErrReadOnly], one outside an Isolate
// [ErrIsolated];
// a closed store is [ErrClosed]; a database that failed is a [*Error],
// which matches [ErrUnavailable] when the database is out of reach. A
// write whose answer was lost matches [ErrOutcomeUnknown]: append the same
// events again (same IDs), and a replay of what was stored succeeds
// without writing twice; every other failed write wrote nothing. A stream
// with no events reads as empty.
//
// # Concurrency
//
// A Store is safe for concurrent use by many goroutines. A context carrying a
// transaction must be used by one goroutine at a time, as the transaction
// itself.
package store
