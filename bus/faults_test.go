package bus_test

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/switchyard-go/switchyard/backoff"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// shrinkPayload restarts srv with a max payload of 8 KiB while c stays
// connected: the NATS limit drops below what the store accepted, as when a
// server is redeployed with a smaller max_payload.
func shrinkPayload(t *testing.T, srv *natstest.Server, c *bus.Conn) {
	t.Helper()
	srv.Stop()
	srv.RestartWith(func(o *server.Options) { o.MaxPayload = 8 << 10 })
	waitFor(t, "the connection back with the smaller max payload", func() bool {
		return c.NATS().IsConnected() && c.NATS().MaxPayload() == 8<<10
	})
}

// NATS's limit shrinks below what the store accepts while the relay runs:
// an event too large for it is quarantined, and the rest flows.
func TestOversizedEventIsQuarantinedAndTheRestFlows(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			srv := natstest.Start(t, false)
			// A minute: waiting out an ack that cannot come would fail the test.
			c := connect(t, srv.URL, bus.Config{AckTimeout: time.Minute, ReconnectWait: 50 * time.Millisecond})
			st := b.open(t, smallEvents)
			r := newRelay(t, c, st, bus.RelayConfig{BatchSize: 10})
			run(t, r)
			waitFor(t, "leadership", func() bool { return r.Status().Leader })
			shrinkPayload(t, srv, c)
			small := func(stream string) store.Event {
				ev, _ := store.NewEvent("Small", map[string]string{"s": stream})
				return ev
			}
			big, _ := store.NewEvent("Huge", map[string]string{"blob": strings.Repeat("x", 20<<10)})
			var want []store.Event
			for i := 0; i < 3; i++ {
				out, err := st.Append(context.Background(), "a", store.Any, small("a"), small("a"))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, out...)
			}
			huge, err := st.Append(context.Background(), "b", store.NoStream, big)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 30; i++ { // behind it, more than a batch
				out, err := st.Append(context.Background(), "a", store.Any, small("a"))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, out...)
			}
			waitLag0(t, r)
			checkDelivered(t, c, want, bus.DefaultPartitions)
			q, err := r.Quarantined(context.Background())
			if err != nil || len(q) != 1 {
				t.Fatalf("quarantined = %v, %v; want the huge event", q, err)
			}
			if q[0].EventID != huge[0].ID || q[0].Stream != "b" || q[0].Size <= 20<<10 || !strings.Contains(q[0].Reason, "over the limit") {
				t.Fatalf("quarantined %+v", q[0])
			}
			if s := r.Status(); s.Quarantined != 1 {
				t.Fatalf("status %+v", s)
			}
		})
	}
}

// A store that accepts events its NATS could not take is a mistake the
// relay refuses at start, naming the setting and both limits.
func TestRelayRefusesLimitsThatDoNotFit(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{Stream: bus.StreamConfig{MaxMsgSize: 16 << 10}})
	st := sqliteStoreMax(t, filepath.Join(t.TempDir(), "big.db"), 16<<10)
	r := newRelay(t, c, st, bus.RelayConfig{})
	err := r.Run(context.Background())
	var ce *bus.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "max_event_bytes") || !strings.Contains(err.Error(), strconv.Itoa(16<<10)) {
		t.Fatalf("Run = %v; want a ConfigError naming max_event_bytes and the limits", err)
	}
	ok := newRelay(t, c, sqliteStoreMax(t, filepath.Join(t.TempDir(), "fits.db"), 16<<10-bus.EnvelopeReserve), bus.RelayConfig{})
	run(t, ok)
	waitFor(t, "the relay whose store fits leading", func() bool { return ok.Status().Leader })
}

// reading is a store whose ReadAll calls are counted, each with what it
// found: a test waits for the relay to have read before it asserts what the
// relay must not have published.
type reading struct {
	store.Outbox
	mu    sync.Mutex
	found []int // events each ReadAll returned, in order
}

