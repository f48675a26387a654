package status_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/status"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// Read on a deployment where nothing runs yet: the store is there, no
// replica leads its relay, and no group has run.
func ExampleRead() {
	dir, _ := os.MkdirTemp("", "status-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Context: "visits", Shard: "default", Dir: dir})
	if err != nil {
		panic(err)
	}
	reg := sharding.NewRegistry()
	_ = reg.Add(st)
	defer reg.Close()
	conn, err := bus.Connect(ctx, bus.Config{Embedded: bus.Embedded{Dir: filepath.Join(dir, "nats")}})
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	rep, err := status.Read(ctx, conn, reg)
	if err != nil {
		panic(err)
	}
	for _, s := range rep.Stores {
		fmt.Printf("%s/%s: leader %q, %d unpublished\n", s.Context, s.Shard, s.Leader, s.Unpublished)
	}
	fmt.Println(len(rep.Replicas), "replicas,", len(rep.Groups), "groups")
	// Output:
	// visits/default: leader "", 0 unpublished
	// 0 replicas, 0 groups
}
