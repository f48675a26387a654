package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/switchyard-go/switchyard/backoff"
	"github.com/switchyard-go/switchyard/store"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// DefaultRelayName is the name a relay keys its checkpoint and leadership
// by when RelayConfig.Name is empty.
const DefaultRelayName = "nats"

// RelayConfig configures a Relay. The zero value works.
type RelayConfig struct {
	// Name keys the relay's checkpoint and leadership in the store
	// (default DefaultRelayName).
	Name string

	// BatchSize is how many events one read takes and one batch publishes
	// (default 1000). While draining a backlog the relay reads and builds
	// ahead of what it publishes: up to five batches of events are held at
	// once (one being published, two read, two built), and up to four more
	// await JetStream's acks without their data. Memory grows with
	// BatchSize times the event size: lower it for large events.
	BatchSize int

	// IdlePoll is how often an idle leader reads the log without having
	// been woken (default 100ms); see the package doc on wake-ups.
	IdlePoll time.Duration

	// LeaderRetry is how often a standby tries to take over (default 1s).
	// A leader that dies frees its lease at once (its database connection
	// closes), so a standby takes over within LeaderRetry.
	LeaderRetry time.Duration

	// SaveEvery is the least time between two checkpoint saves
	// (default 200ms, or a quarter of StreamConfig.Duplicates when that
	// is shorter). Publishing does not wait for saves; after a crash,
	// what was published but not yet saved is published again and dropped
	// by JetStream's de-duplication. Each save is a commit in the store's
	// database, and while it runs it holds back the reads of every relay
	// of that database: over 16 shards in one database, saves every 50ms
	// cost a fifth of the handled rate.
	SaveEvery time.Duration

	// Backoff shapes the pauses after failures: of the database, of NATS,
	// of a checkpoint save (zero fields: backoff's defaults, 50ms doubling
	// up to 5s).
	Backoff backoff.Config

	// Logger receives the relay's log lines (nil: the Conn's logger).
	Logger *slog.Logger

	// TracerProvider receives a span per batch published, linked to the
	// events' trace contexts; MeterProvider the events published and
	// quarantined and the lag (nil: the global providers).
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider

	// Acked, when set, is called from the relay's goroutine with each run of
	// events JetStream acknowledged, in log order (quarantined ones left
	// out). The events carry their ID, type, stream, version, position and
	// recorded time; their Data and Metadata are gone by then (the relay
	// lets them go once published). It must not block.
	Acked func(events []store.Event)
}

func (c *RelayConfig) setDefaults(conn *Conn) {
	if c.Name == "" {
		c.Name = DefaultRelayName
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.IdlePoll == 0 {
		c.IdlePoll = 100 * time.Millisecond
	}
	if c.LeaderRetry == 0 {
		c.LeaderRetry = time.Second
	}
	if c.SaveEvery == 0 {
		// A relay stops while what it has not saved is older than half
		// the de-duplication window (see leader.step): a short window
		// takes saves as often as it needs.
		c.SaveEvery = 200 * time.Millisecond
		if d := conn.cfg.Stream.Duplicates; d > 0 {
			c.SaveEvery = min(c.SaveEvery, d/4)
		}
	}
	if c.Logger == nil {
		c.Logger = conn.cfg.Logger
	}
}

// Validate reports every problem with c at once, each a *ConfigError.
func (c RelayConfig) Validate() error {
	var errs []error
	if c.Name != "" {
		if err := store.CheckName("relay", c.Name); err != nil {
			errs = append(errs, &ConfigError{Path: "RelayConfig.Name", Err: err})
		}
	}
	if c.BatchSize < 0 || c.BatchSize > 10000 {
		errs = append(errs, &ConfigError{Path: "RelayConfig.BatchSize", Err: fmt.Errorf("%d: want 1 to 10000", c.BatchSize)})
	}
	errs = append(errs, negative("RelayConfig.", setting{"IdlePoll", c.IdlePoll}, setting{"LeaderRetry", c.LeaderRetry}, setting{"SaveEvery", c.SaveEvery}))
	if err := c.Backoff.Validate(); err != nil {
		errs = append(errs, &ConfigError{Path: "RelayConfig.Backoff", Err: err})
	}
	return errors.Join(errs...)
}

// Relay forwards one store's committed events to JetStream: it tails the
// log in commit order, publishes batches asynchronously with Nats-Msg-Id =
// event_id, and saves its checkpoint in the store's own database after
// JetStream acknowledged. One process at a time leads a store's relay; the
// others stand by.
type Relay struct {
	conn *Conn
	st   store.Outbox
	cfg  RelayConfig
	log  *slog.Logger
	tel  *relayTelemetry

	leader      atomic.Bool
	lag         lagClock
	published   atomic.Uint64
	quarantined atomic.Uint64

	mu      sync.Mutex
	lastErr error
	saved   store.Position
	hold    *store.Hold // what holds its reads back, once reported (see noteRead)
}

// NewRelay returns the relay of st over conn; Run runs it.
func NewRelay(conn *Conn, st store.Outbox, cfg RelayConfig) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults(conn)
	r := &Relay{conn: conn, st: st, cfg: cfg, tel: newRelayTelemetry(cfg, st)}
	r.log = cfg.Logger.With(slog.String("relay", cfg.Name), slog.String("context", st.Context()), slog.String("shard", st.Shard()))
	return r, nil
}

