package sharding

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/switchyard-go/switchyard/store"
)

// Registry maps (bounded context, shard) to the store holding it, and tenants
// to shards. It is safe for concurrent use. Build one with [NewRegistry] and
// [Registry.Add], or from configuration with stores.Open.
//
// A lookup never falls back to another shard: a shard the context has no
// store for is an *UnknownShardError.
type Registry struct {
	mu      sync.RWMutex
	stores  map[string]map[string]store.Store // context -> shard -> store
	tenants map[string]string                 // tenant -> shard
	closed  bool
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		stores:  make(map[string]map[string]store.Store),
		tenants: make(map[string]string),
	}
}

// Add registers s under its Context() and Shard(). From then on the registry
// owns s: [Registry.Close] closes it. When Add fails, s stays the caller's.
// Adding a second store for the same (context, shard) is an error.
func (r *Registry) Add(s store.Store) error {
	if s == nil {
		return errors.New("sharding: add: nil store")
	}
	c, sh := s.Context(), s.Shard()
	if err := store.CheckName("context", c); err != nil {
		return fmt.Errorf("sharding: add: %w", err)
	}
	if err := CheckName(sh); err != nil {
		return fmt.Errorf("sharding: add: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("sharding: add %s/%s: registry: %w", c, sh, store.ErrClosed)
	}
	shards := r.stores[c]
	if shards == nil {
		shards = make(map[string]store.Store)
		r.stores[c] = shards
	}
	if _, dup := shards[sh]; dup {
		return fmt.Errorf("sharding: add: context %q already has a store for shard %q", c, sh)
	}
	shards[sh] = s
	return nil
}

// Store returns the store of shard in the bounded context contextName. A
// bad name is a *store.InvalidError; a context the registry does not know
// is ErrUnknownContext; a shard the context has no store for is an
// *UnknownShardError. After Close it is store.ErrClosed.
func (r *Registry) Store(contextName, shard string) (store.Store, error) {
	if err := store.CheckName("context", contextName); err != nil {
		return nil, err
	}
	if err := CheckName(shard); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return nil, fmt.Errorf("sharding: store %s/%s: registry: %w", contextName, shard, store.ErrClosed)
	}
	shards, ok := r.stores[contextName]
	if !ok {
		return nil, fmt.Errorf("sharding: %w %q", ErrUnknownContext, contextName)
	}
	s, ok := shards[shard]
	if !ok {
		return nil, &UnknownShardError{Context: contextName, Shard: shard}
	}
	return s, nil
}

// For returns the store of the bounded context contextName for the shard
// ctx carries (see [NewContext]). A ctx without a shard is ErrNoShard;
// otherwise the errors are those of [Registry.Store].
func (r *Registry) For(ctx context.Context, contextName string) (store.Store, error) {
	shard, ok := FromContext(ctx)
	if !ok {
		return nil, fmt.Errorf("sharding: store of context %q: %w", contextName, ErrNoShard)
	}
	return r.Store(contextName, shard)
}

// SetTenant assigns tenant to shard, replacing any earlier assignment. The
// shard must have a store in at least one context; otherwise the error is
// ErrUnknownShard. A bad name is a *store.InvalidError.
func (r *Registry) SetTenant(tenant, shard string) error {
	if err := CheckTenant(tenant); err != nil {
		return err
	}
	if err := CheckName(shard); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.hasShard(shard) {
		return fmt.Errorf("sharding: set tenant %q: no context has shard %q: %w", tenant, shard, ErrUnknownShard)
	}
	r.tenants[tenant] = shard
	return nil
}

// hasShard reports whether any context has a store for shard. The caller
// holds r.mu.
func (r *Registry) hasShard(shard string) bool {
	for _, shards := range r.stores {
		if _, ok := shards[shard]; ok {
			return true
		}
	}
	return false
}

// ShardOf returns the shard assigned to tenant. A tenant without one is
// ErrUnknownTenant; there is no default.
func (r *Registry) ShardOf(tenant string) (string, error) {
	if err := CheckTenant(tenant); err != nil {
		return "", err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	shard, ok := r.tenants[tenant]
	if !ok {
		return "", fmt.Errorf("sharding: %w %q", ErrUnknownTenant, tenant)
	}
	return shard, nil
}

// Contexts returns the bounded contexts that have a store, sorted.
func (r *Registry) Contexts() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.stores))
}

// Shards returns the shards the bounded context contextName has a store
// for, sorted; none for a context the registry does not know.
func (r *Registry) Shards(contextName string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.stores[contextName]))
}

// Close closes every store and returns their errors joined, each naming its
// store. Afterwards lookups return store.ErrClosed; closing again does
// nothing.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for _, c := range slices.Sorted(maps.Keys(r.stores)) {
		shards := r.stores[c]
		for _, sh := range slices.Sorted(maps.Keys(shards)) {
			if err := shards[sh].Close(); err != nil {
				errs = append(errs, fmt.Errorf("sharding: close %s/%s: %w", c, sh, err))
			}
		}
	}
	return errors.Join(errs...)
}
