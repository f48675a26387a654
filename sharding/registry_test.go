package sharding_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
)

// fakeStore is a store.Store that only knows its names and counts Close
// calls; the registry never calls anything else.
type fakeStore struct {
	store.Store
	contextName, shard string
	closeErr           error
	closes             atomic.Int32
}

func (f *fakeStore) Context() string { return f.contextName }
func (f *fakeStore) Shard() string   { return f.shard }
func (f *fakeStore) Close() error    { f.closes.Add(1); return f.closeErr }

// newRegistry returns a registry holding a fake store for each
// "context/shard", closed when t ends.
func newRegistry(t *testing.T, names ...string) (*sharding.Registry, map[string]*fakeStore) {
	t.Helper()
	r := sharding.NewRegistry()
	t.Cleanup(func() { _ = r.Close() })
	stores := make(map[string]*fakeStore)
	for _, n := range names {
		c, s, _ := strings.Cut(n, "/")
		f := &fakeStore{contextName: c, shard: s}
		if err := r.Add(f); err != nil {
			t.Fatalf("Add(%s): %v", n, err)
		}
		stores[n] = f
	}
	return r, stores
}

func TestRegistryStore(t *testing.T) {
	r, stores := newRegistry(t, "visits/default", "visits/tenant-a", "billing/tenant-a")
	tests := []struct {
		name               string
		contextName, shard string
		want               string // "context/shard" of the store returned
		is                 error
		contains           []string
	}{
		{name: "found", contextName: "visits", shard: "tenant-a", want: "visits/tenant-a"},
		{name: "other context", contextName: "billing", shard: "tenant-a", want: "billing/tenant-a"},
		{name: "default is a shard like any other", contextName: "visits", shard: "default", want: "visits/default"},
		{name: "unknown shard never defaults", contextName: "visits", shard: "tenant-b", is: sharding.ErrUnknownShard, contains: []string{`"tenant-b"`, `"visits"`}},
		{name: "shard of another context", contextName: "billing", shard: "default", is: sharding.ErrUnknownShard, contains: []string{`"default"`, `"billing"`}},
		{name: "unknown context", contextName: "orders", shard: "default", is: sharding.ErrUnknownContext, contains: []string{`"orders"`}},
		{name: "bad shard", contextName: "visits", shard: "a.b", is: store.ErrInvalid, contains: []string{`"a.b"`}},
		{name: "bad context", contextName: "*", shard: "default", is: store.ErrInvalid, contains: []string{`"*"`}},
		{name: "empty shard", contextName: "visits", shard: "", is: store.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := r.Store(tt.contextName, tt.shard)
			if tt.is == nil {
				if err != nil {
					t.Fatalf("Store(%q, %q): %v", tt.contextName, tt.shard, err)
				}
				if s != stores[tt.want] {
					t.Fatalf("Store(%q, %q) = %s/%s, want %s", tt.contextName, tt.shard, s.Context(), s.Shard(), tt.want)
				}
				return
			}
			if s != nil {
				t.Errorf("Store(%q, %q) returned a store with error %v", tt.contextName, tt.shard, err)
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("Store(%q, %q) = %v, want errors.Is %v", tt.contextName, tt.shard, err, tt.is)
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not contain %s", err, c)
				}
			}
		})
	}

	_, err := r.Store("visits", "tenant-b")
	var unknown *sharding.UnknownShardError
	if !errors.As(err, &unknown) || unknown.Context != "visits" || unknown.Shard != "tenant-b" {
		t.Errorf("errors.As(*UnknownShardError) on %v: got %+v", err, unknown)
	}
	var inv *store.InvalidError
	if _, err := r.Store("visits", "x y"); !errors.As(err, &inv) || inv.Field != "shard" {
		t.Errorf("Store with a bad shard: %v, want *store.InvalidError for field shard", err)
	}
}

func TestRegistryFor(t *testing.T) {
	r, stores := newRegistry(t, "visits/default", "visits/tenant-a")
	ctx := context.Background()

	_, err := r.For(ctx, "visits")
	if !errors.Is(err, sharding.ErrNoShard) || !strings.Contains(err.Error(), `"visits"`) {
		t.Errorf("For without a shard = %v, want ErrNoShard naming the context", err)
	}
	if errors.Is(err, sharding.ErrUnknownShard) {
		t.Errorf("For without a shard = %v, must not look like a lookup of some shard", err)
	}

	s, err := r.For(sharding.NewContext(ctx, "tenant-a"), "visits")
	if err != nil || s != stores["visits/tenant-a"] {
		t.Errorf("For(tenant-a) = %v, %v; want visits/tenant-a", s, err)
	}
	_, err = r.For(sharding.NewContext(ctx, "tenant-z"), "visits")
	var unknown *sharding.UnknownShardError
	if !errors.As(err, &unknown) || unknown.Shard != "tenant-z" {
		t.Errorf("For(tenant-z) = %v, want *UnknownShardError", err)
	}
	_, err = r.For(sharding.NewContext(ctx, "tenant-a"), "billing")
	if !errors.Is(err, sharding.ErrUnknownContext) {
		t.Errorf("For(billing) = %v, want ErrUnknownContext", err)
	}
}

