package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/store"
)

// testInbox checks the consumer groups' inbox: first time, repeat, rollback,
// one group not seeing another's records, and racing transactions.
func testInbox(t *testing.T, b Backend) {
	st := b.New(t, 0)
	s, ok := st.(store.Inbox)
	if !ok {
		t.Fatalf("%T does not implement store.Inbox", st)
	}
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7())

	mark := func(ctx context.Context, group string, want bool) {
		t.Helper()
		first, err := s.MarkHandled(ctx, group, id)
		if err != nil {
			t.Fatal(err)
		}
		if first != want {
			t.Fatalf("MarkHandled(%s, %s) = %v, want %v", group, id, first, want)
		}
	}

	// Rolled back: as if never handled.
	boom := errors.New("handler failed")
	if err := st.Transact(ctx, func(ctx context.Context) error {
		mark(ctx, "g1", true)
		mark(ctx, "g1", false) // the same transaction sees its own record
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Transact: %v", err)
	}
	// Committed with the handler's append.
	if err := st.Transact(ctx, func(ctx context.Context) error {
		mark(ctx, "g1", true)
		_, err := st.Append(ctx, "inbox-derived", store.NoStream, evs(t, 1)...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mark(ctx, "g1", false)
	mark(ctx, "g2", true) // groups are independent
	mark(ctx, "g2", false)

	if _, err := s.MarkHandled(ctx, "Bad Group", id); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad group name: %v, want ErrInvalid", err)
	}

	// Racing deliveries of one event: exactly one transaction is first.
	id2 := uuid.Must(uuid.NewV7())
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			err := st.Transact(ctx, func(ctx context.Context) error {
				first, err := s.MarkHandled(ctx, "race", id2)
				if first {
					firsts.Add(1)
				}
				return err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Fatalf("%d racing transactions were first, want 1", n)
	}

	// Many at once: the ones recorded before, and a repeated id, are not
	// first; a transaction rolled back records none.
	x, y := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	all := func(ctx context.Context, want ...bool) {
		t.Helper()
		first, err := s.MarkAllHandled(ctx, "g1", []uuid.UUID{x, id, y, x})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(first, want) {
			t.Fatalf("MarkAllHandled = %v, want %v", first, want)
		}
	}
	if err := st.Transact(ctx, func(ctx context.Context) error {
		all(ctx, true, false, true, false)
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Transact: %v", err)
	}
	all(ctx, true, false, true, false)
	all(ctx, false, false, false, false)
	if _, err := s.MarkAllHandled(ctx, "Bad Group", []uuid.UUID{x}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad group name: %v, want ErrInvalid", err)
	}
}
