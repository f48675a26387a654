package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
)

// testDeferred checks store.AppendDeferred: whether or not the backend
// holds the appends, they end up as Append would have written them, in
// the order they were made.
func testDeferred(t *testing.T, b Backend) {
	s := b.New(t, 0)
	ctx := context.Background()
	cause := mustAppend(t, s, "Cause-1", store.NoStream, ev(t, "Caused", nil))[0]
	hctx := correlation.NewContext(ctx, cause.Metadata)
	defer1 := func(ctx context.Context, stream string, exp store.ExpectedVersion, events ...store.Event) error {
		if err := store.AppendDeferred(ctx, s, stream, exp, events...); err != nil {
			return fmt.Errorf("defer to %s: %w", stream, err)
		}
		return nil
	}
	err := s.Transact(hctx, func(ctx context.Context) error {
		if err := b.App.Insert(ctx, s, "deferred"); err != nil {
			return err
		}
		for _, step := range []func() error{
			func() error { return defer1(ctx, "Held-A", store.NoStream, evs(t, 2)...) },
			func() error { return defer1(ctx, "Held-B", store.Any, ev(t, "B0", nil)) },
			func() error { return defer1(ctx, "Held-A", store.Exact(1), ev(t, "A2", nil)) },
			func() error { return defer1(ctx, "Held-B", store.StreamExists, ev(t, "B1", nil)) },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		// Bad input is refused at once.
		if err := store.AppendDeferred(ctx, s, "Held-C", store.Any, store.Event{Type: ""}); !errors.Is(err, store.ErrInvalid) {
			return fmt.Errorf("deferred append of an event without a type: got %v, want ErrInvalid", err)
		}
		// The store's reads in the transaction see the held appends.
		if got, err := s.Read(ctx, "Held-A", store.Forward, 0, 10); err != nil || len(got) != 3 {
			return fmt.Errorf("read in the transaction: %d events, %v; want 3", len(got), err)
		}
		if err := defer1(ctx, "Held-A", store.Exact(2), ev(t, "A3", nil)); err != nil {
			return err
		}
		return defer1(ctx, "Held-B", store.Exact(1), ev(t, "B2", nil))
	})
	if err != nil {
		t.Fatalf("transaction: %v", err)
	}
	a, bs := readStream(t, s, "Held-A"), readStream(t, s, "Held-B")
	if len(a) != 4 || len(bs) != 3 || a[2].Type != "A2" || a[3].Type != "A3" || bs[1].Type != "B1" || bs[2].Type != "B2" {
		t.Fatalf("held appends wrote %d events to Held-A, %d to Held-B, out of order or lost", len(a), len(bs))
	}
	for _, e := range append(a, bs...) {
		if e.Metadata.Get(correlation.CausationID) != cause.ID.String() {
			t.Errorf("event %s of %s: causation %q, want %s (the ctx it was deferred with)", e.Type, e.Stream, e.Metadata.Get(correlation.CausationID), cause.ID)
		}
	}
	before := func(x, y store.Event) bool { return x.Position.Compare(y.Position) < 0 }
	if !before(a[1], bs[0]) || !before(bs[0], a[2]) || !before(bs[1], a[3]) || !before(a[3], bs[2]) {
		t.Errorf("the log does not keep the order the appends were made in: %v %v %v %v", a[1].Position, bs[0].Position, a[2].Position, bs[1].Position)
	}
	if n, err := b.App.Count(ctx, s, "deferred"); err != nil || n != 1 {
		t.Errorf("application row: %d, %v; want 1", n, err)
	}
	testDeferredConflicts(t, b, s)
}

// testDeferredConflicts checks that a held append that conflicts fails its
// transaction, with nothing of it written, and that what a nested
// transaction held goes with it.
func testDeferredConflicts(t *testing.T, b Backend, s store.Store) {
	ctx := context.Background()
	stored := readStream(t, s, "Held-B")[0]
	for name, bad := range map[string]func(ctx context.Context) error{
		"wrong expected version": func(ctx context.Context) error {
			return store.AppendDeferred(ctx, s, "Held-A", store.NoStream, ev(t, "Late", nil))
		},
		"stored event elsewhere": func(ctx context.Context) error {
			return store.AppendDeferred(ctx, s, "Held-Z", store.Any, stored)
		},
	} {
		err := s.Transact(ctx, func(ctx context.Context) error {
			if err := b.App.Insert(ctx, s, "conflicted"); err != nil {
				return err
			}
			if err := store.AppendDeferred(ctx, s, "Held-Y", store.Any, ev(t, "Fine", nil)); err != nil {
				return err
			}
			return bad(ctx)
		})
		want := store.ErrWrongExpectedVersion
		if name == "stored event elsewhere" {
			want = store.ErrDuplicateEvent
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: transaction returned %v, want %v", name, err, want)
		}
	}
	if n, _ := b.App.Count(ctx, s, "conflicted"); n != 0 || len(readStream(t, s, "Held-Y"))+len(readStream(t, s, "Held-Z")) != 0 {
		t.Errorf("a transaction whose held append conflicted left rows or events")
	}
	// A replay of what is stored, where it is stored, goes through, with
	// the others held beside it.
	err := s.Transact(ctx, func(ctx context.Context) error {
		if err := store.AppendDeferred(ctx, s, "Held-B", store.NoStream, stored); err != nil {
			return err
		}
		return store.AppendDeferred(ctx, s, "Held-Y", store.NoStream, ev(t, "Beside", nil))
	})
	if n := len(readStream(t, s, "Held-Y")); err != nil || n != 1 || len(readStream(t, s, "Held-B")) != 3 {
		t.Errorf("replayed held append: %v, %d events beside it (want 1)", err, n)
	}
	boom := errors.New("boom")
	err = s.Transact(ctx, func(ctx context.Context) error {
		if err := store.AppendDeferred(ctx, s, "Nest-1", store.NoStream, ev(t, "Outer", nil)); err != nil {
			return err
		}
		err := s.Transact(ctx, func(ctx context.Context) error {
			if err := store.AppendDeferred(ctx, s, "Nest-2", store.NoStream, ev(t, "Inner", nil)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			return fmt.Errorf("failing nested transaction: got %v, want boom", err)
		}
		return s.Transact(ctx, func(ctx context.Context) error {
			return store.AppendDeferred(ctx, s, "Nest-1", store.Exact(0), ev(t, "Kept", nil))
		})
	})
	if err != nil {
		t.Fatalf("nested transactions: %v", err)
	}
	if n1, n2 := len(readStream(t, s, "Nest-1")), len(readStream(t, s, "Nest-2")); n1 != 2 || n2 != 0 {
		t.Errorf("nested: %d events in Nest-1 (want 2), %d in Nest-2 (want 0: rolled back)", n1, n2)
	}
	// A ctx kept past its transaction cannot defer into it: an error, not
	// an append held where no commit will write it.
	var kept context.Context
	if err := s.Transact(ctx, func(ctx context.Context) error { kept = ctx; return nil }); err != nil {
		t.Fatal(err)
	}
	err = store.AppendDeferred(kept, s, "After-1", store.Any, ev(t, "Late", nil))
	if n := len(readStream(t, s, "After-1")); err == nil && n == 0 {
		t.Errorf("deferred append after its transaction ended: no error, and nothing written")
	}
	// Nor is one with the ctx of a nested transaction rolled back lost:
	// refused (postgres), or written in the transaction around it (sqlite,
	// whose savepoints share the transaction's connection, as Append does).
	var staleErr error
	err = s.Transact(ctx, func(ctx context.Context) error {
		var inner context.Context
		_ = s.Transact(ctx, func(ctx context.Context) error { inner = ctx; return boom })
		staleErr = store.AppendDeferred(inner, s, "Stale-1", store.Any, ev(t, "Stale", nil))
		return nil
	})
	if n := len(readStream(t, s, "Stale-1")); err != nil || staleErr == nil && n != 1 {
		t.Errorf("deferred append with a stale nested ctx: %v (transaction %v), %d events written", staleErr, err, n)
	}
	testDeferredNothingLost(t, s)
}

// testDeferredNothingLost checks that an append AppendDeferred accepted
// is committed or its transaction fails, even when the caller ignores
// the error of the call that tried to write it.
func testDeferredNothingLost(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustAppend(t, s, "Lost-A", store.NoStream, ev(t, "There", nil))
	var acceptedB bool
	err := s.Transact(ctx, func(ctx context.Context) error {
		_ = store.AppendDeferred(ctx, s, "Lost-A", store.NoStream, ev(t, "Held", nil)) // conflicts, now or when written
		acceptedB = store.AppendDeferred(ctx, s, "Lost-B", store.NoStream, ev(t, "Held", nil)) == nil
		_, _ = s.Read(ctx, "Lost-B", store.Forward, 0, 1)                             // may write them, and fail: ignored
		_, _ = s.Append(ctx, "Lost-C", store.NoStream, ev(t, "CreatedIfAbsent", nil)) // so may this
		return nil
	})
	if err == nil && acceptedB && len(readStream(t, s, "Lost-B")) == 0 {
		t.Errorf("AppendDeferred to Lost-B returned nil and its transaction committed, without it")
	}
}
