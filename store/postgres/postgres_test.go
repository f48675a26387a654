package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
)

func event(t *testing.T, typ string) store.Event {
	t.Helper()
	e, err := store.NewEvent(typ, map[string]string{"t": typ})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// tailer follows ReadAll the way the relay does, recording what it saw.
type tailer struct {
	s    *postgres.Store
	mu   sync.Mutex
	seen []store.Event
	pos  store.Position
}

func (tl *tailer) poll(t *testing.T) int {
	t.Helper()
	n := 0
	for {
		batch, err := tl.s.ReadAll(context.Background(), tl.pos, 50)
		if err != nil {
			t.Errorf("tail: %v", err)
			return n
		}
		if len(batch) == 0 {
			return n
		}
		tl.mu.Lock()
		for _, e := range batch {
			if e.Position.Compare(tl.pos) <= 0 {
				t.Errorf("tail went backwards: %s after %s", e.Position, tl.pos)
			}
			tl.pos = e.Position
		}
		tl.seen = append(tl.seen, batch...)
		tl.mu.Unlock()
		n += len(batch)
	}
}

// check: every committed event seen exactly once, each stream in version order.
func (tl *tailer) check(t *testing.T, committed int) {
	t.Helper()
	ids := map[uuid.UUID]bool{}
	last := map[string]int64{}
	for _, e := range tl.seen {
		if ids[e.ID] {
			t.Errorf("event %s seen twice", e.ID)
		}
		ids[e.ID] = true
		if v, ok := last[e.Stream]; ok && e.Version != v+1 {
			t.Errorf("stream %s: version %d came after %d", e.Stream, e.Version, v)
		} else if !ok && e.Version != 0 {
			t.Errorf("stream %s: first event seen has version %d", e.Stream, e.Version)
		}
		last[e.Stream] = e.Version
	}
	if len(ids) != committed {
		t.Errorf("tail saw %d events, %d were committed", len(ids), committed)
	}
}

// A transaction that took an early position commits after later ones: the
// tail holds the later ones back and then sees every event once, in order.
func TestLateCommit(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	tl := &tailer{s: s}

	old, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback(ctx)
	octx := s.WithTx(ctx, old)
	if _, err := s.Append(octx, "late", store.NoStream, event(t, "Early")); err != nil {
		t.Fatal(err)
	}
	// Younger transactions append and commit.
	for i := 0; i < 5; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("young-%d", i), store.NoStream, event(t, "Young")); err != nil {
			t.Fatal(err)
		}
	}
	if n := tl.poll(t); n != 0 {
		t.Fatalf("tail returned %d events while an older transaction was open: it could skip that one", n)
	}
	if err := old.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitTail(t, tl, 6)
	if tl.seen[0].Stream != "late" {
		t.Errorf("the early transaction's event came at %d, want first", 0)
	}
	tl.check(t, 6)
}

// A transaction running in another database cannot write here, so it does
// not hold ReadAll back (its id is in every snapshot's running list all the
// same).
func TestOtherDatabaseDoesNotHoldBack(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	tx := otherDatabaseTx(t)
	if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil { // it takes an id, older than the append's
		t.Fatal(err)
	}
	tl := &tailer{s: s}
	appendHere(t, s)
	tl.pollUntilSeen(t, "a transaction open in another database held ReadAll back")
}

// otherDatabaseTx begins a transaction in a database of its own.
func otherDatabaseTx(t *testing.T) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	other, err := pgx.Connect(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close(ctx) })
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) })
	return tx
}

// appendHere appends one event to stream "here".
func appendHere(t *testing.T, s *postgres.Store) {
	t.Helper()
	if _, err := s.Append(context.Background(), "here", store.NoStream, event(t, "Here")); err != nil {
		t.Fatal(err)
	}
}

// pollUntilSeen polls until the tailer has read the one event appended,
// failing with why after 3s.
func (tl *tailer) pollUntilSeen(t *testing.T, why string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for tl.poll(t) == 0 {
		if time.Now().After(deadline) {
			t.Fatal(why)
		}
		time.Sleep(5 * time.Millisecond)
	}
	tl.check(t, 1)
}

