package touchtest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
	"github.com/switchyard-go/switchyard/touchtest"
)

// registry holds visits and billing, two shards each, on SQLite.
func registry(t *testing.T) *sharding.Registry {
	t.Helper()
	reg := sharding.NewRegistry()
	dir := t.TempDir()
	for _, c := range []string{"visits", "billing"} {
		for _, sh := range []string{"tenant-a", "tenant-b"} {
			st, err := sqlite.Open(context.Background(), sqlite.Config{Context: c, Shard: sh, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Add(st); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// charge is the code under test: it reads a visit and charges it, in
// billing — or, when buggy, writes the charge back into visits too.
func charge(ctx context.Context, reg *sharding.Registry, shard string, buggy bool) error {
	visits, _ := reg.Store("visits", shard)
	billing, _ := reg.Store("billing", shard)
	if _, err := visits.Read(ctx, "Visit-1", store.Forward, 0, 10); err != nil {
		return err
	}
	ev, _ := store.NewEvent("ChargeRaised", map[string]int{"cents": 4200})
	if _, err := billing.Append(ctx, "Charge-1", store.Any, ev); err != nil {
		return err
	}
	if buggy {
		ev, _ := store.NewEvent("VisitCharged", map[string]int{"cents": 4200})
		_, err := visits.Append(ctx, "Visit-1", store.Any, ev)
		return err
	}
	return nil
}

// fakeT records the failures an assertion reports.
type fakeT struct {
	testing.TB
	failures []string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, a ...any) {
	f.failures = append(f.failures, fmt.Sprintf(format, a...))
}

func TestRecord(t *testing.T) {
	reg := registry(t)
	ctx, rec := touchtest.Record(context.Background())
	if err := charge(ctx, reg, "tenant-a", false); err != nil {
		t.Fatal(err)
	}
	if got := rec.Wrote(); !slices.Equal(got, []string{"billing/tenant-a"}) {
		t.Errorf("Wrote = %v", got)
	}
	if got := rec.Read(); !slices.Equal(got, []string{"visits/tenant-a"}) {
		t.Errorf("Read = %v", got)
	}
	rec.WroteOnly(t, "billing/tenant-a")
	rec.ReadNothingFrom(t, "billing", "visits/tenant-b")

	// The same assertions fail on the buggy code, naming the store.
	ctx, rec = touchtest.Record(context.Background())
	if err := charge(ctx, reg, "tenant-a", true); err != nil {
		t.Fatal(err)
	}
	f := &fakeT{TB: t}
	rec.WroteOnly(f, "billing/*")
	rec.ReadNothingFrom(f, "visits")
	want := []string{
		`the code wrote visits/tenant-a (append to "Visit-1"); want only billing/*`,
		`the code read visits/tenant-a (read "Visit-1"); want nothing from visits`,
	}
	if !slices.Equal(f.failures, want) {
		t.Errorf("failures:\n%q\nwant\n%q", f.failures, want)
	}
}

// store.Isolate stops the buggy write where it happens; the recorder saw
// only what was written.
func TestIsolateStopsWhatTheRecorderWouldCatch(t *testing.T) {
	reg := registry(t)
	ctx, rec := touchtest.Record(context.Background())
	ctx, err := store.Isolate(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	err = charge(ctx, reg, "tenant-b", true)
	var ie *store.IsolationError
	if !errors.As(err, &ie) || ie.Store != "visits/tenant-b" {
		t.Fatalf("buggy charge under Isolate(billing): %v, want an IsolationError naming visits/tenant-b", err)
	}
	rec.WroteOnly(t, "billing/tenant-b")
}

// Only what was written counts as a write: not opening a transaction
// that only read, not an append the store refused.
func TestOnlyWritesThatHappened(t *testing.T) {
	reg := registry(t)
	visits, _ := reg.Store("visits", "tenant-a")
	ctx, rec := touchtest.Record(context.Background())
	err := visits.Transact(ctx, func(ctx context.Context) error {
		_, err := visits.Read(ctx, "Visit-1", store.Forward, 0, 1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := store.NewEvent("VisitBooked", map[string]int{"n": 1})
	if _, err := visits.Append(ctx, "Visit-1", store.Exact(5), ev); !errors.Is(err, store.ErrWrongExpectedVersion) {
		t.Fatalf("append at a wrong version: %v", err)
	}
	if got := rec.Wrote(); len(got) != 0 {
		t.Errorf("Wrote = %v, want nothing", got)
	}
}

// ReadOnlyReplicas fails on a read of a primary.
func TestReadOnlyReplicasFails(t *testing.T) {
	_, rec := touchtest.Record(context.Background())
	rec.Touched("visits", "tenant-a", `read "Visit-1"`, false, true)
	rec.Touched("visits", "tenant-b", `read "Visit-2"`, false, false)
	f := &fakeT{TB: t}
	rec.ReadOnlyReplicas(f, "visits")
	if want := []string{`the code read the primary of visits/tenant-b (read "Visit-2"); want only replicas of visits`}; !slices.Equal(f.failures, want) {
		t.Errorf("failures %q, want %q", f.failures, want)
	}
}
