package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
)

// testCatalog checks store.Catalog: streams by prefix, page after page;
// an event by ID, a link never standing for it; a correlation chain in log
// order and nothing of another chain; the count; bad input.
func testCatalog(t *testing.T, b Backend) {
	st := b.New(t, 0)
	c, ok := st.(store.Catalog)
	if !ok {
		t.Fatalf("%T does not implement store.Catalog", st)
	}
	ctx := context.Background()
	first := mustAppend(t, st, "Visit-1", store.NoStream, ev(t, "VisitScheduled", 1))[0]
	caused := correlation.NewContext(ctx, first.Metadata)
	if _, err := st.Append(caused, "Visit-2", store.NoStream, ev(t, "VisitScheduled", 2), ev(t, "VisitMoved", 2)); err != nil {
		t.Fatal(err)
	}
	other := mustAppend(t, st, "Order-1", store.NoStream, ev(t, "OrderPlaced", 3))[0]
	if err := st.Link(ctx, "$by-day-2026-12-07", store.NoStream, first.ID, other.ID); err != nil {
		t.Fatal(err)
	}

	t.Run("Streams", func(t *testing.T) {
		all, err := c.Streams(ctx, "", "", 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.StreamInfo{{Name: "$by-day-2026-12-07", Version: 1}, {Name: "Order-1"}, {Name: "Visit-1"}, {Name: "Visit-2", Version: 1}}
		if !slices.Equal(all, want) {
			t.Errorf("Streams(all) = %v, want %v", all, want)
		}
		var paged []store.StreamInfo
		for after := ""; ; {
			page, err := c.Streams(ctx, "Visit-", after, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Name
		}
		if want := want[2:]; !slices.Equal(paged, want) {
			t.Errorf("Streams(Visit-, one a page) = %v, want %v", paged, want)
		}
		if none, err := c.Streams(ctx, "Nothing", "", 10); err != nil || len(none) != 0 {
			t.Errorf("Streams(Nothing) = %v, %v; want none", none, err)
		}
		// Names in byte order: a collation that ignores punctuation would
		// put Visitb between the two, and stop the walk after Visit-a.
		other := b.New(t, 0)
		for _, s := range []string{"Visit-a", "Visitb", "Visit-c"} {
			mustAppend(t, other, s, store.NoStream, ev(t, "VisitScheduled", s))
		}
		got, err := other.(store.Catalog).Streams(ctx, "Visit-", "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := []store.StreamInfo{{Name: "Visit-a"}, {Name: "Visit-c"}}; !slices.Equal(got, want) {
			t.Errorf("Streams(Visit-) = %v, want %v", got, want)
		}
	})

	t.Run("Event", func(t *testing.T) {
		got, err := c.Event(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Stream != "Visit-1" || got.Version != 0 || got.Link || got.Type != "VisitScheduled" || got.Position != first.Position {
			t.Errorf("Event(%s) = %s/%d link=%v %s at %v, want Visit-1/0, not a link, at %v", first.ID, got.Stream, got.Version, got.Link, got.Type, got.Position, first.Position)
		}
		if _, err := c.Event(ctx, uuid.New()); !errors.Is(err, store.ErrEventNotFound) {
			t.Errorf("Event(unknown) = %v, want ErrEventNotFound", err)
		}
	})

	t.Run("Correlated", func(t *testing.T) {
		chain, err := c.Correlated(ctx, first.ID.String(), 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range chain {
			got = append(got, e.Stream+"/"+e.Type)
			if e.Metadata.Get(correlation.CorrelationID) != first.ID.String() {
				t.Errorf("%s/%d: correlation_id %q, want %s", e.Stream, e.Version, e.Metadata.Get(correlation.CorrelationID), first.ID)
			}
		}
		if want := []string{"Visit-1/VisitScheduled", "Visit-2/VisitScheduled", "Visit-2/VisitMoved"}; !slices.Equal(got, want) {
			t.Errorf("Correlated(first) = %v, want %v (log order, no links, no other chain)", got, want)
		}
		if one, err := c.Correlated(ctx, first.ID.String(), 1); err != nil || len(one) != 1 || one[0].ID != first.ID {
			t.Errorf("Correlated(first, limit 1) = %v, %v; want the first event", one, err)
		}
		if none, err := c.Correlated(ctx, uuid.NewString(), 10); err != nil || len(none) != 0 {
			t.Errorf("Correlated(unknown) = %v, %v; want none", none, err)
		}
	})

	t.Run("Count", func(t *testing.T) {
		if n, exact, err := c.Count(ctx); err != nil || n != 4 || !exact {
			t.Errorf("Count = %d, %v, %v; want 4 exactly (links not counted)", n, exact, err)
		}
	})

	t.Run("InvalidInput", func(t *testing.T) {
		for name, err := range map[string]error{
			"limit 0":               func() error { _, err := c.Streams(ctx, "", "", 0); return err }(),
			"long prefix":           func() error { _, err := c.Streams(ctx, string(make([]byte, store.MaxStreamLen+1)), "", 1); return err }(),
			"empty correlation id":  func() error { _, err := c.Correlated(ctx, "", 1); return err }(),
			"correlation limit":     func() error { _, err := c.Correlated(ctx, "x", store.MaxReadLimit+1); return err }(),
			"prefix not UTF-8":      func() error { _, err := c.Streams(ctx, "\xff", "", 1); return err }(),
			"after with a NUL":      func() error { _, err := c.Streams(ctx, "", "a\x00", 1); return err }(),
			"correlation not UTF-8": func() error { _, err := c.Correlated(ctx, "\xff", 1); return err }(),
		} {
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
	})
}