// Concurrent first reads of a new Store, while its first look-up of other
// databases' transactions is under way, are held back by an open
// transaction of this database all the same (a list not yet looked up
// once let them past it, and its event was skipped for good).
func TestConcurrentFirstReadsAreHeldBack(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	old, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback(ctx)
	if _, err := s.Append(s.WithTx(ctx, old), "late", store.NoStream, event(t, "Early")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("young-%d", i), store.NoStream, event(t, "Young")); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	leaked := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := s.ReadAll(ctx, store.Position{}, 50)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			leaked += len(b)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if leaked > 0 {
		t.Fatalf("%d events returned past an open transaction of this database: its event is skipped for good", leaked)
	}
}

// A transaction of another database begun after the store last looked
// them up holds ReadAll back only until it looks again.
func TestOtherDatabaseBegunSinceTheLookUp(t *testing.T) {
	s := newStore(t, 0)
	tx := otherDatabaseTx(t)
	tl := &tailer{s: s}
	tl.poll(t) // looks them up: none running
	if _, err := tx.Exec(context.Background(), `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	appendHere(t, s)
	tl.pollUntilSeen(t, "a transaction of another database begun since the look-up held ReadAll back for good")
}

// A transaction that took its id before an append holds ReadAll back from
// that append until it ends: HeldBack names it, and nothing once it ended.
func TestHeldBackNamesTheTransaction(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	if h, ok, err := s.HeldBack(ctx, store.Position{}); err != nil || ok {
		t.Fatalf("empty log: HeldBack = %v, %v, %v", h, ok, err)
	}
	older, pid := pgtest.OpenTransaction(t, s.Pool())
	if _, err := older.Exec(ctx, `SELECT 'the latest statement'`); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, err := s.Append(ctx, "held", store.NoStream, event(t, "Held")); err != nil {
		t.Fatal(err)
	}
	h, ok, err := s.HeldBack(ctx, store.Position{})
	if err != nil || !ok {
		t.Fatalf("HeldBack = %v, %v, %v: want the open transaction", h, ok, err)
	}
	if h.PID != pid || h.Transaction == 0 || h.State != "idle in transaction" || h.Query != `SELECT 'the latest statement'` || h.Began.After(before) ||
		h.Since.Before(before.Add(-time.Second)) || h.Since.After(time.Now()) {
		t.Errorf("HeldBack = %+v: want pid %d, idle in transaction since before %v, its latest statement, the event recorded after it", h, pid, before)
	}
	if got, err := s.ReadAll(ctx, store.Position{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("ReadAll while held = %d events, %v", len(got), err)
	}
	if err := older.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if h, ok, err := s.HeldBack(ctx, store.Position{}); err != nil || ok {
		t.Errorf("after the commit: HeldBack = %v, %v, %v", h, ok, err)
	}
	if got, err := s.ReadAll(ctx, store.Position{}, 10); err != nil || len(got) != 1 {
		t.Errorf("ReadAll after the commit = %d events, %v", len(got), err)
	}
}

// The old-transaction-id case: a transaction takes its id early (it wrote
// an application row), a younger one appends version 0 and commits, then the
// old one appends version 1. Ordering by transaction id alone would put
// version 1 first.
func TestOldTransactionAppendsLaterVersion(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	tl := &tailer{s: s}
	old, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback(ctx)
	var xid string
	if err := old.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil { // the application's row
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "Visit-1", store.NoStream, event(t, "Scheduled")); err != nil {
		t.Fatal(err)
	}
	v1, err := s.Append(s.WithTx(ctx, old), "Visit-1", store.Exact(0), event(t, "Confirmed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(v1[0].Position.Commit) == xid {
		t.Errorf("version 1's commit key is its transaction's id %s: it would sort before version 0", xid)
	}
	waitTail(t, tl, 2)
	tl.check(t, 2)
	if tl.seen[0].Version != 0 || tl.seen[1].Version != 1 {
		t.Errorf("tail order: v%d then v%d", tl.seen[0].Version, tl.seen[1].Version)
	}
}

func waitTail(t *testing.T, tl *tailer, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(tl.seen) < want && time.Now().Before(deadline) {
		tl.poll(t)
		time.Sleep(2 * time.Millisecond)
	}
}

// Many writers, some holding transactions open with early ids and random
// delays, while a tail follows: every event once, streams in order.
func TestLateCommitStress(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s := newStore(t, 0)
	ctx := context.Background()
	tl := &tailer{s: s}
	stop := make(chan struct{})
	tailDone := make(chan struct{})
	go func() {
		defer close(tailDone)
		for {
			select {
			case <-stop:
				return
			default:
				tl.poll(t)
			}
		}
	}()
	const writers, perWriter, streams = 8, 40, 6
	var committed sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for w := 0; w < writers; w++ {
		committed.Add(1)
		go func(w int) {
			defer committed.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < perWriter; i++ {
				stream := fmt.Sprintf("shared-%d", rng.IntN(streams))
				n := 1 + rng.IntN(3)
				err := s.Transact(ctx, func(ctx context.Context) error {
					tx, _ := s.Tx(ctx)
					if rng.IntN(2) == 0 { // take the transaction id early
						if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
							return err
						}
						time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
					}
					evs := make([]store.Event, n)
					for j := range evs {
						evs[j] = event(t, "Stressed")
					}
					if _, err := s.Append(ctx, stream, store.Any, evs...); err != nil {
						return err
					}
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond) // commit late
					return nil
				})
				if errors.Is(err, store.ErrWrongExpectedVersion) {
					continue // lost a race inside a transaction: the caller retries or not
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		}(w)
	}
	committed.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for {
		tl.mu.Lock()
		n := len(tl.seen)
		tl.mu.Unlock()
		if n >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-tailDone
	tl.poll(t)
	tl.check(t, total)
	t.Logf("%d events from %d writers, tail saw %d", total, writers, len(tl.seen))
}

// viaProxy puts a proxy the test can cut before the server of base, and
// returns it and base's URL through it.
func viaProxy(t *testing.T, base string) (*pgtest.Proxy, *url.URL) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	return proxy, u
}

// The database goes away mid-append, several times: appends fail with an
// error, never half-written; an error that does not say the outcome is
// unknown wrote nothing; once it is back the store works again, and
// retrying with the same event IDs is safe.
func TestDatabaseGoesAway(t *testing.T) {
	base := database(t)
	proxy, u := viaProxy(t, base)
	ctx := context.Background()
	schema := pgtest.RandomName("s_")
	s, err := postgres.Open(ctx, u.String()+"&connect_timeout=2", postgres.Config{Context: "visits", Shard: "default", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	direct, err := postgres.Open(ctx, base, postgres.Config{Context: "visits", Shard: "default", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	var unknown atomic.Int64

	const writers = 4
	var failures sync.Map
	var wg sync.WaitGroup
	done := make(chan struct{})
	written := make([]int, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for b := 0; ; b++ {
				select {
				case <-done:
					return
				default:
				}
				evs := []store.Event{event(t, "A"), event(t, "B"), event(t, "C")}
				for i := range evs {
					evs[i].ID = uuid.Must(uuid.NewV7())
				}
				stream := fmt.Sprintf("w%d-b%d", w, b)
				maybe := false // an attempt may have written the events
				for attempt := 0; ; attempt++ {
					actx, cancel := context.WithTimeout(ctx, 3*time.Second)
					_, err := s.Append(actx, stream, store.NoStream, evs...)
					cancel()
					if err == nil {
						break
					}
					var se *store.Error
					if !errors.As(err, &se) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("append while the database was away: %T %v", err, err)
						return
					}
					if errors.Is(err, store.ErrOutcomeUnknown) {
						unknown.Add(1)
						maybe = true
					} else if !maybe {
						if got, rerr := direct.Read(ctx, stream, store.Forward, 0, 10); rerr != nil || len(got) != 0 {
							t.Errorf("%s: append failed with %v, which says nothing was written, yet the stream holds %d events (%v)", stream, err, len(got), rerr)
						}
					}
					failures.Store(stream, err.Error())
					if attempt > 100 {
						t.Errorf("%s: still failing: %v", stream, err)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				written[w] = b + 1
			}
		}(w)
	}
	for i := 0; i < 3; i++ {
		time.Sleep(80 * time.Millisecond)
		proxy.Cut()
		time.Sleep(150 * time.Millisecond)
		proxy.Restore()
	}
	time.Sleep(80 * time.Millisecond)
	close(done)
	wg.Wait()
	n := 0
	failures.Range(func(k, v any) bool { n++; return true })
	if n == 0 {
		t.Error("no append failed: the cuts missed every append")
	}
	for w := 0; w < writers; w++ {
		for b := 0; b < written[w]; b++ {
			got, err := s.Read(ctx, fmt.Sprintf("w%d-b%d", w, b), store.Forward, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Errorf("stream w%d-b%d has %d events, want 3", w, b, len(got))
			}
		}
	}
	if written[0] == 0 {
		t.Error("writer 0 wrote nothing")
	}
	t.Logf("%d batches failed at least once and were retried (%d failures of unknown outcome); %v written per writer", n, unknown.Load(), written)
}

func TestOpenCreatesDatabaseAndMigratesOnce(t *testing.T) {
	base := pgtest.URL(t)
	name := pgtest.RandomName("sw_open_")
	dsn := pgtest.WithDatabase(t, base, name)
	ctx := context.Background()
	t.Cleanup(func() { postgres.DropDatabase(ctx, dsn) })
	if _, err := postgres.Open(ctx, dsn, postgres.Config{Context: "visits", Shard: "default"}); err == nil || !strings.Contains(err.Error(), "create_databases") {
		t.Fatalf("open of a missing database without CreateDatabase = %v; want an error that hints at create_databases", err)
	}
	// Several processes starting together migrate once; pool settings in
	// the DSN do not reach the server that creates the database.
	if strings.Contains(dsn, "?") {
		dsn += "&pool_max_conns=4"
	} else {
		dsn += "?pool_max_conns=4"
	}
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, 4)
	errs := make([]error, 4)
	for i := range stores {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(ctx, dsn, postgres.Config{Context: "visits", Shard: "default", CreateDatabase: true})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var versions []int
	rows, err := stores[0].Pool().Query(ctx, `SELECT version FROM switchyard.sw_schema_version ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != postgres.SchemaVersion() {
		t.Errorf("schema versions recorded: %v, want 1..%d once each", versions, postgres.SchemaVersion())
	}
	if _, err := stores[1].Append(ctx, "s", store.NoStream, event(t, "E")); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRefusesUnsafeNames(t *testing.T) {
	bad := []string{"", "a.b", "a*", ">", "a b", "a\x00", `a"b`, "a'b", "A", "-a", strings.Repeat("a", 64), "x;drop"}
	for _, name := range bad {
		for _, cfg := range []postgres.Config{
			{Context: name, Shard: "default"},
			{Context: "visits", Shard: name},
			{Context: "visits", Shard: "default", Schema: name},
		} {
			if cfg.Schema == "" && name == "" && cfg.Context != "" && cfg.Shard != "" {
				continue
			}
			err := cfg.Validate()
			var inv *store.InvalidError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
				t.Errorf("config %+v: got %v, want an InvalidError naming %q", cfg, err, name)
			}
		}
	}
	err := postgres.Config{Context: "a.b", Shard: "c d", MaxEventBytes: -1}.Validate()
	for _, want := range []string{`context "a.b"`, `shard "c d"`, "max event bytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("joined validation error %v does not mention %s", err, want)
		}
	}
	if _, err := postgres.Open(context.Background(), "postgres://127.0.0.1:5432/x", postgres.Config{Context: "x y", Shard: "default"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("open with a bad context: %v", err)
	}
}

func TestBadDSNDoesNotLeakPassword(t *testing.T) {
	for _, dsn := range []string{"postgres://bob:hunter2@127.0.0.1:notaport/db", "host=x password=hunter2 port=notaport"} {
		_, err := postgres.Open(context.Background(), dsn, postgres.Config{Context: "visits", Shard: "default"})
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("open %q: error %v shows the password", dsn, err)
		}
	}
}

