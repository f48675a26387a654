package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/status"
	"github.com/switchyard-go/switchyard/store"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// RunnerConfig configures a Runner. The zero value works.
type RunnerConfig struct {
	// NoRelays leaves relaying to other processes. By default a Runner
	// runs a relay for every store of the registry; the stores' leases let
	// one process at a time lead each, the others stand by.
	NoRelays bool
	// Relay configures every relay.
	Relay bus.RelayConfig
	// Router configures the handler groups' router. Its Middleware nil
	// means Defaults(reg).
	Router RouterConfig
	// Replica names this process in the replicas' records that package
	// status reads (default status.ReplicaID(): host name and pid).
	Replica string
	// Logger receives the runner's log lines (nil discards them).
	Logger *slog.Logger
	// TracerProvider and MeterProvider go to the router and the relays
	// where their own configuration names none (nil: the global
	// providers). The stores take theirs when they are opened.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Runner is a process's share of Switchyard: a relay for each (context,
// shard) store it has, and the handler groups added to it.
type Runner struct {
	conn    *bus.Conn
	reg     *sharding.Registry
	cfg     RunnerConfig
	router  *Router
	relays  map[string]*bus.Relay // by "context/shard"
	ready   chan struct{}
	started time.Time
	groups  int
	mu      sync.Mutex
	once    sync.Once
}

// NewRunner returns a runner over the stores of reg, publishing and
// consuming through conn.
func NewRunner(conn *bus.Conn, reg *sharding.Registry, cfg RunnerConfig) (*Runner, error) {
	if conn == nil || reg == nil {
		return nil, errors.New("handlers: NewRunner: nil connection or registry")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Replica == "" {
		cfg.Replica = status.ReplicaID()
	}
	if cfg.Router.Logger == nil {
		cfg.Router.Logger = cfg.Logger
	}
	if cfg.Relay.Logger == nil {
		cfg.Relay.Logger = cfg.Logger
	}
	cfg.Router.TracerProvider = cmp.Or(cfg.Router.TracerProvider, cfg.TracerProvider)
	cfg.Router.MeterProvider = cmp.Or(cfg.Router.MeterProvider, cfg.MeterProvider)
	cfg.Relay.TracerProvider = cmp.Or(cfg.Relay.TracerProvider, cfg.TracerProvider)
	cfg.Relay.MeterProvider = cmp.Or(cfg.Relay.MeterProvider, cfg.MeterProvider)
	if cfg.Router.Middleware == nil {
		cfg.Router.Middleware = Defaults(reg)
		cfg.Router.Stores = cmp.Or(cfg.Router.Stores, reg)
	}
	router, err := NewRouter(conn, cfg.Router)
	if err != nil {
		return nil, err
	}
	r := &Runner{conn: conn, reg: reg, cfg: cfg, router: router, relays: map[string]*bus.Relay{}, ready: make(chan struct{}), started: time.Now().UTC()}
	if !cfg.NoRelays {
		var errs []error
		for _, c := range reg.Contexts() {
			for _, sh := range reg.Shards(c) {
				st, err := reg.Store(c, sh)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				ob, ok := st.(store.Outbox)
				if !ok {
					errs = append(errs, fmt.Errorf("handlers: store %s/%s (%T) cannot be relayed: no store.Outbox", c, sh, st))
					continue
				}
				rl, err := bus.NewRelay(conn, ob, cfg.Relay)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				r.relays[c+"/"+sh] = rl
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Add adds handler groups; see Router.Add. It also checks each group
// against the runner's stores: its Context must be configured, and so must
// every shard of its Source that this process has stores of — a message of
// a shard the group's context lacks could only be dead-lettered. A Source
// whose stores live in other processes is not checked.
func (r *Runner) Add(groups ...*Group) error {
	var errs []error
	for _, g := range groups {
		errs = append(errs, r.fits(g))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := r.router.Add(groups...); err != nil {
		return err
	}
	r.mu.Lock()
	r.groups += len(groups)
	r.mu.Unlock()
	return nil
}

// fits checks g against the runner's registry (see Add).
func (r *Runner) fits(g *Group) error {
	if g == nil || g.Context == "" {
		return nil // Router.Add reports it
	}
	own := r.reg.Shards(g.Context)
	if len(own) == 0 {
		return &UnconfiguredError{Group: g.Name, Context: g.Context, Configured: r.reg.Contexts()}
	}
	var missing []string
	for _, sh := range r.reg.Shards(g.source()) {
		if !slices.Contains(own, sh) {
			missing = append(missing, sh)
		}
	}
	if len(missing) > 0 {
		return &UnconfiguredError{Group: g.Name, Context: g.Context, Source: g.source(), Shards: missing}
	}
	return nil
}

// UnconfiguredError is a group the runner's stores cannot serve: its
// context is not configured (Configured lists those that are), or its
// source has shards its context lacks (Shards).
type UnconfiguredError struct {
	Group, Context, Source string
	Configured, Shards     []string
}

func (e *UnconfiguredError) Error() string {
	if len(e.Shards) > 0 {
		return fmt.Sprintf("handlers: group %q: context %q has no store for shards %s of its source %q; configure them, or their messages can only be dead-lettered",
			e.Group, e.Context, strings.Join(e.Shards, ", "), e.Source)
	}
	return fmt.Sprintf("handlers: group %q: context %q is not configured (configured: %s)", e.Group, e.Context, strings.Join(e.Configured, ", "))
}

// Ready is closed once every context's stream is provisioned, the relays
// are running and the groups are consuming.
func (r *Runner) Ready() <-chan struct{} { return r.ready }

// RunnerStatus is what a Runner reports about itself.
type RunnerStatus struct {
	Ready  bool
	Relays map[string]bus.RelayStatus // by "context/shard"
	Groups map[string]GroupStatus     // by group name
}

// Status reports readiness, every relay's state and the groups' blocked
// partitions.
func (r *Runner) Status() RunnerStatus {
	s := RunnerStatus{Relays: make(map[string]bus.RelayStatus, len(r.relays)), Groups: r.router.Status().Groups}
	select {
	case <-r.ready:
		s.Ready = true
	default:
	}
	for k, rl := range r.relays {
		s.Relays[k] = rl.Status()
	}
	return s
}

// Record is the runner's status as the replicas' records keep it (see
// package status): the relays, and each group's owned and blocked
// partitions.
func (r *Runner) Record() status.Replica {
	st := r.Status()
	rec := status.Replica{Started: r.started, Relays: map[string]status.Relay{}, Groups: map[string]status.Share{}}
	for k, s := range st.Relays {
		rl := status.Relay{Leader: s.Leader, Checkpoint: s.Checkpoint.String(), Published: s.Published,
			Quarantined: s.Quarantined, Behind: s.Behind.Seconds(), HeldBy: s.HeldBy}
		if s.LastError != nil {
			rl.LastError = s.LastError.Error()
		}
		rec.Relays[k] = rl
	}
	for name, g := range st.Groups {
		sh := status.Share{Context: g.Context, Source: g.Source, Owned: g.Owned, Blocked: map[int]status.Blocked{}}
		for p, b := range g.Blocked {
			sh.Blocked[p] = status.Blocked(b)
		}
		rec.Groups[name] = sh
	}
	return rec
}

// Relay returns the relay of (contextName, shard), if this runner has one.
func (r *Runner) Relay(contextName, shard string) (*bus.Relay, bool) {
	rl, ok := r.relays[contextName+"/"+shard]
	return rl, ok
}

// Run provisions the streams, runs the relays and the groups until ctx
// ends, then drains the groups (see Router.Run) and stops the relays. It
// returns at once when its NATS user lacks a permission a part needs
// (*bus.PermissionError, before anything starts), when provisioning fails
// or a part cannot run (a stream with conflicting settings), after
// stopping the others.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	for _, c := range r.reg.Contexts() {
		if _, err := r.conn.ProvisionStream(ctx, c); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	fail := func(what string, err error) {
		if err != nil {
			r.cfg.Logger.ErrorContext(ctx, "handlers: runner part stopped", "part", what, "error", err)
			cancel(fmt.Errorf("%s: %w", what, err))
		}
	}
	for k, rl := range r.relays {
		wg.Go(func() { fail("relay "+k, rl.Run(ctx)) })
	}
	// The record stays while the groups drain: their partitions are still here.
	announcing, stopAnnouncing := context.WithCancel(context.WithoutCancel(ctx))
	var announced sync.WaitGroup
	announced.Go(func() { status.Announce(announcing, r.conn, r.cfg.Replica, r.Record, r.cfg.Logger) })
	defer func() {
		stopAnnouncing()
		announced.Wait()
	}()
	r.mu.Lock()
	groups := r.groups
	r.mu.Unlock()
	if groups > 0 {
		wg.Go(func() { fail("router", r.router.Run(ctx)) })
		select {
		case <-r.router.Ready():
		case <-ctx.Done():
		}
	}
	if ctx.Err() == nil {
		r.once.Do(func() { close(r.ready) })
		r.cfg.Logger.InfoContext(ctx, "handlers: runner ready", "relays", len(r.relays), "groups", groups)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
