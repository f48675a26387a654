package store_test

import (
	"errors"
	"fmt"

	"github.com/switchyard-go/switchyard/store"
)

func ExampleCheckName() {
	for _, name := range []string{"tenant-a", "tenant.a", "Tenant"} {
		err := store.CheckName("shard", name)
		fmt.Println(name, errors.Is(err, store.ErrInvalid))
	}
	// Output:
	// tenant-a false
	// tenant.a true
	// Tenant true
}

func ExamplePosition() {
	p, _ := store.ParsePosition("1042:7")
	q := store.Position{Commit: 1042, Seq: 9}
	fmt.Println(p, p.Compare(q), q.String())
	// Output: 1042:7 -1 1042:9
}
