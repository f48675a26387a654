// Package sharding routes each bounded context's work to the store of the
// right shard.
//
// A shard is a named database holding one tenant's (or a group of tenants')
// data; every bounded context has one store per shard. A [Registry] maps
// (context, shard) to its [store.Store] and tenants to shards. [Open] builds
// one from a [Config], read from YAML with [ParseConfig] or [LoadConfig] and
// overridden by environment variables with [Config.ApplyEnv]:
//
//	data_dir: data            # sqlite files: data/<context>/<shard>.db
//	contexts:
//	  visits:
//	    shards: [default, tenant-a, tenant-b]
//	  billing:
//	    backend: postgres
//	    dsn: postgres://db:5432/billing_{shard}
//	    create_databases: true
//	    shards: [default, tenant-a]
//	tenants:
//	  acme: tenant-a
//
// The shard travels in a context.Context: put it there with [NewContext] and
// [Registry.For] picks that shard's store.
//
//	cfg, err := sharding.LoadConfig("switchyard.yaml")
//	err = cfg.ApplyEnv(os.Environ())
//	reg, err := sharding.Open(ctx, cfg, sharding.WithLogger(logger))
//	defer reg.Close()
//
//	shard, err := reg.ShardOf("acme")           // "tenant-a"
//	ctx = sharding.NewContext(ctx, shard)
//	st, err := reg.For(ctx, "visits")           // the store of visits/tenant-a
//	_, err = st.Append(ctx, "Visit-42", store.NoStream, ev)
//
// There is no default shard at lookup time: a ctx without a shard, a shard a
// context has no store for and a tenant without a shard are errors. (The
// configuration's default shard list, ["default"], is only that.)
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
// *store.InvalidError. A configuration reports all its problems at once,
// joined, each a [*ConfigError] naming where it is (contexts.visits.shards[2],
// SWITCHYARD_TENANTS); all of them match store.ErrInvalid.
//
// # Concurrency
//
// A Registry is safe for concurrent use by many goroutines, and so are the
// stores it holds. Config is a plain value: do not change one while another
// goroutine uses it.
package sharding