func (s *reading) ReadAll(ctx context.Context, after store.Position, limit int) ([]store.Event, error) {
	evs, err := s.Outbox.ReadAll(ctx, after, limit)
	if err == nil {
		s.mu.Lock()
		s.found = append(s.found, len(evs))
		s.mu.Unlock()
	}
	return evs, err
}

// reads counts the ReadAll calls so far.
func (s *reading) reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.found)
}

// emptySince reports whether every read after the first n found nothing.
func (s *reading) emptySince(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.found[n:] {
		if f != 0 {
			return false
		}
	}
	return true
}

// A transaction that took its id early and commits late is not skipped.
func TestLateCommitIsNotSkipped(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{})
	st := pgStore(t, pgtest.RandomName("s_"))
	rs := &reading{Outbox: st}
	r := newRelay(t, c, rs, bus.RelayConfig{IdlePoll: 20 * time.Millisecond})
	run(t, r)
	waitFor(t, "leadership", func() bool { return r.Status().Leader })
	ctx := context.Background()
	tx, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	late, err := st.Append(st.WithTx(ctx, tx), "late", store.NoStream, mustEvent("Late"))
	if err != nil {
		t.Fatal(err)
	}
	early, err := st.Append(ctx, "early", store.NoStream, mustEvent("Early"))
	if err != nil {
		t.Fatal(err)
	}
	// The relay reads (woken by the early commit, then polling) while the
	// late one is open: it must find nothing, or it would skip the late
	// commit.
	n := rs.reads()
	waitFor(t, "three reads while the late transaction is open", func() bool { return rs.reads() >= n+3 })
	if !rs.emptySince(n) || r.Status().Published != 0 {
		t.Fatalf("published %d while an older transaction was open: it would skip the late commit", r.Status().Published)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitLag0(t, r)
	checkDelivered(t, c, append(late, early...), bus.DefaultPartitions)
}

func mustEvent(typ string) store.Event {
	ev, err := store.NewEvent(typ, map[string]string{"at": time.Now().String()})
	if err != nil {
		panic(err)
	}
	return ev
}

// Commits wake the leader without polling: in its own process through the
// store, from another process through NATS.
func TestCommitsWakeTheRelay(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{})
	schema := pgtest.RandomName("s_")
	st := pgStore(t, schema)
	r := newRelay(t, c, st, bus.RelayConfig{IdlePoll: time.Hour})
	run(t, r)
	waitFor(t, "leadership", func() bool { return r.Status().Leader })
	var want []store.Event
	check := func(how string, st store.Store, n uint64) {
		t.Helper()
		out, err := st.Append(context.Background(), "wake", store.Any, mustEvent("Woken"))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, out...)
		waitPublished(t, r, n, how+": the relay did not wake (IdlePoll is 1h)")
	}
	check("a commit in this process", st, 1)

	// Another process: its own store and its own NATS connection.
	other := pgStore(t, schema)
	oc := connect(t, srv.URL, bus.Config{})
	stop := oc.ForwardCommits(other)
	defer stop()
	check("a commit in another process", other, 2)
	checkDelivered(t, c, want, bus.DefaultPartitions)
}

// waitPublished waits up to 5s for r to have published n events, well
// under an IdlePoll of an hour; failing says why.
func waitPublished(t *testing.T, r *bus.Relay, n uint64, failing string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.Status().Published < n {
		if time.Now().After(deadline) {
			t.Fatal(failing)
		}
		time.Sleep(time.Millisecond)
	}
}

// A read woken by a commit but held back by an older transaction that
// then ends without waking anyone (here the application's own, on the
// store's pool) is made again soon, not after the idle poll.
func TestHeldBackReadIsRetried(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{})
	st := pgStore(t, pgtest.RandomName("s_"))
	rs := &reading{Outbox: st}
	r := newRelay(t, c, rs, bus.RelayConfig{IdlePoll: time.Hour})
	run(t, r)
	waitFor(t, "leadership", func() bool { return r.Status().Leader })
	ctx := context.Background()
	older, _ := pgtest.OpenTransaction(t, st.Pool())
	// The term's first read has been made; the relay now waits for a
	// commit (IdlePoll is an hour), so every read from here is woken by
	// the append below or rechecks it.
	waitFor(t, "the relay's first read", func() bool { return rs.reads() > 0 })
	n := rs.reads()
	want, err := st.Append(ctx, "held", store.NoStream, mustEvent("Held"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the read the commit woke", func() bool { return rs.reads() > n })
	if !rs.emptySince(n) || r.Status().Published != 0 {
		t.Fatalf("published %d while an older transaction ran", r.Status().Published)
	}
	if err := older.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, r, 1, "the held-back event waited for the idle poll (1h)")
	checkDelivered(t, c, want, bus.DefaultPartitions)
}

