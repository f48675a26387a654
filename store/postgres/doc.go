// Package postgres is the PostgreSQL backend of package store, on pgx/v5.
//
// One Store is the event log of one (context, shard): give each its own
// database, or its own schema in a shared database (Config.Schema, default
// "switchyard"). Open creates and migrates the schema idempotently; the
// version is recorded in sw_schema_version, and concurrent processes
// migrate once (an advisory lock serialises them).
//
//	s, err := postgres.Open(ctx, "postgres://127.0.0.1:5432/visits_acme?pool_max_conns=16",
//		postgres.Config{Context: "visits", Shard: "acme", CreateDatabase: true})
//	_, err = s.Append(ctx, "Visit-42", store.NoStream, ev)
//
// # Transactions
//
// Appends join the transaction ctx carries: Transact begins one, WithTx
// carries one the application began on the same database. Tx gives the
// application its transaction back for its own SQL.
//
//	err = s.Transact(ctx, func(ctx context.Context) error {
//		tx, _ := s.Tx(ctx)
//		if _, err := tx.Exec(ctx, `UPDATE visits SET state = 'confirmed' WHERE id = $1`, 42); err != nil {
//			return err
//		}
//		_, err := s.Append(ctx, "Visit-42", store.Exact(0), confirmed)
//		return err
//	})
//
// # How it writes and orders
//
// An append outside a transaction is one statement and one round trip: it
// reads the stream's last entry, checks the expected version and inserts, so
// the (stream, version) primary key, not the isolation level, decides races.
// Inside a READ COMMITTED transaction (PostgreSQL's default, and
// Transact's) a conflict leaves the transaction usable. One event is
// inserted with ON CONFLICT DO NOTHING, and nothing inserted is told apart:
// a version taken meanwhile under store.Any is tried again, anything else
// diagnosed (ErrWrongExpectedVersion, a replay, ErrDuplicateEvent).
// Several events go under a savepoint, in the same round trip, which also
// undoes any other failure of the statement; for one event, a failure that
// is not a conflict (a lock or statement timeout, a deadlock) ends the
// transaction, as a failed statement does. In a REPEATABLE READ or
// SERIALIZABLE transaction whose snapshot missed another's append to the
// stream, one event fails with PostgreSQL's serialization failure (40001):
// try the whole transaction again.
//
// The appends store.AppendDeferred holds in a transaction Transact began
// are written when fn returns, or before the store is next used in the
// transaction (an append, link, read or nested Transact), all in one
// statement under a savepoint: each stream's expectation is checked
// against its last version plus the held events before it, and the rows
// are inserted in the order the appends were made, or none is. When that
// statement cannot write them all (an expectation that does not hold, a
// version taken meanwhile, a replay), it is undone and each append is
// written on its own as Append writes it, which tells the cases apart;
// any other failure (a lock timeout, a deadlock) is returned. Once
// writing them failed, the transaction cannot commit. A nested Transact
// holds its own appends, writes them before its savepoint is released
// and drops them when it is rolled back; in a savepoint the application
// began itself (WithTx) nothing is held.
//
// Event IDs are uuid.UUID. A store opened from a DSN registers
// [RegisterUUID] on its connections, so the handlers' own queries take one
// as a parameter directly; register it on a pool of your own.
//
// Every row carries a commit key: the appending transaction's id (xid8),
// raised to the stream's previous commit key when that is larger. ReadAll
// returns rows ordered by (commit key, position) and only below the oldest
// transaction still running in this database, so a late-committing
// transaction is never skipped and one stream's events never come out of
// version order. A transaction left open (idle in transaction, a prepared
// transaction) holds ReadAll back until it ends: set
// idle_in_transaction_session_timeout. HeldBack (store.Holder) says which
// transaction holds it back, and since when: the relay reports it. The
// transactions of other databases on the server hold nothing back: the
// store looks up which they are in pg_stat_activity at most every 100ms
// (more often, that lookup would cost more than the reads when many
// sessions are open), so one begun since holds ReadAll back until it
// ends or the store looks again.
//
// ReadAll must run on the primary: a hot standby's snapshots do not list the
// primary's running transactions. With synchronous_commit=off a crash can
// lose commits a reader already saw; keep it on for stores that are relayed.
//
// A connection lost mid-statement is retried with the same event IDs, so an
// append that did commit is recognised as a replay rather than written twice.
//
// A Store is safe for concurrent use.
package postgres
