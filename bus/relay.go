package bus

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/store"
)

// RelayConfig configures a Relay. The zero value works.
type RelayConfig struct {
	// Name keys the relay's checkpoint and leadership in the store
	// (default "nats").
	Name string

	// BatchSize is how many events one read takes and one batch publishes
	// (default 1000). While draining a backlog the relay reads and builds
	// ahead of what it publishes: up to five batches of events are held at
	// once (one being published, two read, two built), and up to four more
	// await JetStream's acks without their data. Memory grows with
	// BatchSize times the event size: lower it for large events.
	BatchSize int

	// IdlePoll is how often an idle leader reads the log without having
	// been woken (default 100ms). Commits made through this process's
	// stores, or through any process running a relay or ForwardCommits for
	// the store, wake it at once; polling catches the rest — transactions
	// an application committed itself (WithTx), or processes that append
	// without a bus.
	IdlePoll time.Duration

	// LeaderRetry is how often a standby tries to take over (default 1s).
	// A leader that dies frees its lease at once (its database connection
	// closes), so a standby takes over within LeaderRetry.
	LeaderRetry time.Duration

	// SaveEvery is the least time between two checkpoint saves
	// (default 50ms). Publishing does not wait for saves; after a crash,
	// what was published but not yet saved is published again and dropped
	// by JetStream's de-duplication.
	SaveEvery time.Duration

	// MaxBackoff caps the pause after failures (default 5s); the pause
	// starts at 50ms and doubles.
	MaxBackoff time.Duration

	// Logger receives the relay's log lines (nil: the Conn's logger).
	Logger *slog.Logger

	// Acked, when set, is called from the relay's goroutine with each run of
	// events JetStream acknowledged, in log order (quarantined ones left
	// out). The events carry their ID, type, stream, version, position and
	// recorded time; their Data and Metadata are gone by then (the relay
	// lets them go once published). It must not block.
	Acked func(events []store.Event)
}

func (c *RelayConfig) setDefaults(conn *Conn) {
	if c.Name == "" {
		c.Name = "nats"
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
		c.SaveEvery = 50 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = conn.cfg.Logger
	}
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

	leader       atomic.Bool
	published    atomic.Uint64
	quarantinedN atomic.Uint64

	mu      sync.Mutex
	lastErr error
	saved   store.Position
}

// NewRelay returns the relay of st over conn; Run runs it.
func NewRelay(conn *Conn, st store.Outbox, cfg RelayConfig) (*Relay, error) {
	if err := store.CheckRelayName(cfg.Name); cfg.Name != "" && err != nil {
		return nil, err
	}
	if cfg.BatchSize < 0 || cfg.BatchSize > 10000 {
		return nil, &store.InvalidError{Field: "relay batch size", Value: strconv.Itoa(cfg.BatchSize), Reason: "want 1 to 10000"}
	}
	cfg.setDefaults(conn)
	r := &Relay{conn: conn, st: st, cfg: cfg}
	r.log = cfg.Logger.With(slog.String("relay", cfg.Name), slog.String("context", st.Context()), slog.String("shard", st.Shard()))
	return r, nil
}

// Status is a relay's state as this process sees it.
type Status struct {
	Leader      bool           // this process leads the store's relay
	Checkpoint  store.Position // last saved by this process
	Published   uint64         // events acknowledged by JetStream since Run began
	Quarantined uint64         // events set aside since Run began
	LastError   error          // the last failure, nil once a batch went through
}

// Status reports the relay's state.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Leader: r.leader.Load(), Checkpoint: r.saved, Published: r.published.Load(),
		Quarantined: r.quarantinedN.Load(), LastError: r.lastErr}
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

func (r *Relay) fail(ctx context.Context, msg string, err error) {
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
	r.log.LogAttrs(ctx, slog.LevelWarn, msg, slog.Any("error", err))
}