// A transaction left open in the store's database holds the relay back
// (see store/postgres): the relay says so within seconds, though the
// commit it holds back, the application's own, does not wake it. Its lag
// counts from the first event it cannot read, and its status names the
// transaction.
func TestHeldBackRelaySaysByWhat(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{})
	st := pgStore(t, pgtest.RandomName("s_"))
	r := newRelay(t, c, st, bus.RelayConfig{IdlePoll: 50 * time.Millisecond})
	run(t, r)
	waitFor(t, "leadership", func() bool { return r.Status().Leader })
	ctx := context.Background()
	older, pid := pgtest.OpenTransaction(t, st.Pool())
	own, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(st.WithTx(ctx, own), "held", store.NoStream, mustEvent("Held")); err != nil {
		t.Fatal(err)
	}
	if err := own.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	waitFor(t, "the relay to say it is held back", func() bool {
		s := r.Status()
		return s.Behind > 0 && s.HeldBy != ""
	})
	if took := time.Since(committed); took > 8*time.Second {
		t.Errorf("the hold was named %v after the commit it held back: want a check a second", took)
	}
	s := r.Status()
	if !strings.Contains(s.HeldBy, "pid "+strconv.Itoa(pid)) || !strings.Contains(s.HeldBy, "idle in transaction") ||
		strings.Contains(s.HeldBy, "SELECT") {
		t.Errorf("HeldBy %q: want the transaction's pid %d and its state, not its statement", s.HeldBy, pid)
	}
	if s.Behind < time.Second {
		t.Errorf("Behind %v while held for a second: want the held event's wait", s.Behind)
	}
	if err := older.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, r, 1, "the held-back event after the transaction ended")
	waitFor(t, "the relay to be caught up", func() bool {
		s := r.Status()
		return s.Behind == 0 && s.HeldBy == ""
	})
}

// holding is a store whose reads a test holds back: while hold is set
// ReadAll finds nothing and HeldBack reports it, as another transaction
// each time when rotate is set; reads take slow otherwise.
type holding struct {
	store.Outbox
	mu     sync.Mutex
	hold   *store.Hold
	rotate bool
	slow   time.Duration
}

func (s *holding) set(h *store.Hold, rotate bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold, s.rotate = h, rotate
}

func (s *holding) ReadAll(ctx context.Context, after store.Position, limit int) ([]store.Event, error) {
	s.mu.Lock()
	held, slow := s.hold != nil, s.slow
	s.mu.Unlock()
	if held {
		return nil, nil
	}
	time.Sleep(slow)
	return s.Outbox.ReadAll(ctx, after, limit)
}

func (s *holding) HeldBack(context.Context, store.Position) (store.Hold, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		return store.Hold{}, false, nil
	}
	if s.rotate {
		s.hold.Transaction++
	}
	return *s.hold, true, nil
}

// checkpointFails is a store whose relay checkpoint cannot be read for a
// while.
type checkpointFails struct {
	store.Outbox
	until time.Time
}

func (s *checkpointFails) Checkpoint(ctx context.Context, relay string) (store.Position, error) {
	if time.Now().Before(s.until) {
		return store.Position{}, errors.New("database unreachable")
	}
	return s.Outbox.Checkpoint(ctx, relay)
}

