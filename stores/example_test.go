package stores_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/switchyard-go/switchyard/store/sqlite"
	"github.com/switchyard-go/switchyard/stores"
)

func Example() {
	dir, err := os.MkdirTemp("", "stores-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg, err := stores.Parse([]byte(`
contexts:
  visits:
    shards: [default, tenant-a, tenant-b]
  billing: {}
tenants:
  acme: tenant-a
  globex: tenant-b
`))
	if err != nil {
		log.Fatal(err)
	}
	// What the environment says wins; a program passes os.Environ().
	if err := cfg.ApplyEnv([]string{"SWITCHYARD_DATA_DIR=" + dir, "SWITCHYARD_CONTEXT_BILLING_SHARDS=tenant-a,tenant-b"}); err != nil {
		log.Fatal(err)
	}

	reg, err := stores.Open(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	fmt.Println(reg.Contexts(), reg.Shards("billing"))
	shard, err := reg.ShardOf("globex")
	if err != nil {
		log.Fatal(err)
	}
	st, err := reg.Store("billing", shard)
	if err != nil {
		log.Fatal(err)
	}
	file, err := filepath.Rel(dir, st.(*sqlite.Store).Path())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.ToSlash(file))

	// Every problem at once, each naming where it is.
	_, err = stores.Parse([]byte(`
contexts:
  visits:
    backend: postgres
    shards: [default, default]
tenants:
  acme: tenant-z
`))
	fmt.Println(err)
	// Output:
	// [billing visits] [tenant-a tenant-b]
	// billing/tenant-b.db
	// stores: config contexts.visits.dsn: the postgres backend needs a dsn
	// stores: config contexts.visits.shards[1]: shard "default" is listed twice (also at shards[0])
	// stores: config tenants.acme: shard "tenant-z" is in no context
}
