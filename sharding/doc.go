// Package sharding routes each bounded context's work to the store of the
// right shard.
//
// A shard is a named database holding one tenant's (or a group of tenants')
// data; every bounded context has one store per shard. A [Registry] maps
// (context, shard) to its [store.Store] and tenants to shards. Build one in
// code with [NewRegistry], [Registry.Add] and [Registry.SetTenant], or from
// YAML and environment configuration with stores.Open: configuration, and
// opening the stores of both backends, live in package stores, so a program
// that only routes pulls in no database driver.
//
// The shard travels in a context.Context: put it there with [NewContext] and
// [Registry.For] picks that shard's store.
//
//	reg := sharding.NewRegistry()
//	defer reg.Close()
//	err := reg.Add(st)                      // st.Context() "visits", st.Shard() "tenant-a"
//	err = reg.SetTenant("acme", "tenant-a")
//
//	shard, err := reg.ShardOf("acme")       // "tenant-a"
//	ctx = sharding.NewContext(ctx, shard)
//	st, err = reg.For(ctx, "visits")        // the store of visits/tenant-a
//	_, err = st.Append(ctx, "Visit-42", store.NoStream, ev)
//
// There is no default shard at lookup time: a ctx without a shard, a shard a
// context has no store for and a tenant without a shard are errors. A shard
// named "default" is a shard like any other.
//
// # Names
//
// Context and shard names are 1 to 63 bytes of lowercase ASCII letters,
// digits, '_' and '-' ([CheckName], [store.CheckName]): they become NATS
// subject tokens, SQL identifiers and file names, so nothing else is let in.
// Tenant names are free text: 1 to 255 bytes of UTF-8 without control
// characters ([CheckTenant]).
//
// # Errors
//
// Lookups fail with [ErrNoShard], [ErrUnknownContext], [ErrUnknownTenant] or
// an [*UnknownShardError] (matching [ErrUnknownShard]), each naming what was
// looked up; check them with errors.Is and errors.As. A bad name is a
// *store.InvalidError. After [Registry.Close] lookups and [Registry.Add]
// fail with store.ErrClosed; Close itself returns the stores' errors joined,
// each naming its store.
//
// # Concurrency
//
// A Registry is safe for concurrent use by many goroutines, and so are the
// stores it holds.
package sharding