// A transaction that rolls back leaves a hole in the positions (a "dead
// gap"): the tail must not wait for it.
func TestDeadGapDoesNotStall(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	tl := &tailer{s: s}
	if _, err := s.Append(ctx, "before", store.NoStream, event(t, "A")); err != nil {
		t.Fatal(err)
	}
	rolledBack := errors.New("rolled back")
	err := s.Transact(ctx, func(ctx context.Context) error {
		if _, err := s.Append(ctx, "ghost", store.NoStream, event(t, "Ghost"), event(t, "Ghost")); err != nil {
			return err
		}
		return rolledBack
	})
	if !errors.Is(err, rolledBack) {
		t.Fatal(err)
	}
	// A failed append consumes positions too.
	if _, err := s.Append(ctx, "before", store.NoStream, event(t, "Conflict")); !errors.Is(err, store.ErrWrongExpectedVersion) {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "after", store.NoStream, event(t, "B")); err != nil {
		t.Fatal(err)
	}
	waitTail(t, tl, 2)
	tl.check(t, 2)
	if len(tl.seen) == 2 && tl.seen[1].Stream != "after" {
		t.Errorf("tail saw %s second, want after", tl.seen[1].Stream)
	}
}

func TestRedactQuotedPassword(t *testing.T) {
	_, err := postgres.Open(context.Background(), "host=x password='a b c' port=notaport", postgres.Config{Context: "visits", Shard: "default"})
	if err == nil || strings.Contains(err.Error(), "b c") {
		t.Errorf("error %v shows the password", err)
	}
}

