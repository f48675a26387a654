// Package opentx marks a context as carrying a store's open transaction,
// so that a write to another store with it can be refused: no transaction
// spans two databases. The store backends mark the contexts they put a
// transaction in (internal/backend.WithOpen); store.Detach removes the
// mark.
package opentx

import "context"

type key struct{}

// owner wraps the store whose transaction is open; nil when detached.
type owner struct{ store any }

// With returns ctx marked as carrying store's open transaction.
func With(ctx context.Context, store any) context.Context {
	return context.WithValue(ctx, key{}, owner{store})
}

// Owner returns the store whose open transaction ctx carries.
func Owner(ctx context.Context) (any, bool) {
	o, _ := ctx.Value(key{}).(owner)
	return o.store, o.store != nil
}

// Without returns ctx without the mark of an open transaction.
func Without(ctx context.Context) context.Context {
	if _, ok := Owner(ctx); !ok {
		return ctx
	}
	return context.WithValue(ctx, key{}, owner{})
}