// RelayStatus is a relay's state as this process sees it.
type RelayStatus struct {
	Leader      bool           // this process leads the store's relay
	Checkpoint  store.Position // last saved by this process
	Published   uint64         // events acknowledged by JetStream since Run began
	Quarantined uint64         // events set aside since Run began
	LastError   error          // the last failure, nil once a batch went through
	// Behind is how far behind the log the relay is, while this process
	// leads: the metric switchyard.relay.lag (see the package doc's
	// "Telemetry"). Zero while it is caught up or does not lead. A relay
	// held back by a transaction still running in the store's database is
	// behind from the first event it holds back.
	Behind time.Duration
	// HeldBy is that transaction, once the relay has seen it hold its
	// reads back for a second ("": none): its process or prepared name,
	// application, state and start (store.Hold.String; the relay's log
	// adds its latest statement).
	HeldBy string
}

// Status reports the relay's state.
func (r *Relay) Status() RelayStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := RelayStatus{Leader: r.leader.Load(), Checkpoint: r.saved, Published: r.published.Load(),
		Quarantined: r.quarantined.Load(), LastError: r.lastErr}
	if st.Leader {
		st.Behind = r.lag.behind(time.Now())
		if r.hold != nil {
			st.HeldBy = r.hold.String()
		}
	}
	return st
}

// Lag counts the store's committed events JetStream has not acknowledged
// (as of the last saved checkpoint, which trails acks by up to SaveEvery).
// Any process can ask, leader or not.
func (r *Relay) Lag(ctx context.Context) (int64, error) {
	pos, err := r.st.Checkpoint(ctx, r.cfg.Name)
	if err != nil {
		return 0, err
	}
	return r.st.CountAfter(ctx, pos)
}

// Quarantined lists the events the relay set aside.
func (r *Relay) Quarantined(ctx context.Context) ([]store.Quarantined, error) {
	return r.st.Quarantined(ctx, r.cfg.Name)
}

// fail records err as the relay's last error and logs it with msg.
func (r *Relay) fail(ctx context.Context, msg string, err error) {
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
	r.log.LogAttrs(ctx, slog.LevelWarn, msg, slog.Any("error", err))
}

// resumed clears the last error after a failure.
func (r *Relay) resumed(ctx context.Context) {
	r.mu.Lock()
	r.lastErr = nil
	r.mu.Unlock()
	r.log.LogAttrs(ctx, slog.LevelInfo, "relay resumed")
}

func (r *Relay) setSaved(pos store.Position) {
	r.mu.Lock()
	r.saved = pos
	r.mu.Unlock()
}

