package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/backoff"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/sharding"
)

// DefaultMaxAttempts is how often Defaults lets a failing message be tried
// before it is dead-lettered.
const DefaultMaxAttempts = 5

// Defaults is the standard chain, outermost first:
//
//	Trace → DeadLetter(conn, DefaultMaxAttempts) → Retry → Recover → Correlate → Shard(reg) → Inbox
//
// Retry sits outside Shard so that every attempt gets a fresh transaction,
// and Recover inside Retry so that a panic is retried like an error. With
// reg nil, Shard and Inbox are left out: for handlers that keep no state
// in a store.
func Defaults(conn *bus.Conn, reg *sharding.Registry) []Middleware {
	mws := []Middleware{
		Trace(nil),
		DeadLetter(conn, DefaultMaxAttempts),
		Retry(RetryConfig{}),
		Recover(),
		Correlate(),
	}
	if reg != nil {
		mws = append(mws, Shard(reg), Inbox())
	}
	return mws
}

// RouterConfig configures a Router. The zero value works.
type RouterConfig struct {
	// Middleware is the chain around every group's handlers, the first
	// listed outermost; a group's own Middleware runs inside it. Nil
	// means no middleware at all: use Defaults.
	Middleware []Middleware
	// AckWait, DrainTimeout and MaxInFlight are the consumers' (see
	// consumer.Config): how long a silent replica keeps its partitions
	// (default 30s), how long in-flight work may go on after Run's ctx
	// ends (default 30s), and how many messages of one partition a group
	// may hold unacknowledged at once (default
	// consumer.DefaultMaxInFlight), handled one at a time, in stream order.
	AckWait      time.Duration
	DrainTimeout time.Duration
	MaxInFlight  int
	// Backoff shapes the delay before a message whose chain failed is
	// tried again (zero fields: backoff's defaults, 50ms doubling up to
	// 5s, ±20%). Its partition's later messages wait meanwhile.
	Backoff backoff.Config
	// Logger receives failures, dead letters and refusals (nil discards).
	Logger *slog.Logger
}

// Router runs consumer groups: for each, one durable JetStream consumer per
// partition of its source context, the chain around its handlers, and
// settlement of every message (ack, try again after a backoff, or dead
// letter).
type Router struct {
	conn   *bus.Conn
	cfg    RouterConfig
	dead   *deadLetters
	mu     sync.Mutex
	groups []*Group
	ready  chan struct{}
	once   sync.Once
}

// NewRouter returns a router consuming through conn.
func NewRouter(conn *bus.Conn, cfg RouterConfig) (*Router, error) {
	if conn == nil {
		return nil, errors.New("handlers: NewRouter: nil connection")
	}
	var errs []error
	if cfg.AckWait < 0 || cfg.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("handlers: negative duration in RouterConfig (AckWait %v, DrainTimeout %v)", cfg.AckWait, cfg.DrainTimeout))
	}
	for i, mw := range cfg.Middleware {
		if mw == nil {
			errs = append(errs, fmt.Errorf("handlers: RouterConfig.Middleware[%d] is nil", i))
		}
	}
	if cfg.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("handlers: RouterConfig.MaxInFlight %d is negative", cfg.MaxInFlight))
	}
	if err := cfg.Backoff.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("handlers: RouterConfig.Backoff: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Router{conn: conn, cfg: cfg, dead: &deadLetters{conn: conn}, ready: make(chan struct{})}, nil
}

// Add adds groups to r, reporting every problem with them (bad names,
// duplicate handlers, a name used twice). Add before Run.
func (r *Router) Add(groups ...*Group) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, g := range groups {
		if err := g.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, have := range r.groups {
			if have.Name == g.Name {
				errs = append(errs, fmt.Errorf("handlers: group %q added twice", g.Name))
			}
		}
		for i, mw := range g.Middleware {
			if mw == nil {
				errs = append(errs, fmt.Errorf("handlers: group %q: Middleware[%d] is nil", g.Name, i))
			}
		}
		if len(errs) == 0 {
			r.groups = append(r.groups, g)
		}
	}
	return errors.Join(errs...)
}

