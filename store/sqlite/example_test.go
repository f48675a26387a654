package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

type VisitScheduled struct {
	Visit int    `json:"visit"`
	At    string `json:"at"`
}

func Example() {
	dir, _ := os.MkdirTemp("", "switchyard-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := sqlite.Open(ctx, sqlite.Config{Dir: dir, Context: "visits", Shard: "default"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	ev, _ := store.NewEvent("VisitScheduled", VisitScheduled{Visit: 42, At: "09:00"})
	out, err := s.Append(ctx, "Visit-42", store.NoStream, ev)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out[0].Stream, out[0].Version, out[0].Metadata["shard"])

	// A second writer that still expects a new stream loses.
	_, err = s.Append(ctx, "Visit-42", store.NoStream, ev)
	var wrong *store.WrongExpectedVersionError
	if errors.As(err, &wrong) {
		fmt.Println("conflict: actual version", wrong.Actual)
	}

	all, _ := s.ReadAll(ctx, store.Position{}, 100)
	fmt.Println(len(all), string(all[0].Data))
	// Output:
	// Visit-42 0 default
	// conflict: actual version 0
	// 1 {"visit":42,"at":"09:00"}
}
