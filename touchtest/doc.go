// Package touchtest records which stores a block of code reads and
// writes — context, shard, primary or replica — for an application's own
// tests to assert on: that the billing code wrote only billing/tenant-a,
// that a page read nothing from visits, that a read-only path loaded no
// primary.
//
// Start with Record, and hand the code under test the ctx it returns:
//
//	ctx, rec := touchtest.Record(context.Background())
//	err := charge(ctx, reg, "tenant-a")
//	rec.WroteOnly(t, "billing/tenant-a")
//	rec.ReadNothingFrom(t, "visits")
//
// Both store backends report every read and every write that succeeded
// (append, link, inbox record) made with such a ctx, or a ctx derived
// from it (a handler's, a transaction's). Opening a transaction is not a
// write; a write inside one that later rolled back is still recorded, as
// the code did make it. Writes a store refused (a store.Isolate guard,
// the Reading role, another store's open transaction, a wrong expected
// version) are not. The relay's own bookkeeping (checkpoints) is not the
// code's and is not recorded. To make a wrong write fail at once in
// production as well, guard the code with store.Isolate.
package touchtest