// The store works in every pgx query mode, including those a connection
// pooler such as pgbouncer calls for (no prepared statements): appends of
// one event and of several, links, the inbox, the quarantine and reads.
func TestQueryExecModes(t *testing.T) {
	base := database(t)
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			s, err := postgres.Open(ctx, base+"&default_query_exec_mode="+mode, postgres.Config{Context: "visits", Shard: "default", Schema: pgtest.RandomName("s_")})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ev := func(n int) store.Event {
				e, _ := store.NewEvent("Visited", map[string]int{"n": n})
				return e
			}
			out, err := s.Append(ctx, "v-1", store.NoStream, ev(1))
			if err != nil {
				t.Fatalf("append one: %v", err)
			}
			one := out[0]
			out, err = s.Append(ctx, "v-1", store.Exact(0), ev(2), ev(3))
			if err != nil {
				t.Fatalf("append two: %v", err)
			}
			two, three := out[0], out[1]
			if err := s.Link(ctx, "all", store.NoStream, one.ID, three.ID); err != nil {
				t.Fatalf("link: %v", err)
			}
			if first, err := s.MarkHandled(ctx, "g", one.ID); err != nil || !first {
				t.Fatalf("mark handled = %v, %v", first, err)
			}
			q := store.Quarantined{EventID: two.ID, Type: "Visited", Stream: "v-1", Version: 1, Reason: "test", At: time.Now().UTC()}
			if err := s.SaveCheckpoint(ctx, "r", store.Position{}, q); err != nil {
				t.Fatalf("save quarantine: %v", err)
			}
			if got, err := s.Quarantined(ctx, "r"); err != nil || len(got) != 1 || got[0].EventID != two.ID {
				t.Fatalf("quarantine = %+v, %v", got, err)
			}
			all, err := s.ReadAll(ctx, store.Position{}, 10)
			if err != nil || len(all) != 3 || all[0].ID != one.ID || all[2].ID != three.ID {
				t.Fatalf("read all = %d events, %v", len(all), err)
			}
			linked, err := s.Read(ctx, "all", store.Forward, 0, 10)
			if err != nil || len(linked) != 2 || linked[1].ID != three.ID {
				t.Fatalf("read link = %d events, %v", len(linked), err)
			}
			// In a transaction: one event, a batch for the inbox, and the
			// application's own query taking a uuid.UUID (RegisterUUID).
			err = s.Transact(ctx, func(ctx context.Context) error {
				if _, err := s.Append(ctx, "v-1", store.Exact(2), ev(4)); err != nil {
					return err
				}
				if first, err := s.MarkAllHandled(ctx, "g", []uuid.UUID{one.ID, two.ID}); err != nil || first[0] || !first[1] {
					return fmt.Errorf("mark all handled = %v, %v", first, err)
				}
				// Held appends, in one statement of arrays.
				if err := store.AppendDeferred(ctx, s, "v-1", store.Exact(3), ev(5)); err != nil {
					return err
				}
				if err := store.AppendDeferred(ctx, s, "v-2", store.NoStream, ev(6), ev(7)); err != nil {
					return err
				}
				tx, _ := s.Tx(ctx)
				var text string
				if err := tx.QueryRow(ctx, `SELECT $1::uuid::text`, three.ID).Scan(&text); err != nil || text != three.ID.String() {
					return fmt.Errorf("uuid.UUID parameter read back as %q, %v", text, err)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("transaction: %v", err)
			}
			if all, err := s.ReadAll(ctx, store.Position{}, 10); err != nil || len(all) != 7 || all[6].Stream != "v-2" || all[4].Version != 4 {
				t.Fatalf("after the transaction, read all = %d events, %v; want 7, the held ones last", len(all), err)
			}
		})
	}
}

