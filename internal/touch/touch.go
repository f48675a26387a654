// Package touch carries, in a context, what is told of every store a
// block of code reads and writes: the backends report to it, and package
// touchtest records and asserts on it.
package touch

import "context"

// Sink receives what the code under a ctx touched: the store (context and
// shard), what was done (op), whether it wrote, and whether it read the
// store's replica.
type Sink interface {
	Touched(contextName, shard, op string, write, replica bool)
}

type key struct{}

// With returns ctx reporting to s.
func With(ctx context.Context, s Sink) context.Context { return context.WithValue(ctx, key{}, s) }

// On says whether ctx has a Sink: a caller whose op costs something to
// name asks first.
func On(ctx context.Context) bool {
	_, ok := ctx.Value(key{}).(Sink)
	return ok
}

// Note reports a touch to ctx's Sink, if it has one.
func Note(ctx context.Context, contextName, shard, op string, write, replica bool) {
	if s, ok := ctx.Value(key{}).(Sink); ok {
		s.Touched(contextName, shard, op, write, replica)
	}
}
