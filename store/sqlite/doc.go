// Package sqlite is the embedded backend of package store: one SQLite file
// per (context, shard) in WAL mode, on the pure-Go modernc.org/sqlite driver,
// so a program runs with nothing installed.
//
//	s, err := sqlite.Open(ctx, sqlite.Config{Dir: "data", Context: "visits", Shard: "default"})
//	_, err = s.Append(ctx, "Visit-42", store.NoStream, ev)
//
// SQLite has one writer: transactions begin IMMEDIATE on a single writing
// connection (DB), so commit order is position order and ReadAll needs no
// watermark. Readers use their own connections and see committed data only.
// Application tables live in the same file: begin a transaction on DB(),
// carry it with WithTx (or use Transact and Tx), and the application's rows
// and its events commit together. Do not append without that transaction
// while holding it: the append would wait for the one writing connection.
//
// One process at a time should write a store's file. A Store is safe for
// concurrent use within it.
package sqlite
