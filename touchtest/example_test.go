package touchtest_test

import (
	"context"
	"fmt"
	"os"

	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
	"github.com/switchyard-go/switchyard/touchtest"
)

// What a block of code touched, as a test would assert on it.
func Example() {
	dir, _ := os.MkdirTemp("", "touchtest-example")
	defer os.RemoveAll(dir)
	billing, err := sqlite.Open(context.Background(), sqlite.Config{Context: "billing", Shard: "tenant-a", Dir: dir})
	if err != nil {
		panic(err)
	}
	defer billing.Close()

	ctx, rec := touchtest.Record(context.Background())
	ev, _ := store.NewEvent("ChargeRaised", map[string]int{"cents": 4200})
	billing.Append(ctx, "Charge-1", store.NoStream, ev)
	billing.Read(store.WithRole(ctx, store.Reading), "Charge-1", store.Forward, 0, 10)

	for _, t := range rec.Touches() {
		fmt.Println(t)
	}
	fmt.Println("wrote", rec.Wrote())
	// Output:
	// wrote billing/tenant-a: append to "Charge-1"
	// read billing/tenant-a: read "Charge-1"
	// wrote [billing/tenant-a]
}