// A new leader that cannot read its checkpoint yet is behind since it took
// the lead, not since 1970.
func TestLagOfALeaderNotYetReading(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{})
	st := &checkpointFails{Outbox: sqliteStore(t, filepath.Join(t.TempDir(), "s.db")), until: time.Now().Add(2 * time.Second)}
	r := newRelay(t, c, st, bus.RelayConfig{})
	run(t, r)
	waitFor(t, "leadership", func() bool { return r.Status().Leader })
	if s := r.Status(); s.Behind > time.Minute {
		t.Errorf("Behind %v while the first checkpoint is read", s.Behind)
	}
}

// A hold ends with the read that finds the events it held, even when they
// cannot be published yet.
func TestHoldEndsWhilePublishFails(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{AckTimeout: 200 * time.Millisecond})
	st := &holding{Outbox: sqliteStore(t, filepath.Join(t.TempDir(), "s.db"))}
	st.set(&store.Hold{Since: time.Now(), PID: 7, State: "idle in transaction"}, false)
	r := newRelay(t, c, st, bus.RelayConfig{IdlePoll: 20 * time.Millisecond})
	run(t, r)
	waitFor(t, "leadership", func() bool { return r.Status().Leader })
	if _, err := st.Append(context.Background(), "held", store.NoStream, mustEvent("Held")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hold reported", func() bool { return r.Status().HeldBy != "" })
	srv.Stop()
	st.set(nil, false)
	waitFor(t, "a failed publish", func() bool { return r.Status().LastError != nil })
	if s := r.Status(); s.HeldBy != "" {
		t.Errorf("HeldBy %q once the events it held were read (LastError %v)", s.HeldBy, s.LastError)
	}
}

// Short transactions that hold the relay back one after another, each
// seen once, are the ordinary traffic of a busy store: the lag shows
// them, the status does not name one.
func TestShortHoldsAreNotReported(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{})
	st := &holding{Outbox: sqliteStore(t, filepath.Join(t.TempDir(), "s.db"))}
	st.set(&store.Hold{Since: time.Now(), PID: 1, State: "active"}, true)
	r := newRelay(t, c, st, bus.RelayConfig{IdlePoll: 20 * time.Millisecond})
	run(t, r)
	waitFor(t, "leadership", func() bool { return r.Status().Leader })
	ctx := context.Background()
	deadline := time.Now().Add(3500 * time.Millisecond)
	behind := false
	for time.Now().Before(deadline) {
		if _, err := st.Append(ctx, "busy", store.Any, mustEvent("Busy")); err != nil { // a commit wakes the leader
			t.Fatal(err)
		}
		s := r.Status()
		if s.HeldBy != "" {
			t.Fatalf("HeldBy %q for holds each seen once", s.HeldBy)
		}
		behind = behind || s.Behind > 0
		time.Sleep(20 * time.Millisecond)
	}
	if !behind {
		t.Error("Behind stayed 0 while held back")
	}
	st.set(nil, false)
	waitFor(t, "the held events published", func() bool { lag, err := r.Lag(ctx); return err == nil && lag == 0 })
}

