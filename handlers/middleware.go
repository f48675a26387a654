package handlers

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/backoff"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
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
			return st.Transact(ctx, func(ctx context.Context) error { return next(ctx, m) })
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
			first, err := in.MarkHandled(ctx, m.Group, m.Event.ID)
			if err != nil || !first {
				return err
			}
			return next(ctx, m)
		}
	}
}

// Timeout gives each attempt at most d; an attempt that runs out fails
// with context.DeadlineExceeded (and counts as a failed attempt).
func Timeout(d time.Duration) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, m)
		}
	}
}

// RetryConfig configures Retry. The zero value works.
type RetryConfig struct {
	// Attempts is how many times a failing message is tried in process
	// (default DefaultMaxAttempts). Transient errors (IsTransient) are
	// retried for as long as they last and do not count; permanent ones
	// (IsPermanent) are not retried.
	Attempts int
	// Backoff shapes the waits between tries (zero fields: backoff's
	// defaults, 50ms doubling up to 5s, ±20%).
	Backoff backoff.Config
}

// Retry tries a failing message again in process, with exponential
// backoff, while the partition waits (order is kept). The error it gives
// up with is an *AttemptsError counting the attempts, Message.Attempt
// included, for DeadLetter to decide on. It stops when ctx ends.
func Retry(cfg RetryConfig) Middleware {
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultMaxAttempts
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			first := m.Attempt
			counted := 0
			for try := 0; ; try++ {
				err := next(ctx, m)
				if err == nil || IsPermanent(err) {
					return err
				}
				if !IsTransient(err) {
					counted++
					if counted >= cfg.Attempts {
						return &AttemptsError{Attempts: m.Attempt, Err: err}
					}
				}
				t := time.NewTimer(cfg.Backoff.Delay(try + 1))
				select {
				case <-ctx.Done():
					t.Stop()
					return &AttemptsError{Attempts: m.Attempt, Err: err}
				case <-t.C:
				}
				m.Attempt = first + try + 1
			}
		}
	}
}

// Attempts is how many times m has been tried when err ends an attempt:
// the count an *AttemptsError in err carries, or m.Attempt.
func Attempts(m Message, err error) int {
	var ae *AttemptsError
	if errors.As(err, &ae) && ae.Attempts > m.Attempt {
		return ae.Attempts
	}
	return m.Attempt
}

// ErrDeadLettered: the chain gave up on a message and stored it in its
// context's dead letters; the router settles it for good. The error is a
// *DeadLetteredError carrying the cause.
var ErrDeadLettered = errors.New("dead-lettered")

// DeadLetteredError is a message given up on: after how many attempts, and
// why.
type DeadLetteredError struct {
	Attempts int
	Err      error
}

func (e *DeadLetteredError) Error() string {
	return fmt.Sprintf("dead-lettered after %d attempts: %v", e.Attempts, e.Err)
}

// Unwrap returns the cause.
func (e *DeadLetteredError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrDeadLettered) true.
func (e *DeadLetteredError) Is(target error) bool { return target == ErrDeadLettered }

// DeadLetter gives up on a message once an attempt fails with a permanent
// error or the attempts (see Attempts) reach maxAttempts: it stores the
// message in the dead letters of its source context (package
// bus/deadletter: original metadata, data, subject, the error and the
// attempt count) and returns a *DeadLetteredError. Transient errors are
// never dead-lettered, and neither is anything while ctx is ending (a
// draining consumer).
//
// Until then the error goes back to the router, which tries the message
// again after a backoff; meanwhile the message's partition waits.
func DeadLetter(conn *bus.Conn, maxAttempts int) Middleware {
	dl := &deadLetters{conn: conn}
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			err := next(ctx, m)
			if err == nil || ctx.Err() != nil || IsTransient(err) || m.delivery == nil {
				return err
			}
			n := Attempts(m, err)
			if !IsPermanent(err) && n < maxAttempts {
				return err
			}
			if perr := dl.put(ctx, m, err, n); perr != nil {
				return Transient(fmt.Errorf("%w (and dead-lettering failed: %w)", err, perr))
			}
			return &DeadLetteredError{Attempts: n, Err: err}
		}
	}
}

// deadLetters puts messages in their source context's dead letters,
// provisioning each context's queue once.
type deadLetters struct {
	conn   *bus.Conn
	mu     sync.Mutex
	queues map[string]*deadletter.Queue // by source context
}

// queue provisions the dead-letter queue of the named context, or returns
// the one provisioned before. Provisioning is idempotent: two callers that
// race both provision, and neither waits for the other's round trip.
func (d *deadLetters) queue(ctx context.Context, contextName string) (*deadletter.Queue, error) {
	d.mu.Lock()
	q, ok := d.queues[contextName]
	d.mu.Unlock()
	if ok {
		return q, nil
	}
	q, err := deadletter.Provision(ctx, d.conn, contextName)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queues == nil {
		d.queues = make(map[string]*deadletter.Queue)
	}
	d.queues[contextName] = q
	return q, nil
}

// put stores m in its source context's dead letters.
func (d *deadLetters) put(ctx context.Context, m Message, cause error, attempts int) error {
	q, err := d.queue(ctx, m.Source)
	if err != nil {
		return err
	}
	return q.Put(ctx, m.delivery, m.Group, cause, attempts)
}
