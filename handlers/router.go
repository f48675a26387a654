package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/backoff"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/sharding"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// DefaultMaxAttempts is how often a failing message is tried before it is
// dead-lettered, unless RouterConfig.MaxAttempts or Group.MaxAttempts say
// otherwise.
const DefaultMaxAttempts = 5

// Defaults is the standard chain, outermost first:
//
//	Recover → Correlate → Shard(reg) → Inbox
//
// Every attempt runs the whole chain, in the consumer span the Router
// opens for it and a fresh transaction. With reg nil, Shard and Inbox are left out: for
// handlers that keep no state in a store. Retrying and dead-lettering are
// the Router's (see the package doc's failure policy).
func Defaults(reg *sharding.Registry) []Middleware {
	mws := []Middleware{Recover(), Correlate()}
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
	// Stores, when set, lets each group handle the messages of a partition
	// that wait together in one transaction of their shard's store in
	// Stores, committed together, then acknowledged (see the package doc's
	// "Batches"; a Group may opt out). Set it to the registry the chain's
	// Shard and Inbox use; the Runner does when it builds the chain
	// (Defaults). Nil: a transaction per message.
	Stores *sharding.Registry
	// MaxBatch bounds a batch (default MaxInFlight): fewer, when fewer
	// wait.
	MaxBatch int
	// Turns is how many partitions of a group that batches may run their
	// batches at once in this process before the others wait (default
	// runtime.GOMAXPROCS, at least 2; negative: none waits): a partition
	// waits for a turn at most TurnWait (default
	// consumer.DefaultTurnWait), its batch growing meanwhile. Under load
	// the shard databases so commit fewer, larger transactions. A group
	// whose handlers wait on something slow (a call out, not in
	// AfterCommit) holds its turns meanwhile: give it Turns -1, or more.
	// See consumer.Config.Turns.
	Turns    int
	TurnWait time.Duration
	// MaxAttempts is how often a message that fails is tried before it is
	// dead-lettered (default DefaultMaxAttempts); a group's own
	// MaxAttempts wins.
	MaxAttempts int
	// Backoff shapes the waits before a failed message is tried again
	// (zero fields: backoff's defaults, 50ms doubling up to 5s, ±20%). Its
	// partition's later messages wait meanwhile.
	Backoff backoff.Config
	// DeadLetters gives each source context's dead-letter queue (nil: the
	// queues of package bus/deadletter on the router's connection).
	DeadLetters DeadLetterQueues
	// Logger receives every retry, wait, dead letter and refusal (nil
	// discards them), logged with the attempt's span in ctx.
	Logger *slog.Logger
	// TracerProvider receives a consumer span per attempt; MeterProvider
	// the handling durations, retries, dead letters, parked messages,
	// inbox duplicates, partitions owned and the age of the oldest
	// unsettled message (nil: the global providers). The package doc's
	// "Telemetry" lists them.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Validate reports every problem with c at once.
func (c RouterConfig) Validate() error {
	var errs []error
	if c.AckWait < 0 || c.DrainTimeout < 0 || c.TurnWait < 0 {
		errs = append(errs, fmt.Errorf("handlers: negative duration in RouterConfig (AckWait %v, DrainTimeout %v, TurnWait %v)", c.AckWait, c.DrainTimeout, c.TurnWait))
	}
	for i, mw := range c.Middleware {
		if mw == nil {
			errs = append(errs, fmt.Errorf("handlers: RouterConfig.Middleware[%d] is nil", i))
		}
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("handlers: RouterConfig.MaxInFlight %d is negative", c.MaxInFlight))
	}
	if c.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("handlers: RouterConfig.MaxBatch %d is negative", c.MaxBatch))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("handlers: RouterConfig.MaxAttempts %d is negative", c.MaxAttempts))
	}
	if err := c.Backoff.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("handlers: RouterConfig.Backoff: %w", err))
	}
	return errors.Join(errs...)
}

// Router runs consumer groups: for each, one durable JetStream consumer per
// partition of its source context, the chain around its handlers, and the
// failure policy: it alone decides whether a message is acknowledged,
// tried again, parked behind its stream's dead letter or dead-lettered.
type Router struct {
	conn   *bus.Conn
	cfg    RouterConfig
	mu     sync.Mutex
	groups []*Group
	runs   []*groupRun
	ready  chan struct{}
	once   sync.Once
	tel    *instruments
}