// A hold reported ends with the first read that finds events, not once
// the backlog it held has drained.
func TestHoldEndsWithTheFirstRead(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{})
	st := &holding{Outbox: sqliteStore(t, filepath.Join(t.TempDir(), "s.db")), slow: 5 * time.Millisecond}
	st.set(&store.Hold{Since: time.Now(), PID: 7, State: "idle in transaction"}, false)
	r := newRelay(t, c, st, bus.RelayConfig{BatchSize: 10})
	run(t, r)
	waitFor(t, "leadership", func() bool { return r.Status().Leader })
	ctx := context.Background()
	const n = 300
	for i := range n / 10 {
		evs := make([]store.Event, 10)
		for k := range evs {
			evs[k] = mustEvent("Held")
		}
		if _, err := st.Append(ctx, "held-"+strconv.Itoa(i), store.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the hold reported", func() bool { return strings.Contains(r.Status().HeldBy, "pid 7") })
	st.set(nil, false)
	var published uint64
	waitFor(t, "the hold no longer reported", func() bool {
		s := r.Status()
		published = s.Published
		return s.HeldBy == ""
	})
	if published >= n {
		t.Errorf("the hold was reported until all %d events it held were published", published)
	}
	waitPublished(t, r, n, "the held events")
}

// One leader at a time; when it goes, a standby takes over and nothing is
// lost or published twice.
func TestLeaderFailover(t *testing.T) {
	srv := natstest.Start(t, false)
	schema := pgtest.RandomName("s_")
	st1, st2 := pgStore(t, schema), pgStore(t, schema)
	c1 := connect(t, srv.URL, bus.Config{})
	c2 := connect(t, srv.URL, bus.Config{})
	r1 := newRelay(t, c1, st1, bus.RelayConfig{})
	r2 := newRelay(t, c2, st2, bus.RelayConfig{LeaderRetry: 100 * time.Millisecond})
	stop1 := run(t, r1)
	waitFor(t, "r1 leading", func() bool { return r1.Status().Leader })
	run(t, r2)
	want := appendMany(t, st2, "before", 10, 10) // appended where the standby runs
	waitLag0(t, r1)
	if r2.Status().Leader || r2.Status().Published != 0 {
		t.Fatalf("standby status %+v while r1 leads", r2.Status())
	}
	stop1()
	start := time.Now()
	waitFor(t, "r2 leading", func() bool { return r2.Status().Leader })
	// The leader's lease went with it: the standby, trying every 100ms,
	// leads at once (5s is a generous bound).
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failover took %v; want the standby leading within 5s (LeaderRetry 100ms)", d)
	}
	want = append(want, appendMany(t, st1, "after", 10, 10)...)
	waitLag0(t, r2)
	checkDelivered(t, c2, want, bus.DefaultPartitions)
}

// NATS restarts while events flow: the relay backs off, resumes, and
// JetStream ends up with every event once, in order per stream.
func TestNATSRestartMidStream(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			srv := natstest.Start(t, true)
			c := connect(t, srv.URL, bus.Config{ReconnectWait: 50 * time.Millisecond, AckTimeout: 2 * time.Second})
			st := b.open(t, 0)
			r := newRelay(t, c, st, bus.RelayConfig{BatchSize: 50, Backoff: backoff.Config{Max: 200 * time.Millisecond}})
			run(t, r)
			var want []store.Event
			var mu sync.Mutex
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; i < 6; i++ {
					evs := appendMany(t, st, "round"+string(rune('a'+i)), 8, 10)
					mu.Lock()
					want = append(want, evs...)
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
				}
			}()
			time.Sleep(100 * time.Millisecond)
			for i := 0; i < 2; i++ {
				srv.Stop()
				time.Sleep(300 * time.Millisecond)
				srv.Restart()
				time.Sleep(200 * time.Millisecond)
			}
			<-done
			waitLag0(t, r)
			checkDelivered(t, c, want, bus.DefaultPartitions)
			t.Logf("status after restarts: %+v", r.Status())
		})
	}
}

// NATS goes away while the relay drains a backlog, several batches awaiting
// their acks and the next ones read ahead: everything still lands once, in
// order, after it comes back.
func TestNATSRestartMidBacklog(t *testing.T) {
	srv := natstest.Start(t, true)
	c := connect(t, srv.URL, bus.Config{ReconnectWait: 50 * time.Millisecond, AckTimeout: 2 * time.Second})
	st := pgStore(t, pgtest.RandomName("s_"))
	want := appendMany(t, st, "backlog", 40, 100)
	// The server stops from inside the relay, once 200 events are acked:
	// the batches behind them are in flight or read ahead at that moment.
	var acked int
	var once sync.Once
	stopped := make(chan int, 1)
	r := newRelay(t, c, st, bus.RelayConfig{BatchSize: 20, Backoff: backoff.Config{Max: 200 * time.Millisecond}, Acked: func(evs []store.Event) {
		acked += len(evs)
		if acked >= 200 {
			once.Do(func() {
				srv.Stop()
				stopped <- acked
			})
		}
	}})
	run(t, r)
	at := <-stopped
	waitFor(t, "the relay reporting NATS down", func() bool { return r.Status().LastError != nil })
	srv.Restart()
	waitLag0(t, r)
	checkDelivered(t, c, want, bus.DefaultPartitions)
	t.Logf("stopped after %d of %d events; status after the restart: %+v", at, len(want), r.Status())
}

