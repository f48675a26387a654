package envelope_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/envelope"
	"github.com/switchyard-go/switchyard/store"
)

// Text gives the text Complete writes; it hands back the metadata's own
// strings when they hold that text, and never a forged value.
func TestText(t *testing.T) {
	for i := range 100 {
		ev := store.Event{ID: uuid.New(), Type: "Visited", Stream: "visit-1", Version: int64(i * 977),
			Position:   store.Position{Commit: uint64(i) * 1_000_003, Seq: int64(i)},
			RecordedAt: time.Date(2026, 11, 21, 9, 30, i%60, i*1_234_567, time.FixedZone("x", 3600))}
		want := envelope.Texts{ID: ev.ID.String(), Version: strconv.FormatInt(ev.Version, 10), Position: ev.Position.String(),
			RecordedAt: ev.RecordedAt.UTC().Format(time.RFC3339Nano)}
		if got := envelope.Text(&ev); got != want {
			t.Fatalf("no metadata: %+v, want %+v", got, want)
		}
		envelope.Complete(&ev, "visits", "default")
		if got := envelope.Text(&ev); got != want {
			t.Fatalf("completed: %+v, want %+v", got, want)
		}
		if n := testing.AllocsPerRun(10, func() { envelope.Text(&ev) }); n != 0 {
			t.Fatalf("completed: %v allocations, want the metadata's strings", n)
		}
		ev.Metadata[string(correlation.EventID)] = uuid.NewString()
		if got := envelope.Text(&ev); got != want {
			t.Fatalf("forged event_id: %+v, want %+v", got, want)
		}
	}
}

// What Complete writes, Parse reads back; a missing or malformed key is
// named.
func TestParse(t *testing.T) {
	ev := store.Event{ID: uuid.New(), Type: "Visited", Stream: "visit-1", Version: 3,
		Position: store.Position{Commit: 77, Seq: 5}, RecordedAt: time.Date(2026, 11, 21, 9, 30, 0, 123000, time.UTC)}
	envelope.Complete(&ev, "visits", "tenant-a")
	if ev.Metadata.Get(correlation.Context) != "visits" || ev.Metadata.Get(correlation.Shard) != "tenant-a" || ev.Metadata.Get(correlation.EventType) != "Visited" {
		t.Fatalf("Complete wrote %v", ev.Metadata)
	}
	got, err := envelope.Parse(ev.Metadata.Get, "metadata")
	if err != nil || got.ID != ev.ID || got.Stream != ev.Stream || got.Version != ev.Version || got.Position != ev.Position || !got.RecordedAt.Equal(ev.RecordedAt) {
		t.Fatalf("Parse = %+v, %v; want %+v", got, err, ev)
	}
	for _, k := range []correlation.Key{correlation.EventID, correlation.Stream, correlation.StreamVersion, correlation.Position, correlation.RecordedAt} {
		md := ev.Metadata.Clone()
		md.Set(k, "x;\x00")
		_, err := envelope.Parse(md.Get, "header")
		var inv *store.InvalidError
		if !errors.As(err, &inv) || inv.Field != "header "+string(k) {
			t.Errorf("malformed %s: %v; want an InvalidError naming it", k, err)
		}
	}
}

func TestIsOwned(t *testing.T) {
	for _, k := range correlation.Keys() {
		owned := k != correlation.Tenant && k != correlation.CorrelationID && k != correlation.CausationID &&
			k != correlation.TraceParent && k != correlation.TraceState
		if envelope.IsOwned(string(k)) != owned {
			t.Errorf("IsOwned(%s) = %v, want %v", k, !owned, owned)
		}
	}
	if envelope.IsOwned("user_id") {
		t.Error("an application key is owned")
	}
}