// NewRouter returns a router consuming through conn.
func NewRouter(conn *bus.Conn, cfg RouterConfig) (*Router, error) {
	if conn == nil {
		return nil, errors.New("handlers: NewRouter: nil connection")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.DeadLetters == nil {
		cfg.DeadLetters = &deadLetters{conn: conn}
	}
	return &Router{conn: conn, cfg: cfg, ready: make(chan struct{}), tel: newInstruments(cfg.TracerProvider, cfg.MeterProvider)}, nil
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
	runs := make([]*groupRun, 0, len(groups))
	for _, g := range groups {
		gr, err := r.start(ctx, g)
		if err != nil {
			return err
		}
		runs = append(runs, gr)
	}
	r.mu.Lock()
	r.runs = runs
	r.mu.Unlock()
	defer r.tel.observe(runs)()
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for i, gr := range runs {
		if r.batch(gr.g) > 1 {
			wg.Go(func() { errs[i] = gr.k.RunBatch(ctx, gr.deliverBatch) })
		} else {
			wg.Go(func() { errs[i] = gr.k.Run(ctx, gr.deliver) })
		}
	}
	r.once.Do(func() { close(r.ready) })
	wg.Wait()
	return errors.Join(errs...)
}

// batch is how many messages g handles in one transaction at most: 1
// without Stores or for a group that opts out.
func (r *Router) batch(g *Group) int {
	if r.cfg.Stores == nil || g.Unbatched {
		return 1
	}
	return cmp.Or(r.cfg.MaxBatch, r.cfg.MaxInFlight, consumer.DefaultMaxInFlight)
}

// turns is how many of g's partitions may run their batches at once
// before the others wait (consumer.Config.Turns): 0, none waits, for a
// group that does not batch.
func (r *Router) turns(g *Group) int {
	if r.batch(g) == 1 || r.cfg.Turns < 0 {
		return 0
	}
	return cmp.Or(r.cfg.Turns, max(runtime.GOMAXPROCS(0), 2))
}

// start provisions g's dead-letter queue and consumers.
func (r *Router) start(ctx context.Context, g *Group) (*groupRun, error) {
	if err := r.conn.Check(ctx, "group "+g.Name, Permissions(g)); err != nil {
		return nil, err
	}
	q, err := r.cfg.DeadLetters.Queue(ctx, g.source())
	if err != nil {
		return nil, err
	}
	k, err := consumer.Provision(ctx, r.conn, consumer.Config{
		Source:       g.source(),
		Group:        g.Name,
		Types:        g.Types(),
		AckWait:      r.cfg.AckWait,
		DrainTimeout: r.cfg.DrainTimeout,
		MaxInFlight:  r.cfg.MaxInFlight,
		MaxBatch:     r.batch(g),
		Turns:        r.turns(g),
		TurnWait:     r.cfg.TurnWait,
		Logger:       r.cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	attempts := r.cfg.MaxAttempts
	if g.MaxAttempts > 0 {
		attempts = g.MaxAttempts
	}
	return &groupRun{r: r, g: g, k: k, q: q, h: Chain(Chain(g.dispatch, g.Middleware...), r.cfg.Middleware...),
		log: r.cfg.Logger.With("group", g.Name), attempts: attempts,
		parking: newParking(k.Partitions()), blocked: newBlocks(), spanOpts: processOptions(g.Name)}, nil
}

// RouterStatus is what a Router reports: per group, the partitions it
// handles and those that wait for infrastructure to come back.
type RouterStatus struct {
	Groups map[string]GroupStatus
}

// GroupStatus is one group's state in this process.
type GroupStatus struct {
	Context, Source string
	Owned           []int           // partitions this process handles (consumer.Group.OwnedPartitions)
	Blocked         map[int]Blocked // by partition
}

// Status reports the groups' partitions: owned, and blocked.
func (r *Router) Status() RouterStatus {
	r.mu.Lock()
	runs := r.runs
	r.mu.Unlock()
	st := RouterStatus{Groups: make(map[string]GroupStatus, len(runs))}
	for _, gr := range runs {
		st.Groups[gr.g.Name] = GroupStatus{Context: gr.g.Context, Source: gr.g.source(),
			Owned: gr.k.OwnedPartitions(), Blocked: gr.blocked.list()}
	}
	return st
}
