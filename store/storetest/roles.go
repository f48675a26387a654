package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/store"
)

// testReadingRole checks that in the Reading role every write is refused,
// naming the store, with nothing written, and that reads still work.
func testReadingRole(t *testing.T, b Backend) {
	st := b.New(t, 0)
	ctx := context.Background()
	first := mustAppend(t, st, "Visit-1", store.NoStream, ev(t, "VisitScheduled", 1))[0]
	reading := store.WithRole(ctx, store.Reading)
	if store.RoleOf(reading) != store.Reading || store.RoleOf(ctx) != store.Writing {
		t.Fatal("WithRole/RoleOf do not round-trip")
	}
	writes := map[string]func() error{
		"append": func() error { _, err := st.Append(reading, "Visit-1", store.Any, ev(t, "VisitMoved", 1)); return err },
		"link":   func() error { return st.Link(reading, "Visit-copy", store.Any, first.ID) },
		"transact": func() error {
			return st.Transact(reading, func(context.Context) error { return nil })
		},
	}
	if in, ok := st.(store.Inbox); ok {
		writes["inbox"] = func() error { _, err := in.MarkHandled(reading, "g", uuid.New()); return err }
	}
	for name, write := range writes {
		err := write()
		var ro *store.ReadOnlyError
		if !errors.Is(err, store.ErrReadOnly) || !errors.As(err, &ro) || ro.Store != "visits/default" {
			t.Errorf("%s in the reading role: %v, want a ReadOnlyError naming visits/default", name, err)
		}
	}
	if got := readStream(t, st, "Visit-1"); len(got) != 1 {
		t.Errorf("Visit-1 has %d events after refused writes, want 1", len(got))
	}
	if got := readStream(t, st, "Visit-copy"); len(got) != 0 {
		t.Errorf("the refused link wrote %d entries", len(got))
	}
	read, err := st.Read(reading, "Visit-1", store.Forward, 0, 10)
	if err != nil || len(read) != 1 || read[0].ID != first.ID {
		t.Errorf("read in the reading role: %v, %v", read, err)
	}
}

// testIsolation checks store.Isolate: writes only where a pattern allows,
// nested guards narrowing, reads allowed, bad patterns refused.
func testIsolation(t *testing.T, b Backend) {
	st := b.New(t, 0) // visits/default
	ctx := context.Background()
	isolate := func(ctx context.Context, patterns ...string) context.Context {
		t.Helper()
		c, err := store.Isolate(ctx, patterns...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, allowed := range [][]string{{"visits"}, {"visits/*"}, {"visits/default"}, {"billing/*", "visits/def*"}} {
		if _, err := st.Append(isolate(ctx, allowed...), "Visit-ok", store.Any, ev(t, "VisitScheduled", 1)); err != nil {
			t.Errorf("append under Isolate(%v): %v", allowed, err)
		}
	}
	billingOnly := isolate(ctx, "billing/*")
	refused := map[string]error{
		"append": func() error {
			_, err := st.Append(billingOnly, "Visit-no", store.Any, ev(t, "VisitScheduled", 1))
			return err
		}(),
		"transact": st.Transact(billingOnly, func(context.Context) error { return nil }),
		"narrowed": func() error {
			_, err := st.Append(isolate(isolate(ctx, "visits"), "billing"), "Visit-no", store.Any, ev(t, "VisitScheduled", 1))
			return err
		}(),
	}
	for name, err := range refused {
		var ie *store.IsolationError
		if !errors.Is(err, store.ErrIsolated) || !errors.As(err, &ie) || ie.Store != "visits/default" {
			t.Errorf("%s outside the isolation: %v, want an IsolationError naming visits/default", name, err)
		}
	}
	if got := readStream(t, st, "Visit-no"); len(got) != 0 {
		t.Errorf("refused appends wrote %d events", len(got))
	}
	if got, err := st.Read(billingOnly, "Visit-ok", store.Forward, 0, 10); err != nil || len(got) != 4 {
		t.Errorf("read under Isolate(billing): %d events, %v; want the 4, reads stay allowed", len(got), err)
	}
	for _, bad := range [][]string{nil, {"a/b/c"}, {"visits/["}, {""}, {"/"}, {"visits/"}, {" billing"}, {"Billing"}} {
		if _, err := store.Isolate(ctx, bad...); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Isolate(%q): %v, want ErrInvalid", bad, err)
		}
	}
}