// Run relays until ctx is done: it stands by while another process leads,
// leads when it can, and survives NATS and the database going away. It
// returns nil when ctx is done, or the error that makes relaying
// impossible (a stream with conflicting settings).
func (r *Relay) Run(ctx context.Context) error {
	local, stop := r.st.Commits()
	defer stop()
	wake := make(chan struct{}, 1)
	sub, err := r.conn.nc.Subscribe(wakeSubject(r.st.Context(), r.st.Shard()), func(*nats.Msg) { signal(wake) })
	if err != nil {
		return &Error{Op: "subscribe to wake-ups", URL: r.conn.url, Err: err}
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort on the way out
	var stream *Stream
	bo := r.backoff()
	for ctx.Err() == nil {
		if stream == nil {
			if stream, err = r.conn.Stream(ctx, r.st.Context()); err != nil {
				var conflict *StreamConflictError
				if errors.As(err, &conflict) {
					r.fail(ctx, "stream settings conflict", err)
					return err
				}
				r.fail(ctx, "cannot provision the stream", err)
				r.standby(ctx, local, bo.next())
				continue
			}
		}
		lease, ok, err := r.st.TryLead(ctx, r.cfg.Name)
		if err != nil {
			r.fail(ctx, "cannot try for leadership", err)
			r.standby(ctx, local, bo.next())
			continue
		}
		bo.reset()
		if !ok {
			r.standby(ctx, local, r.cfg.LeaderRetry)
			continue
		}
		r.leader.Store(true)
		r.log.LogAttrs(ctx, slog.LevelInfo, "relay leading")
		r.lead(ctx, lease, stream, local, wake)
		r.leader.Store(false)
		lease.Release()
	}
	return nil
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

// lead relays while this process holds lease. While a backlog drains, a
// feed reads and builds the batches ahead and up to maxFlights batches
// await their acks; caught up, it reads, publishes and settles one batch
// at a time.
func (r *Relay) lead(ctx context.Context, lease store.Lease, stream *Stream, local, wake <-chan struct{}) {
	bo := r.backoff()
	var acked store.Position // everything up to here is acknowledged (or quarantined)
	for {
		var err error
		if acked, err = r.st.Checkpoint(ctx, r.cfg.Name); err == nil {
			break
		}
		r.fail(ctx, "cannot read the checkpoint", err)
		if !sleep(ctx, lease, bo.next()) {
			return
		}
	}
	sv := newSaver(r, acked)
	defer sv.close()
	idle := time.NewTimer(r.cfg.IdlePoll)
	defer idle.Stop()
	next := acked             // read from here
	woken := false            // the last wait ended with a commit's wake-up
	var recheck time.Duration // the next empty read's wait, while reads a commit woke find nothing
	var fd *feed              // reads running ahead
	var inflight []*flight    // batches sent, not yet settled, oldest first
	var fast *run             // the fast batch the batches in flight go out in, while open
	// Up to maxFlights batches await their acks, fewer when that many would
	// be over maxPending messages, but always two: one is sent while the one
	// before is settled.
	window := max(2, min(maxFlights, maxPending/r.cfg.BatchSize))
	// settle waits for f's acks and moves acked on; on failure everything
	// after the first event not acknowledged is sent again.
	settle := func(f *flight) error {
		n, quarantined, err := r.settle(ctx, f)
		if n > 0 {
			acked = f.batch[n-1].Position
			sv.save(acked, quarantined)
		}
		if err != nil {
			next = acked
			if ctx.Err() == nil && !errors.Is(err, errBatchEnded) {
				r.fail(ctx, "publish failed; publishing again from the first event not acknowledged", err)
			}
		}
		return err
	}
	// endRun ends the open run after what was sent: its last batch's acks
	// come with the end.
	endRun := func() {
		if fast != nil {
			fast.commit()
			fast = nil
		}
	}
	// settleFlights settles the batches in flight, oldest first, until keep
	// are left. After a failure the run ends and the rest are discarded:
	// everything from the first event not acknowledged goes out again. It
	// reports the failure; errBatchEnded means JetStream refused an event
	// (now quarantined) and dropped the ones sent behind it.
	settleFlights := func(keep int) error {
		for len(inflight) > keep {
			f := inflight[0]
			inflight = inflight[1:]
			if err := settle(f); err != nil {
				endRun()
				for _, f := range inflight {
					r.discard(ctx, f)
				}
				inflight = nil
				return err
			}
		}
		return nil
	}
	// A run must not end while batches of it are in flight and a new one
	// begins: JetStream would store the new run's events even when it
	// refused one of the old run's and dropped the rest.
	stopRun := func() {
		endRun()
		settleFlights(0) //nolint:errcheck // settle logs the failure; next moved back
	}
	defer func() {
		stopRun()
		if fd != nil {
			fd.stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.Lost():
			r.fail(ctx, "relay lease lost", errors.New("the connection holding the lease broke"))
			return
		default:
		}
		// Never let published-but-unsaved progress age past half the
		// de-duplication window: a re-publish after a crash must still be
		// recognised as one.
		if sv.unsavedFor() > stream.Duplicates/2 {
			stopRun()
			if !sleep(ctx, lease, bo.next()) {
				return
			}
			continue
		}
		var p *prepared
		var err error
		if fd != nil {
			if got, ok := <-fd.out; ok && got.after == next {
				p, err = got.p, got.err
			}
			if p == nil || len(p.batch) < r.cfg.BatchSize {
				fd.stop() // it read up to the end, or failed, or next moved back
				fd = nil
			}
		}
		if p == nil && err == nil {
			var batch []store.Event
			if batch, err = r.st.ReadAll(ctx, next, r.cfg.BatchSize); err == nil {
				p = r.prepare(stream, batch)
				if len(batch) == r.cfg.BatchSize {
					// More is waiting: read it while this batch goes out.
					fd = r.startFeed(ctx, stream, batch[len(batch)-1].Position)
				}
			}
		}
		if err != nil {
			stopRun()
			if ctx.Err() == nil {
				r.fail(ctx, "cannot read the log", err)
			}
			if !sleep(ctx, lease, bo.next()) {
				return
			}
			continue
		}
		batch := p.batch
		r.conn.relayed.add(time.Now(), len(batch))
		var cur *flight
		final := len(batch) < r.cfg.BatchSize
		if len(batch) > 0 {
			next = batch[len(batch)-1].Position
			if fast == nil && stream.batched.Load() && len(batch) >= minFastBatch {
				fast = r.conn.acks().newRun(stream.Name, r.cfg.BatchSize)
			}
			cur = r.issue(p, fast, final)
			inflight = append(inflight, cur)
		}
		issueFailed := cur != nil && cur.err != nil
		if final || issueFailed {
			endRun() // final: its last event ended it already, unless not sent
		}
		// Settle the oldest batches while the window is full; all of them
		// when caught up or when issuing failed.
		keep := window - 1
		if final || issueFailed {
			keep = 0
		}
		if err := settleFlights(keep); err != nil {
			if fd != nil {
				fd.stop() // it reads on from where publishing no longer is
				fd = nil
			}
			// After a refused event, quarantined, the rest goes out again
			// at once.
			if !errors.Is(err, errBatchEnded) && !sleep(ctx, lease, bo.next()) {
				return
			}
			continue
		}
		if bo.failed() && len(batch) > 0 {
			r.mu.Lock()
			r.lastErr = nil
			r.mu.Unlock()
			r.log.LogAttrs(ctx, slog.LevelInfo, "relay resumed")
			bo.reset()
		}
		if len(batch) == r.cfg.BatchSize {
			continue // more is waiting
		}
		// Caught up: wait for a commit here, a wake-up from another
		// process, or the idle poll. A commit signalled while the batch was
		// being published is waiting in its channel already.
		//
		// A read that a commit woke and that found nothing may have stopped
		// below that commit, held back by an older transaction: one that
		// ends without waking the relay (the relay's own checkpoint save, a
		// transaction in another database that pg_stat_activity no longer
		// showed as the read began, one the application runs itself). So
		// such a read is made again after recheckAfter, then twice as long
		// each time it finds nothing, up to IdlePoll. (A woken read that
		// found some events and stopped below such a transaction is not:
		// rechecking after every read would cost idle stores several reads
		// per commit; the next commit or the idle poll reads the rest.)
		switch {
		case len(batch) > 0:
			recheck = 0
		case woken:
			recheck = recheckAfter
		case recheck > 0:
			recheck = min(2*recheck, r.cfg.IdlePoll)
		}
		poll := r.cfg.IdlePoll
		if recheck > 0 && recheck < poll {
			poll = recheck
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(poll)
		woken = true
		select {
		case <-ctx.Done():
			return
		case <-lease.Lost():
		case <-local:
		case <-wake:
		case <-idle.C:
			woken = false
		}
		// Under load, let commits gather briefly: fewer, larger reads leave
		// the database to the writers.
		if len(batch) > 0 && r.conn.relayed.perSecond(time.Now()) >= busyAbove {
			gather := busyGatherFor
			if len(batch) >= gatherAbove {
				gather = gatherFor
			}
			if !sleep(ctx, lease, gather) {
				return
			}
		}
	}
}

// recheckAfter is when a read that a commit woke, and that found nothing,
// is made again (see lead).
const recheckAfter = 5 * time.Millisecond

// maxFlights is how many batches may await their acks at once.
const maxFlights = 4

// While the Conn's relays together read at least busyAbove events a
// second, a read that found events lets the next wait: gatherFor after at
// least gatherAbove events, busyGatherFor after fewer (many stores, each
// seeing few commits, would otherwise read once per commit). Below
// busyAbove every commit is read at once: at 1000 events/s a gather after
// a slow ack (NATS syncing every write) was the p99. Measured in cmd/bench,
// the busy rule took 16 shards in one process from 0.75x to 0.86x the
// handled rate of one shard.
const (
	gatherAbove   = 4
	gatherFor     = 2 * time.Millisecond
	busyAbove     = 2000
	busyGatherFor = 5 * time.Millisecond
)

// counter counts events in 100ms buckets, for a rate per second.
type counter struct {
	mu      sync.Mutex
	bucket  int64 // the current bucket: UnixNano / 100ms
	n, prev int   // counted in it, and in the one before
}

const bucketLen = int64(100 * time.Millisecond)

func (c *counter) roll(now time.Time) {
	b := now.UnixNano() / bucketLen
	switch {
	case b <= c.bucket: // a relay that read the clock just before another
		return
	case b == c.bucket+1:
		c.prev = c.n
	default:
		c.prev = 0
	}
	c.bucket, c.n = b, 0
}

func (c *counter) add(now time.Time, n int) {
	c.mu.Lock()
	c.roll(now)
	c.n += n
	c.mu.Unlock()
}

// perSecond is the count of the last whole bucket, per second.
func (c *counter) perSecond(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.roll(now)
	return c.prev * int(time.Second/time.Duration(bucketLen))
}

// flight is a batch sent to JetStream, its acks outstanding.
type flight struct {
	*prepared
	acks   *batchAcks // nil: nothing was sent
	issued int        // events handled before issuing stopped
	err    error      // why issuing stopped early
}

// prepared is a batch read from the log with its messages built.
type prepared struct {
	stream *Stream // the JetStream stream they go to
	batch  []store.Event
	msgs   []*nats.Msg
	sizes  []int
	limit  int
}

// prepare builds the messages of batch.
func (r *Relay) prepare(stream *Stream, batch []store.Event) *prepared {
	p := &prepared{stream: stream, batch: batch, msgs: make([]*nats.Msg, len(batch)), sizes: make([]int, len(batch))}
	p.limit = int(r.conn.nc.MaxPayload())
	if stream.MaxMsgSize > 0 && int(stream.MaxMsgSize) < p.limit {
		p.limit = int(stream.MaxMsgSize)
	}
	for i := range batch {
		p.msgs[i], p.sizes[i] = message(&batch[i], r.st.Context(), r.st.Shard(), stream.Partitions)
		// The message has them now: a backlog in flight is thousands of
		// maps for the garbage collector to scan.
		batch[i].Data, batch[i].Metadata = nil, nil
	}
	return p
}

// issue sends p without waiting for acks, in run when there is one; final
// makes p the run's last batch. The connection does not reconnect until
// settle: a batch's messages all travel on one connection.
func (r *Relay) issue(p *prepared, run *run, final bool) *flight {
	f := &flight{prepared: p}
	if !r.conn.begin() {
		f.err = &Error{Op: "publish", URL: r.conn.url, Err: ErrUnavailable}
		return f
	}
	if run != nil {
		f.acks = run.begin(len(p.msgs))
	} else {
		f.acks = r.conn.acks().begin(len(p.msgs), p.stream.Name)
	}
	defer f.acks.seal()
	last := -1 // the last message sent: the run ends on it when final
	if run != nil && final {
		for i := range p.msgs {
			if p.sizes[i] <= p.limit {
				last = i
			}
		}
	}
	for i, m := range p.msgs {
		if p.sizes[i] > p.limit {
			f.issued = i + 1 // quarantined by settle; not sent
			continue
		}
		if err := f.acks.publish(i, m, i == last); err != nil {
			f.err = err
			break
		}
		// Sent: the connection has its bytes, and nothing reads the
		// message again.
		release(m)
		p.msgs[i] = nil
		f.issued = i + 1
	}
	return f
}

// wait waits for f's acks: each message's outcome, nil when none was sent.
func (r *Relay) wait(ctx context.Context, f *flight) []error {
	if f.acks == nil {
		return nil
	}
	return f.acks.wait(ctx, r.conn.cfg.AckTimeout)
}

// discard waits for f's acks and ignores them: f goes out again.
func (r *Relay) discard(ctx context.Context, f *flight) {
	defer r.conn.end()
	r.wait(ctx, f)
}

// errCodeBatchDisabled is JetStream's error code for a fast batch to a
// stream that does not allow them.
const errCodeBatchDisabled jetstream.ErrorCode = 10205

// settle waits for f's acks. n is how many events, from the start, are
// done (acknowledged, or quarantined); the caller goes on after them, so a
// failure means publishing again from the first event not acknowledged, in
// order. Messages after a failed one may have been stored too: JetStream
// drops their re-publish as duplicates.
func (r *Relay) settle(ctx context.Context, f *flight) (n int, quarantined []store.Quarantined, err error) {
	defer r.conn.end()
	outcome := r.wait(ctx, f)
	done := f.issued
	var ackErr error
	tooLarge := make(map[int]string)
	for i := 0; i < f.issued; i++ {
		if f.sizes[i] > f.limit {
			tooLarge[i] = "message of " + strconv.Itoa(f.sizes[i]) + " bytes is over the limit of " + strconv.Itoa(f.limit) + " bytes"
			continue
		}
		if err := outcome[i]; err != nil {
			if isTooLarge(err) {
				tooLarge[i] = err.Error()
				continue
			}
			if i < done {
				done, ackErr = i, err
			}
		}
	}
	if f.err != nil && done == f.issued {
		// Issuing stopped at the event after the last one issued.
		ackErr = f.err
	}
	start := 0
	now := time.Now().UTC()
	for i := 0; i < done; i++ {
		reason, bad := tooLarge[i]
		if !bad {
			continue
		}
		ev := f.batch[i]
		q := store.Quarantined{EventID: ev.ID, Type: ev.Type, Stream: ev.Stream, Version: ev.Version,
			Position: ev.Position, Size: f.sizes[i], Reason: reason, At: now}
		quarantined = append(quarantined, q)
		r.log.LogAttrs(ctx, slog.LevelError, "event quarantined: JetStream cannot take it; the events behind it go on",
			slog.String("event_id", ev.ID.String()), slog.String("event_type", ev.Type), slog.String("stream", ev.Stream),
			slog.Int64("stream_version", ev.Version), slog.String("position", ev.Position.String()),
			slog.Int("size", f.sizes[i]), slog.String("reason", reason))
		r.acked(f.batch[start:i])
		start = i + 1
	}
	r.acked(f.batch[start:done])
	r.quarantinedN.Add(uint64(len(quarantined)))
	if apiErr := (*jetstream.APIError)(nil); errors.As(ackErr, &apiErr) && apiErr.ErrorCode == errCodeBatchDisabled {
		// The stream was changed to refuse fast batches: publish one by one.
		f.stream.batched.Store(false)
	}
	if ackErr != nil {
		return done, quarantined, &Error{Op: "publish", URL: r.conn.url, Err: ackErr}
	}
	return done, quarantined, nil
}

func (r *Relay) acked(evs []store.Event) {
	if len(evs) == 0 {
		return
	}
	r.published.Add(uint64(len(evs)))
	if r.cfg.Acked != nil {
		r.cfg.Acked(evs)
	}
}

// feed reads the log ahead of the relay, batch after batch, and builds
// each batch's messages, until a read comes back short or fails: the relay
// publishes one batch while the next ones are built and read. Each of its
// two goroutines holds at most one batch in hand and one in its channel.
type feed struct {
	out    chan read // in log order; closed after the last
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// read is a batch of the log read after a position.
type read struct {
	after store.Position
	p     *prepared // nil when err is set
	err   error
}

func (r *Relay) startFeed(ctx context.Context, stream *Stream, after store.Position) *feed {
	ctx, cancel := context.WithCancel(ctx)
	fd := &feed{out: make(chan read, 1), cancel: cancel}
	batches := make(chan read, 1) // read, messages not yet built
	fd.wg.Add(2)
	go func() {
		defer fd.wg.Done()
		defer close(batches)
		for {
			batch, err := r.st.ReadAll(ctx, after, r.cfg.BatchSize)
			select {
			case batches <- read{after: after, p: &prepared{batch: batch}, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(batch) < r.cfg.BatchSize {
				return
			}
			after = batch[len(batch)-1].Position
		}
	}()
	go func() {
		defer fd.wg.Done()
		defer close(fd.out)
		for b := range batches {
			if b.err == nil {
				b.p = r.prepare(stream, b.p.batch)
			} else {
				b.p = nil
			}
			select {
			case fd.out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return fd
}

// stop stops fd and waits for its goroutines.
func (fd *feed) stop() {
	fd.cancel()
	fd.wg.Wait()
}

// isTooLarge reports JetStream refusing a message for its size.
func isTooLarge(err error) bool {
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) && jsErr.APIError() != nil {
		return jsErr.APIError().ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
	}
	return errors.Is(err, nats.ErrMaxPayload)
}

// sleep waits d, or until ctx is done or the lease is lost; it reports
// whether to go on leading.
func sleep(ctx context.Context, lease store.Lease, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-lease.Lost():
		return false
	case <-t.C:
		return true
	}
}

type backoff struct {
	cur, max time.Duration
}

func (r *Relay) backoff() *backoff { return &backoff{max: r.cfg.MaxBackoff} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = 50 * time.Millisecond
	} else if b.cur *= 2; b.cur > b.max {
		b.cur = b.max
	}
	return b.cur
}

func (b *backoff) failed() bool { return b.cur != 0 }
func (b *backoff) reset()       { b.cur = 0 }

// saver saves the checkpoint in the background, at most every SaveEvery,
// the latest position winning; quarantined events go with the position
// that passes them.
type saver struct {
	r       *Relay
	mu      sync.Mutex
	pos     store.Position
	quar    []store.Quarantined
	dirty   bool
	since   time.Time // when the oldest unsaved progress was made
	kick    chan struct{}
	stopped chan struct{}
	done    chan struct{}
}

func newSaver(r *Relay, pos store.Position) *saver {
	s := &saver{r: r, pos: pos, kick: make(chan struct{}, 1), stopped: make(chan struct{}), done: make(chan struct{})}
	r.mu.Lock()
	r.saved = pos
	r.mu.Unlock()
	go s.loop()
	return s
}

func (s *saver) save(pos store.Position, q []store.Quarantined) {
	s.mu.Lock()
	if !s.dirty {
		s.since = time.Now()
	}
	s.pos, s.dirty = pos, true
	s.quar = append(s.quar, q...)
	s.mu.Unlock()
	signal(s.kick)
}

func (s *saver) unsavedFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return 0
	}
	return time.Since(s.since)
}

func (s *saver) loop() {
	defer close(s.done)
	bo := s.r.backoff()
	for {
		select {
		case <-s.stopped:
			s.flush(context.Background())
			return
		case <-s.kick:
		}
		if err := s.flush(context.Background()); err != nil {
			s.r.fail(context.Background(), "cannot save the checkpoint", err)
			time.Sleep(bo.next())
			signal(s.kick)
			continue
		}
		bo.reset()
		select {
		case <-s.stopped:
			s.flush(context.Background())
			return
		case <-time.After(s.r.cfg.SaveEvery):
		}
	}
}

func (s *saver) flush(ctx context.Context) error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	pos, quar := s.pos, s.quar
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.r.st.SaveCheckpoint(ctx, s.r.cfg.Name, pos, quar...); err != nil {
		return err
	}
	s.mu.Lock()
	s.quar = s.quar[len(quar):]
	if s.pos == pos {
		s.dirty = false
	} else {
		s.since = time.Now()
	}
	s.mu.Unlock()
	s.r.mu.Lock()
	s.r.saved = pos
	s.r.mu.Unlock()
	return nil
}

// close saves what is left and stops the saver.
func (s *saver) close() {
	close(s.stopped)
	<-s.done
}
