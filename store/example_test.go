package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
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

func ExampleAppendDeferred() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, sqlite.Config{Dir: dir, Context: "billing", Shard: "default"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	// A handler's derived events: held in the transaction and, on a
	// backend that holds them (postgres), written together before it
	// commits.
	err = st.Transact(ctx, func(ctx context.Context) error {
		for _, visit := range []string{"42", "43"} {
			ev, _ := store.NewEvent("VisitCharged", map[string]string{"visit": visit})
			if err := store.AppendDeferred(ctx, st, "Invoice-"+visit, store.NoStream, ev); err != nil {
				return err
			}
		}
		return nil
	})
	got, _ := st.Read(ctx, "Invoice-43", store.Forward, 0, 10)
	fmt.Println(err, len(got), got[0].Type)
	// Output: <nil> 1 VisitCharged
}
