package backend_test

import (
	"context"
	"fmt"
	"time"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/backend"
	"github.com/switchyard-go/switchyard/store"
)

// What a backend does with an append before it writes: check it, give
// the events IDs and the correlation rules, and keep only the metadata the
// application may set.
func ExamplePrepare() {
	ev, _ := store.NewEvent("VisitBooked", map[string]int{"visit": 42})
	ev.Metadata = correlation.Metadata{"user_id": "u-7", "shard": "forged"}
	pending, err := backend.Prepare(context.Background(), "Visit-42", store.NoStream, []store.Event{ev}, 0, time.Now())
	if err != nil {
		panic(err)
	}
	md := pending[0].Event.Metadata
	fmt.Println(md["user_id"], md.Get(correlation.Shard) == "", md.Get(correlation.CorrelationID) == pending[0].Event.ID.String())
	// Output: u-7 true true
}