// Ready is closed once Run has provisioned every group's consumers and
// dead-letter stream and is consuming.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Run provisions the groups' consumers and runs them until ctx ends, then
// drains: it stops fetching, lets in-flight messages finish and settle, and
// returns. A provisioning failure (NATS down, a stream conflict) is
// returned at once.
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	groups := append([]*Group(nil), r.groups...)
	r.mu.Unlock()
	if len(groups) == 0 {
		return errors.New("handlers: Run: no groups added")
	}
	type job struct {
		g *Group
		k *consumer.Group
		h Handler
	}
	jobs := make([]job, 0, len(groups))
	for _, g := range groups {
		if _, err := r.dead.queue(ctx, g.source()); err != nil {
			return err
		}
		k, err := consumer.Provision(ctx, r.conn, consumer.Config{
			Source:       g.source(),
			Group:        g.Name,
			Types:        g.Types(),
			AckWait:      r.cfg.AckWait,
			DrainTimeout: r.cfg.DrainTimeout,
			MaxInFlight:  r.cfg.MaxInFlight,
			Logger:       r.cfg.Logger,
		})
		if err != nil {
			return err
		}
		h := Chain(Chain(g.dispatch, g.Middleware...), r.cfg.Middleware...)
		jobs = append(jobs, job{g, k, h})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Go(func() { errs[i] = j.k.Run(ctx, r.settle(j.g, j.h)) })
	}
	r.once.Do(func() { close(r.ready) })
	wg.Wait()
	return errors.Join(errs...)
}

// settle runs h on each delivery of g and settles it.
func (r *Router) settle(g *Group, h Handler) func(ctx context.Context, d *consumer.Delivery) {
	log := r.cfg.Logger.With("group", g.Name)
	return func(ctx context.Context, d *consumer.Delivery) {
		m := Message{
			Event:     d.Event,
			Source:    d.Address.Context,
			Shard:     d.Address.Shard,
			Partition: d.Address.Partition,
			Group:     g.Name,
			Context:   g.Context,
			Attempt:   max(d.Delivered, 1),
			Subject:   d.Subject,
			Seq:       d.Seq,
			delivery:  d,
		}
		if m.Source == "" {
			m.Source = g.source()
		}
		if d.Err != nil {
			// Refused before any handler runs: nothing of it is trusted.
			err := &SecurityError{Subject: d.Subject, Reason: "headers disagree with the subject or do not decode", Err: d.Err}
			if perr := r.dead.put(ctx, m, err, m.Attempt); perr != nil {
				log.ErrorContext(ctx, "handlers: refused message not dead-lettered; trying again", "subject", d.Subject, "seq", d.Seq, "error", err, "dead_letter_error", perr)
				d.RetryAfter(r.cfg.Backoff.Delay(m.Attempt))
				return
			}
			log.ErrorContext(ctx, "handlers: message refused and dead-lettered", "subject", d.Subject, "seq", d.Seq, "error", err)
			_ = d.Term(err.Error())
			return
		}
		err := r.run(ctx, h, m)
		switch {
		case err == nil:
			_ = d.Ack()
		case errors.Is(err, ErrDeadLettered):
			log.ErrorContext(ctx, "handlers: message dead-lettered", "subject", d.Subject, "seq", d.Seq, "event_id", d.Event.ID, "error", err)
			_ = d.Term(err.Error())
		default:
			delay := r.cfg.Backoff.Delay(Attempts(m, err))
			log.WarnContext(ctx, "handlers: message failed; trying again", "subject", d.Subject, "seq", d.Seq, "event_id", d.Event.ID, "attempt", Attempts(m, err), "retry_in", delay, "error", err)
			d.RetryAfter(delay)
		}
	}
}

// run runs h, turning a panic that escaped the chain into an error.
func (r *Router) run(ctx context.Context, h Handler, m Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handlers: panic outside Recover: %v", v)
		}
	}()
	return h(ctx, m)
}
