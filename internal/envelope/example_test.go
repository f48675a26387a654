package envelope_test

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/envelope"
	"github.com/switchyard-go/switchyard/store"
)

// A backend completes what it read; a receiver parses it back.
func Example() {
	ev := store.Event{ID: uuid.MustParse("01938a6e-0000-7000-8000-000000000042"), Type: "VisitBooked", Stream: "Visit-42",
		Version: 0, Position: store.Position{Commit: 900, Seq: 1}, RecordedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	envelope.Complete(&ev, "visits", "tenant-a")
	fmt.Println(ev.Metadata.Get(correlation.Position), ev.Metadata.Get(correlation.Shard), ev.Metadata.Get(correlation.RecordedAt))
	back, _ := envelope.Parse(ev.Metadata.Get, "metadata")
	fmt.Println(back.ID == ev.ID, back.Stream, back.Version)
	// Output:
	// 900:1 tenant-a 2026-12-01T09:00:00Z
	// true Visit-42 0
}