// A REPEATABLE READ transaction whose snapshot predates another's append
// to the stream cannot append there: the append fails with PostgreSQL's
// serialization failure, a conflict worth trying the transaction again,
// and nothing is written.
func TestRepeatableReadConflictFails(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	tx, err := s.Pool().BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // rolled back by the failure
	txCtx := s.WithTx(ctx, tx)
	if got, err := s.Read(txCtx, "Visit-1", store.Forward, 0, 1); err != nil || len(got) != 0 { // the snapshot
		t.Fatalf("read = %d events, %v", len(got), err)
	}
	if _, err := s.Append(ctx, "Visit-1", store.NoStream, event(t, "Scheduled")); err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(txCtx, "Visit-1", store.Any, event(t, "Confirmed"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		t.Fatalf("append in the older snapshot: %v, want a serialization failure (40001)", err)
	}
	if got, err := s.Read(ctx, "Visit-1", store.Forward, 0, 10); err != nil || len(got) != 1 {
		t.Errorf("stream holds %d events (%v), want the one appended outside", len(got), err)
	}
}

// RegisterUUID plans a uuid.UUID parameter as a pgtype.UUID, in both
// formats, where pgx alone goes through its driver.Valuer.
func TestRegisterUUID(t *testing.T) {
	id := uuid.Must(uuid.NewV7())
	m := pgtype.NewMap()
	postgres.RegisterUUID(m)
	for _, format := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
		plan := m.PlanEncode(pgtype.UUIDOID, format, id)
		want, err := m.Encode(pgtype.UUIDOID, format, pgtype.UUID{Bytes: id, Valid: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := plan.Encode(id, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("format %d: encoded %x, %v; want %x", format, got, err, want)
		}
		if name := fmt.Sprintf("%T", plan); strings.Contains(name, "DriverValuer") {
			t.Errorf("format %d: planned through %s", format, name)
		}
	}
}

// The database out of reach is ErrUnavailable, for an append, a
// transaction and opening a store — also when ctx runs out while
// connecting — and a statement's own failure is not.
func TestUnreachableIsUnavailable(t *testing.T) {
	proxy, u := viaProxy(t, database(t))
	ctx := context.Background()
	s, err := postgres.Open(ctx, u.String(), postgres.Config{Context: "visits", Shard: "default", Schema: pgtest.RandomName("s_")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "s", store.NoStream, event(t, "A")); err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(ctx, "s", store.NoStream, event(t, "A"))
	if !errors.Is(err, store.ErrWrongExpectedVersion) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a conflict: %v; want ErrWrongExpectedVersion, not ErrUnavailable", err)
	}
	proxy.Cut()
	defer proxy.Restore()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	for name, op := range map[string]func() error{
		"append":   func() error { _, err := s.Append(short, "t", store.Any, event(t, "B")); return err },
		"transact": func() error { return s.Transact(short, func(context.Context) error { return nil }) },
		"open": func() error {
			_, err := postgres.Open(short, u.String(), postgres.Config{Context: "visits", Shard: "other"})
			return err
		},
	} {
		if err := op(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the database out of reach: %v; want ErrUnavailable", name, err)
		}
	}
}