// PostgreSQL goes away (every connection cut, new ones refused) and comes
// back: the relay loses its lease, takes it again and goes on.
func TestPostgresGoesAwayMidStream(t *testing.T) {
	base := pgtest.URL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewProxy(t, u.Host)
	if testURL == "" {
		t.Fatal("no test database")
	}
	tu, _ := url.Parse(testURL)
	tu.Host = proxy.Addr()
	schema := pgtest.RandomName("s_")
	old := postgres.LeaseCheck
	t.Cleanup(func() { postgres.LeaseCheck = old }) // runs after the relay's own cleanup stops it
	postgres.LeaseCheck = 100 * time.Millisecond
	viaProxy, err := postgres.Open(context.Background(), tu.String(), postgres.Config{Context: "visits", Shard: "default", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer viaProxy.Close()
	direct := pgStore(t, schema) // the application, unaffected
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{})
	r := newRelay(t, c, viaProxy, bus.RelayConfig{Backoff: backoff.Config{Max: 200 * time.Millisecond}, LeaderRetry: 100 * time.Millisecond, IdlePoll: 20 * time.Millisecond})
	run(t, r)
	want := appendMany(t, direct, "one", 8, 10)
	waitLag0(t, r)
	proxy.Cut()
	want = append(want, appendMany(t, direct, "two", 8, 10)...)
	waitFor(t, "the relay reporting the database unreachable", func() bool { return r.Status().LastError != nil })
	proxy.Restore()
	want = append(want, appendMany(t, direct, "three", 8, 10)...)
	waitLag0(t, r)
	checkDelivered(t, c, want, bus.DefaultPartitions)
}

func TestConnectToNothingIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := bus.Connect(ctx, bus.Config{URL: "nats://user:secret@127.0.0.1:1"})
	if !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("err = %v; want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestEmbeddedServerIsTheDefault(t *testing.T) {
	dir := t.TempDir()
	c, err := bus.Connect(context.Background(), bus.Config{Embedded: bus.Embedded{Dir: filepath.Join(dir, "nats")}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Embedded() || c.ClientURL() != "" {
		t.Fatalf("embedded = %v, client url %q", c.Embedded(), c.ClientURL())
	}
	st := sqliteStore(t, filepath.Join(dir, "visits.db"))
	r := newRelay(t, c, st, bus.RelayConfig{})
	run(t, r)
	want := appendMany(t, st, "emb", 4, 5)
	waitLag0(t, r)
	checkDelivered(t, c, want, bus.DefaultPartitions)
}

// lowerLimit provisions the visits stream with a 64 KiB message limit and
// then lowers the stream's own limit to 8 KiB behind the Conn's back: the
// relay takes a 20 KiB event for small enough, and JetStream refuses it.
func lowerLimit(t *testing.T) *bus.Conn {
	t.Helper()
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{AckTimeout: time.Minute, Stream: bus.StreamConfig{MaxMsgSize: 64 << 10}})
	ctx := context.Background()
	s, err := c.ProvisionStream(ctx, "visits")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.JetStream().CachedInfo().Config
	cfg.MaxMsgSize = 8 << 10
	if _, err := c.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return c
}

// refusedBacklog appends small events of stream a before and after one
// 20 KiB event of stream b, and returns the small ones and the large one.
func refusedBacklog(t *testing.T, st store.Store, before, after int) (small []store.Event, huge store.Event) {
	t.Helper()
	ctx := context.Background()
	add := func(n int) {
		for range n {
			ev, _ := store.NewEvent("Small", map[string]string{"s": "a"})
			out, err := st.Append(ctx, "a", store.Any, ev)
			if err != nil {
				t.Fatal(err)
			}
			small = append(small, out...)
		}
	}
	add(before)
	big, _ := store.NewEvent("Huge", map[string]string{"blob": strings.Repeat("x", 20<<10)})
	out, err := st.Append(ctx, "b", store.NoStream, big)
	if err != nil {
		t.Fatal(err)
	}
	add(after)
	return small, out[0]
}

// An event too large for JetStream inside a run of batches, never holding
// the others up and never overtaken by them: every stream's order holds,
// the event is quarantined, and nothing waits out AckTimeout (a minute).
func TestTooLargeEventInARun(t *testing.T) {
	for _, tc := range []struct {
		name string
		// relaySkips: NATS's max payload shrinks while the relay runs, so
		// the relay knows the limit and never sends the event, which has no
		// answer; the batches of its run behind it are answered. Otherwise
		// JetStream refuses it (lowerLimit) and ends the run there: the
		// batches sent behind it are dropped and go out again after it.
		relaySkips    bool
		before, after int
	}{
		{"server refuses it", false, 15, 35},
		// It is the backlog's last, which ends the run: JetStream refuses
		// it before its batch sees it, so the relay ends the batch in its
		// place.
		{"server refuses the last", false, 15, 0},
		{"relay skips it", true, 15, 45},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := sqliteStoreMax(t, filepath.Join(t.TempDir(), "large.db"), smallEvents)
			var c *bus.Conn
			var want []store.Event
			var huge store.Event
			var r *bus.Relay
			if tc.relaySkips {
				srv := natstest.Start(t, false)
				c = connect(t, srv.URL, bus.Config{AckTimeout: time.Minute, ReconnectWait: 50 * time.Millisecond})
				r = newRelay(t, c, st, bus.RelayConfig{BatchSize: 10})
				run(t, r)
				waitFor(t, "leadership", func() bool { return r.Status().Leader })
				shrinkPayload(t, srv, c)
				want, huge = refusedBacklog(t, st, tc.before, tc.after)
			} else {
				c = lowerLimit(t)
				want, huge = refusedBacklog(t, st, tc.before, tc.after) // after: more batches than are in flight at once
				r = newRelay(t, c, st, bus.RelayConfig{BatchSize: 10})
				run(t, r)
			}
			waitLag0(t, r)
			checkDelivered(t, c, want, bus.DefaultPartitions)
			q, err := r.Quarantined(context.Background())
			if err != nil || len(q) != 1 || q[0].EventID != huge.ID {
				t.Fatalf("quarantined = %+v, %v; want the huge event", q, err)
			}
			if s := r.Status(); s.Quarantined != 1 || s.LastError != nil {
				t.Fatalf("status %+v; want one quarantined and no error", s)
			}
		})
	}
}

