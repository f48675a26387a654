// Package stores configures and opens the event stores of a process: which
// bounded contexts it has, their shards and backends (sqlite or postgres),
// and the tenants' shards. [Open] opens every (context, shard) store a
// [Config] lists and returns them in a [sharding.Registry], which routes
// work to them (see package sharding). This package imports both backends
// and YAML; a program that builds its Registry in code needs only sharding.
//
// A configuration is YAML, read with [Load] or [Parse] (or [Decode], which
// does not validate), then overridden by SWITCHYARD_* environment variables
// with [Config.ApplyEnv]:
//
//	data_dir: data            # sqlite files: data/<context>/<shard>.db
//	max_event_bytes: 1040384  # limit of one event in every store (the default, 1 MiB − 8 KiB)
//	contexts:
//	  visits:                 # backend: sqlite (the default)
//	    shards: [default, tenant-a, tenant-b]
//	  billing:
//	    backend: postgres
//	    dsn: postgres://db:5432/billing_{shard}
//	    create_databases: true
//	    shards: [default, tenant-a]
//	tenants:
//	  acme: tenant-a
//
// [Config] and [ContextConfig] say what each field means, including how a
// postgres DSN with or without {context} and {shard} places the stores;
// [Config.ApplyEnv] lists the variables.
//
//	cfg, err := stores.Load("switchyard.yaml")
//	err = cfg.ApplyEnv(os.Environ())
//	reg, err := stores.Open(ctx, cfg, stores.WithLogger(logger))
//	defer reg.Close()
//	st, err := reg.For(sharding.NewContext(ctx, "tenant-a"), "billing")
//
// # Errors
//
// A configuration reports all its problems at once, joined, each a
// [*ConfigError] naming where it is (contexts.visits.shards[2],
// SWITCHYARD_TENANTS); all of them match store.ErrInvalid. [Parse], [Load],
// [Config.Validate], [Config.ApplyEnv] and [Open] report them this way. An
// error opening a store names the context and shard (see [Open]).
//
// # Concurrency
//
// The functions of this package may be called from many goroutines. A
// Config is a plain value: do not change one while another goroutine uses
// it. The Registry Open returns is safe for concurrent use.
package stores