func TestRegistryAdd(t *testing.T) {
	r, _ := newRegistry(t, "visits/default")
	dup := &fakeStore{contextName: "visits", shard: "default"}
	err := r.Add(dup)
	if err == nil || !strings.Contains(err.Error(), `"visits"`) || !strings.Contains(err.Error(), `"default"`) {
		t.Errorf("Add of a duplicate = %v, want an error naming visits and default", err)
	}
	if err := r.Add(nil); err == nil {
		t.Error("Add(nil) = nil, want an error")
	}
	for _, name := range injections {
		for _, f := range []*fakeStore{{contextName: name, shard: "default"}, {contextName: "visits", shard: name}} {
			if err := r.Add(f); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Add(%q/%q) = %v, want store.ErrInvalid", f.contextName, f.shard, err)
			}
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if dup.closes.Load() != 0 {
		t.Error("Close closed a store whose Add failed")
	}
}

func TestRegistryTenants(t *testing.T) {
	r, _ := newRegistry(t, "visits/default", "visits/tenant-a", "billing/tenant-b")
	if err := r.SetTenant("acme", "tenant-a"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetTenant("Globex Corp.", "tenant-b"); err != nil {
		t.Fatal(err)
	}
	if shard, err := r.ShardOf("acme"); err != nil || shard != "tenant-a" {
		t.Errorf("ShardOf(acme) = %q, %v; want tenant-a", shard, err)
	}
	if shard, err := r.ShardOf("Globex Corp."); err != nil || shard != "tenant-b" {
		t.Errorf("ShardOf(Globex Corp.) = %q, %v; want tenant-b", shard, err)
	}
	if err := r.SetTenant("acme", "default"); err != nil {
		t.Fatal(err)
	}
	if shard, _ := r.ShardOf("acme"); shard != "default" {
		t.Errorf("after reassigning, ShardOf(acme) = %q, want default", shard)
	}

	shard, err := r.ShardOf("initech")
	if !errors.Is(err, sharding.ErrUnknownTenant) || !strings.Contains(err.Error(), `"initech"`) || shard != "" {
		t.Errorf("ShardOf(initech) = %q, %v; want ErrUnknownTenant naming it", shard, err)
	}
	err = r.SetTenant("initech", "tenant-z")
	if !errors.Is(err, sharding.ErrUnknownShard) || !strings.Contains(err.Error(), `"tenant-z"`) {
		t.Errorf("SetTenant to a missing shard = %v, want ErrUnknownShard naming it", err)
	}
	var inv *store.InvalidError
	if err := r.SetTenant("a\x00b", "default"); !errors.As(err, &inv) || inv.Field != "tenant" {
		t.Errorf("SetTenant with a control character = %v, want *store.InvalidError for tenant", err)
	}
	if err := r.SetTenant("acme", "a.b"); !errors.As(err, &inv) || inv.Field != "shard" {
		t.Errorf("SetTenant to a bad shard = %v, want *store.InvalidError for shard", err)
	}
	if _, err := r.ShardOf(""); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("ShardOf(\"\") = %v, want store.ErrInvalid", err)
	}
}

func TestRegistryLists(t *testing.T) {
	r, _ := newRegistry(t, "visits/tenant-b", "visits/default", "billing/tenant-a", "visits/tenant-a")
	if got, want := r.Contexts(), []string{"billing", "visits"}; !slices.Equal(got, want) {
		t.Errorf("Contexts() = %q, want %q", got, want)
	}
	if got, want := r.Shards("visits"), []string{"default", "tenant-a", "tenant-b"}; !slices.Equal(got, want) {
		t.Errorf("Shards(visits) = %q, want %q", got, want)
	}
	if got := r.Shards("orders"); len(got) != 0 {
		t.Errorf("Shards(orders) = %q, want none", got)
	}
	if got := sharding.NewRegistry().Contexts(); len(got) != 0 {
		t.Errorf("empty registry: Contexts() = %q", got)
	}
}

func TestRegistryClose(t *testing.T) {
	r, stores := newRegistry(t, "visits/default", "visits/tenant-a", "billing/default")
	boom := errors.New("boom")
	stores["visits/tenant-a"].closeErr = boom
	stores["billing/default"].closeErr = errors.New("bang")

	err := r.Close()
	if !errors.Is(err, boom) {
		t.Fatalf("Close() = %v, want the stores' errors joined", err)
	}
	for _, want := range []string{"visits/tenant-a", "boom", "billing/default", "bang"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Close() = %q, does not name %s", err, want)
		}
	}
	for name, f := range stores {
		if n := f.closes.Load(); n != 1 {
			t.Errorf("%s closed %d times, want 1", name, n)
		}
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	for name, f := range stores {
		if n := f.closes.Load(); n != 1 {
			t.Errorf("after a second Close, %s closed %d times, want 1", name, n)
		}
	}
	if _, err := r.Store("visits", "default"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Store after Close = %v, want store.ErrClosed", err)
	}
	if err := r.Add(&fakeStore{contextName: "orders", shard: "default"}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Add after Close = %v, want store.ErrClosed", err)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r, _ := newRegistry(t, "visits/default")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			shard := fmt.Sprintf("shard-%d", i)
			if err := r.Add(&fakeStore{contextName: "visits", shard: shard}); err != nil {
				t.Error(err)
				return
			}
			if err := r.SetTenant(fmt.Sprintf("tenant %d", i), shard); err != nil {
				t.Error(err)
			}
			for range 100 {
				if _, err := r.For(sharding.NewContext(context.Background(), shard), "visits"); err != nil {
					t.Error(err)
					return
				}
				_, _ = r.ShardOf("tenant 0")
				_ = r.Shards("visits")
				_ = r.Contexts()
			}
		})
	}
	wg.Wait()
	if got := len(r.Shards("visits")); got != 9 {
		t.Errorf("after concurrent adds: %d shards, want 9", got)
	}
}