// readFailing is a store whose ReadAll fails once, at the failAt'th call.
type readFailing struct {
	*sqlite.Store
	reads  atomic.Int64
	failAt int64
}

func (s *readFailing) ReadAll(ctx context.Context, after store.Position, limit int) ([]store.Event, error) {
	if s.reads.Add(1) == s.failAt {
		return nil, errors.New("injected read error")
	}
	return s.Store.ReadAll(ctx, after, limit)
}

// A read fails while a run's batches are in flight, one of them holding
// an event JetStream refuses: the relay settles them before it starts
// another run, so nothing of the new run lands ahead of what the refusal
// dropped.
func TestReadErrorMidRunKeepsOrder(t *testing.T) {
	c := lowerLimit(t)
	st := &readFailing{Store: sqliteStoreMax(t, filepath.Join(t.TempDir(), "split.db"), smallEvents), failAt: 3}
	want, huge := refusedBacklog(t, st, 4, 45)
	r := newRelay(t, c, st, bus.RelayConfig{BatchSize: 10, Backoff: backoff.Config{Max: 50 * time.Millisecond}})
	run(t, r)
	waitLag0(t, r)
	checkDelivered(t, c, want, bus.DefaultPartitions)
	if q, err := r.Quarantined(context.Background()); err != nil || len(q) != 1 || q[0].EventID != huge.ID {
		t.Fatalf("quarantined = %+v, %v; want the huge event", q, err)
	}
}
