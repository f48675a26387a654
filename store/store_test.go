package store_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
)

func TestExpectedVersionMatches(t *testing.T) {
	cases := []struct {
		e    store.ExpectedVersion
		cur  int64
		want bool
	}{
		{store.Any, -1, true}, {store.Any, 5, true},
		{store.NoStream, -1, true}, {store.NoStream, 0, false},
		{store.StreamExists, -1, false}, {store.StreamExists, 0, true},
		{store.Exact(3), 3, true}, {store.Exact(3), 4, false}, {store.Exact(0), -1, false},
	}
	for _, c := range cases {
		if got := c.e.Matches(c.cur); got != c.want {
			t.Errorf("%s.Matches(%d) = %v", c.e, c.cur, got)
		}
	}
	if store.ExpectedVersion(-3).Valid() || !store.Exact(0).Valid() {
		t.Error("Valid")
	}
}

func TestParsePosition(t *testing.T) {
	for _, bad := range []string{"", "1", "a:b", "1:-2", ":", "1:2:3"} {
		if _, err := store.ParsePosition(bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ParsePosition(%q): %v", bad, err)
		}
	}
}

func TestPrepareDefaults(t *testing.T) {
	p, err := store.Prepare(context.Background(), "s", store.Any, []store.Event{{Type: "Ping"}}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if string(p[0].Event.Data) != "{}" || p[0].Event.ID.Version() != 7 {
		t.Errorf("defaults: data %s id %s", p[0].Event.Data, p[0].Event.ID)
	}
}

// OwnedText gives the text Complete writes; it hands back the metadata's
// own strings when they hold that text, and never a forged value.
func TestOwnedText(t *testing.T) {
	for i := range 100 {
		ev := store.Event{ID: uuid.New(), Type: "Visited", Stream: "visit-1", Version: int64(i * 977),
			Position:   store.Position{Commit: uint64(i) * 1_000_003, Seq: int64(i)},
			RecordedAt: time.Date(2026, 11, 21, 9, 30, i%60, i*1_234_567, time.FixedZone("x", 3600))}
		want := store.Owned{ID: ev.ID.String(), Version: strconv.FormatInt(ev.Version, 10), Position: ev.Position.String(),
			RecordedAt: ev.RecordedAt.UTC().Format(time.RFC3339Nano)}
		if got := store.OwnedText(&ev); got != want {
			t.Fatalf("no metadata: %+v, want %+v", got, want)
		}
		store.Complete(&ev, "visits", "default")
		if got := store.OwnedText(&ev); got != want {
			t.Fatalf("completed: %+v, want %+v", got, want)
		}
		if n := testing.AllocsPerRun(10, func() { store.OwnedText(&ev) }); n != 0 {
			t.Fatalf("completed: %v allocations, want the metadata's strings", n)
		}
		ev.Metadata[string(correlation.EventID)] = uuid.NewString()
		if got := store.OwnedText(&ev); got != want {
			t.Fatalf("forged event_id: %+v, want %+v", got, want)
		}
	}
}