// Run relays until ctx is done: it stands by while another process leads,
// leads when it can, and survives NATS and the database going away. It
// returns nil when ctx is done, or the error that makes relaying
// impossible: a stream with conflicting settings, a permission its NATS
// user lacks (*PermissionError, found at start).
func (r *Relay) Run(ctx context.Context) error {
	if err := r.conn.Check(ctx, "relay of "+r.st.Context()+"/"+r.st.Shard(), RelayPermissions(r.st.Context(), r.st.Shard())); err != nil {
		r.fail(ctx, "the NATS user lacks a permission", err)
		return err
	}
	local, stop := r.st.Commits()
	defer stop()
	wake := make(chan struct{}, 1)
	sub, err := r.conn.nc.Subscribe(wakeSubject(r.st.Context(), r.st.Shard()), func(*nats.Msg) { signal(wake) })
	if err != nil {
		return &Error{Op: "subscribe to wake-ups", URL: r.conn.url, Err: err}
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort on the way out
	defer r.tel.observeLag(r)()
	var stream *Stream
	var failures failures
	for ctx.Err() == nil {
		if stream == nil {
			if stream, err = r.conn.ProvisionStream(ctx, r.st.Context()); err != nil {
				if conflict := (*StreamConflictError)(nil); errors.As(err, &conflict) {
					r.fail(ctx, "stream settings conflict", err)
					return err
				}
				r.fail(ctx, "cannot provision the stream", err)
				r.standby(ctx, local, failures.next(r.cfg.Backoff))
				continue
			}
			if err := r.fits(stream); err != nil {
				r.fail(ctx, "events the store accepts would not fit NATS", err)
				return err
			}
		}
		lease, ok, err := r.st.TryLead(ctx, r.cfg.Name)
		if err != nil {
			r.fail(ctx, "cannot try for leadership", err)
			r.standby(ctx, local, failures.next(r.cfg.Backoff))
			continue
		}
		failures.reset()
		if !ok {
			r.standby(ctx, local, r.cfg.LeaderRetry)
			continue
		}
		r.lag.start(time.Now()) // behind from now until caught up: set before Status and the metric read it
		r.leader.Store(true)
		r.log.LogAttrs(ctx, slog.LevelInfo, "relay leading")
		r.lead(ctx, lease, stream, local, wake)
		r.leader.Store(false)
		lease.Release()
	}
	return nil
}

// EnvelopeReserve is how many bytes of NATS headers an event's message
// may carry beyond its data and metadata: the store-owned keys at their
// longest (under 1 KiB) and, once the event is dead-lettered, the dead
// letter's own (its error, up to 4 KiB, among them). A store whose events (store.Outbox.
// MaxEventBytes) are within the NATS limits by this much has every event
// it accepts delivered.
const EnvelopeReserve = 8 << 10

// fits checks that whatever the store accepts, NATS takes: the largest
// event plus EnvelopeReserve is within the server's max payload and the
// stream's max message size.
func (r *Relay) fits(stream *Stream) error {
	limit, what := r.conn.msgLimit(stream)
	if max := r.st.MaxEventBytes(); max+EnvelopeReserve > limit {
		return &ConfigError{Path: "store " + r.st.Context() + "/" + r.st.Shard() + " max_event_bytes", Err: fmt.Errorf(
			"%d bytes of data and metadata, with up to %d bytes of headers, is over the %d bytes of %s: lower max_event_bytes to %d or less, or raise the NATS limit",
			max, EnvelopeReserve, limit, what, limit-EnvelopeReserve)}
	}
	return nil
}

// msgLimit is the largest message stream takes, and what sets it.
func (c *Conn) msgLimit(stream *Stream) (limit int, what string) {
	limit, what = int(c.nc.MaxPayload()), "the NATS server's max_payload"
	if stream.MaxMsgSize > 0 && int(stream.MaxMsgSize) < limit {
		limit, what = int(stream.MaxMsgSize), "the max message size of stream "+stream.Name
	}
	return limit, what
}

// standby waits d, forwarding this process's commits to the leader as
// wake-ups.
func (r *Relay) standby(ctx context.Context, local <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	subj := wakeSubject(r.st.Context(), r.st.Shard())
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-local:
			r.conn.nc.Publish(subj, nil) //nolint:errcheck // a lost wake-up costs one IdlePoll
		}
	}
}

// acked counts evs as published and hands them to RelayConfig.Acked.
func (r *Relay) acked(evs []store.Event) {
	if len(evs) == 0 {
		return
	}
	r.published.Add(uint64(len(evs)))
	r.tel.published.Add(context.Background(), int64(len(evs)), r.tel.add...)
	if r.cfg.Acked != nil {
		r.cfg.Acked(evs)
	}
}

// ForwardCommits wakes the relay leader of st, wherever it runs, after each
// commit made through st in this process, until stop is called. Processes
// that run a Relay for st do this already.
func (c *Conn) ForwardCommits(st store.Outbox) (stop func()) {
	local, unsubscribe := st.Commits()
	done := make(chan struct{})
	subj := wakeSubject(st.Context(), st.Shard())
	go func() {
		for {
			select {
			case <-done:
				return
			case <-local:
				c.nc.Publish(subj, nil) //nolint:errcheck // a lost wake-up costs one IdlePoll
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { unsubscribe(); close(done) }) }
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// failures counts failures in a row, for the pause before the next try.
type failures int

// next counts a failure and returns the pause before trying again.
func (f *failures) next(cfg backoff.Config) time.Duration {
	*f++
	return cfg.Delay(int(*f))
}

func (f *failures) reset() { *f = 0 }
