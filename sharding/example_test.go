package sharding_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

func Example() {
	dir, err := os.MkdirTemp("", "sharding-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// A registry built in code; stores.Open builds one from configuration.
	reg := sharding.NewRegistry()
	defer reg.Close()
	for _, shard := range []string{"default", "tenant-a", "tenant-b"} {
		st, err := sqlite.Open(ctx, sqlite.Config{Context: "visits", Shard: shard, Dir: dir})
		if err != nil {
			log.Fatal(err)
		}
		if err := reg.Add(st); err != nil { // from here on reg owns st
			log.Fatal(err)
		}
	}
	if err := reg.SetTenant("acme", "tenant-a"); err != nil {
		log.Fatal(err)
	}

	// A request for tenant acme: its shard goes into the ctx, and the ctx
	// picks the store.
	shard, err := reg.ShardOf("acme")
	if err != nil {
		log.Fatal(err)
	}
	ctx = sharding.NewContext(ctx, shard)
	st, err := reg.For(ctx, "visits")
	if err != nil {
		log.Fatal(err)
	}
	ev, err := store.NewEvent("VisitScheduled", map[string]int{"visit": 42})
	if err != nil {
		log.Fatal(err)
	}
	stored, err := st.Append(ctx, "Visit-42", store.NoStream, ev)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stored[0].Metadata.Get(correlation.Context), stored[0].Metadata.Get(correlation.Shard))

	// No shard in the ctx is an error, never a default.
	_, err = reg.For(context.Background(), "visits")
	fmt.Println(err)
	_, err = reg.Store("visits", "tenant-c")
	fmt.Println(err)
	// Output:
	// visits tenant-a
	// sharding: store of context "visits": ctx carries no shard (see sharding.NewContext)
	// sharding: unknown shard "tenant-c" in context "visits"
}
