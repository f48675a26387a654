package handlers

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
)

// Recover turns a panic in the rest of the chain into an error carrying
// the panic value and the stack.
func Recover() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = &PanicError{Value: r, Stack: debug.Stack()}
				}
			}()
			return next(ctx, m)
		}
	}
}

// PanicError is a handler's panic, recovered.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v\n%s", e.Value, e.Stack) }

// Correlate puts the message's metadata into ctx (correlation.NewContext),
// so that every event appended while handling it gets correlation_id = the
// message's, causation_id = its event_id, its tenant and its application
// metadata (Rails Event Store's CorrelatedHandler).
func Correlate() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			return next(correlation.NewContext(ctx, m.Event.Metadata), m)
		}
	}
}

type storeKey struct{}

// Store returns the store the Shard middleware opened the handler's
// transaction on: appending to it with the handler's ctx joins that
// transaction, and so do the backend's Tx(ctx) for the application's own
// SQL (postgres.Store.Tx, sqlite.Store.Tx).
func Store(ctx context.Context) (store.Store, bool) {
	st, ok := ctx.Value(storeKey{}).(store.Store)
	return st, ok
}

// Shard opens a transaction on the store of the group's context for the
// message's shard and runs the rest of the chain in it: committed when it
// returns nil, rolled back otherwise (Rails Event Store's ShardedHandler).
// ctx carries the shard (sharding.FromContext) and the store (Store).
//
// The shard comes from the subject. A message whose shard header says
// otherwise, or whose shard the group's context has no store for, is
// refused with a *SecurityError before anything is touched.
func Shard(reg *sharding.Registry) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			if h := m.Event.Metadata[string(correlation.Shard)]; h != m.Shard {
				return &SecurityError{Subject: m.Subject, Reason: fmt.Sprintf("shard header %q differs from the subject's shard %q", h, m.Shard)}
			}
			st, err := reg.Store(m.Context, m.Shard)
			if err != nil {
				if errors.Is(err, sharding.ErrUnknownShard) {
					return &SecurityError{Subject: m.Subject, Reason: fmt.Sprintf("shard %q is not configured for context %q", m.Shard, m.Context), Err: err}
				}
				return err
			}
			ctx = sharding.NewContext(ctx, m.Shard)
			ctx = context.WithValue(ctx, storeKey{}, st)
			if b, ok := ctx.Value(batchKey{}).(*batch); ok {
				if b.st != st {
					return errNotBatchable
				}
				return next(ctx, m) // the Router's batch transaction on st (see "Batches")
			}
			ctx, after := withAfterCommit(ctx)
			if err := st.Transact(ctx, func(ctx context.Context) error { return next(ctx, m) }); err != nil {
				return err
			}
			after.run()
			return nil
		}
	}
}

// ErrNoStore: a middleware that needs the handler's store (Inbox) runs
// without Shard before it.
var ErrNoStore = errors.New("handlers: no store in ctx: put Shard before Inbox in the chain")

// Inbox records (group, event_id) in the handler's transaction and skips a
// message the group has already handled: its effects, its inbox record and
// the events it appends commit together, so a redelivery (or the same event
// published again under another message id) has no second effect. It needs
// Shard before it.
func Inbox() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			st, ok := Store(ctx)
			if !ok {
				return Permanent(ErrNoStore)
			}
			in, ok := st.(store.Inbox)
			if !ok {
				return Permanent(fmt.Errorf("handlers: store %T keeps no inbox", st))
			}
			if b, ok := batchOf(ctx, st); ok {
				first := b.first[m.Event.ID] // recorded for the batch
				delete(b.first, m.Event.ID)  // an event delivered twice in one batch is first once
				if !first {
					noteDuplicate(ctx, m)
					return nil
				}
				return next(ctx, m)
			}
			first, err := in.MarkHandled(ctx, m.Group, m.Event.ID)
			if err != nil || !first {
				if err == nil {
					noteDuplicate(ctx, m) // counted by the Router
				}
				return err
			}
			return next(ctx, m)
		}
	}
}

// Timeout gives each attempt at most d; an attempt that runs out fails
// with context.DeadlineExceeded, which counts as a failed attempt.
func Timeout(d time.Duration) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, m)
		}
	}
}
