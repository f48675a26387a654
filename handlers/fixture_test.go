package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
)

// testURL is one PostgreSQL database for the run; each store gets a schema.
var testURL string

func TestMain(m *testing.M) {
	if os.Getenv(traceChildEnv) != "" {
		os.Exit(traceChildMain())
	}
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(pgtest.Main(m, &testURL))
}

// Booked is the test's domain event.
type Booked struct {
	N      int    `json:"n"`
	Poison bool   `json:"poison,omitempty"`
	Note   string `json:"note,omitempty"`
}

// fixture is one NATS server and the stores of context "visits", one
// PostgreSQL schema per shard, each with an effects table the handlers
// write to.
type fixture struct {
	srv    *natstest.Server
	prefix string
	stores map[string]*postgres.Store
	reg    *sharding.Registry
	relays map[string]*bus.Relay // by shard, once relay ran
}

func newFixture(t *testing.T, shards ...string) *fixture {
	t.Helper()
	if testURL == "" {
		pgtest.URL(t) // skips, or fails under CI=true
		t.Fatal("test database was not created")
	}
	f := &fixture{srv: natstest.Start(t, false), prefix: pgtest.RandomName("h_"), stores: map[string]*postgres.Store{}, reg: sharding.NewRegistry()}
	for _, sh := range shards {
		st := f.open(t, sh)
		if _, err := st.Pool().Exec(context.Background(), `CREATE TABLE `+f.schema(sh)+`.effects (
			id bigserial PRIMARY KEY, proc text NOT NULL, grp text NOT NULL, event_id uuid NOT NULL, stream text NOT NULL, version bigint NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		f.stores[sh] = st
		if err := f.reg.Add(st); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) schema(shard string) string { return f.prefix + "_" + shard[len(shard)-1:] }

// open opens (visits, shard) with its own pool.
func (f *fixture) open(t *testing.T, shard string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), testURL, postgres.Config{Context: "visits", Shard: shard, Schema: f.schema(shard)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func logger(t *testing.T) *slog.Logger { return testrun.Logger(t) }

func connect(t *testing.T, url string) *bus.Conn {
	t.Helper()
	c, err := bus.Connect(context.Background(), bus.Config{URL: url, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// relay runs a relay for every store until the test ends.
func (f *fixture) relay(t *testing.T, c *bus.Conn) {
	t.Helper()
	f.relays = make(map[string]*bus.Relay)
	for shard, st := range f.stores {
		r, err := bus.NewRelay(c, st, bus.RelayConfig{Logger: logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		f.relays[shard] = r
		background(t, r.Run)
	}
}

// background runs fn until the test ends, then cancels it and waits.
func background(t *testing.T, fn func(ctx context.Context) error) {
	t.Helper()
	testrun.Background(t, "background run", fn)
}

// recordEffect is the handler's own SQL, in its transaction, and a derived
// event appended to the same store.
func recordEffect(f *fixture) func(ctx context.Context, v Booked, m handlers.Message) error {
	return recordEffectAs(f, "test")
}

// recordEffectAs is recordEffect in the process named proc.
func recordEffectAs(f *fixture, proc string) func(ctx context.Context, v Booked, m handlers.Message) error {
	return func(ctx context.Context, v Booked, m handlers.Message) error {
		st, ok := handlers.Store(ctx)
		if !ok {
			return errors.New("no store in ctx")
		}
		pg := st.(*postgres.Store)
		tx, ok := pg.Tx(ctx)
		if !ok {
			return errors.New("no transaction in ctx")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+f.schema(m.Shard)+`.effects (proc, grp, event_id, stream, version) VALUES ($1, $2, $3, $4, $5)`,
			proc, m.Group, m.Event.ID, m.Event.Stream, m.Event.Version); err != nil {
			return err
		}
		ev, err := store.NewEvent("Recorded", v)
		if err != nil {
			return err
		}
		// Even versions held for the batch's one statement, odd ones
		// appended at once, which writes those held before them first:
		// either way derived-<stream> follows its source's versions.
		if m.Event.Version%2 == 0 {
			return store.AppendDeferred(ctx, st, "derived-"+m.Event.Stream, store.Any, ev)
		}
		_, err = st.Append(ctx, "derived-"+m.Event.Stream, store.Any, ev)
		return err
	}
}

// appendBooked appends n Booked events to each of streams streams of
// shard, one event per call, and returns them.
func (f *fixture) appendBooked(t *testing.T, shard string, streams, n int, prefix string) []store.Event {
	t.Helper()
	var out []store.Event
	for v := range n {
		for s := range streams {
			ev, err := store.NewEvent("Booked", Booked{N: v})
			if err != nil {
				t.Fatal(err)
			}
			stored, err := f.stores[shard].Append(context.Background(), fmt.Sprintf("%s-%d", prefix, s), store.Exact(int64(v)-1), ev)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, stored...)
		}
	}
	return out
}

type effect struct {
	id      int64
	eventID uuid.UUID
	stream  string
	version int64
}

// effects returns the effects group recorded in shard, in the order
// recorded.
func (f *fixture) effects(t *testing.T, shard, group string) []effect {
	t.Helper()
	rows, err := f.stores[shard].Pool().Query(context.Background(), `SELECT id, event_id, stream, version FROM `+f.schema(shard)+`.effects WHERE grp = $1 ORDER BY id`, group)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []effect
	for rows.Next() {
		var e effect
		if err := rows.Scan(&e.id, &e.eventID, &e.stream, &e.version); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkEffects checks that every event in want has exactly one effect of
// group, and that each stream's effects came in version order.
func (f *fixture) checkEffects(t *testing.T, group string, want map[string][]store.Event) {
	t.Helper()
	for shard, evs := range want {
		got := f.effects(t, shard, group)
		count := map[uuid.UUID]int{}
		last := map[string]int64{}
		for _, e := range got {
			count[e.eventID]++
			if prev, ok := last[e.stream]; ok && e.version != prev+1 {
				t.Errorf("%s: stream %s handled version %d after %d", shard, e.stream, e.version, prev)
			}
			last[e.stream] = e.version
		}
		for _, ev := range evs {
			if count[ev.ID] != 1 {
				t.Errorf("%s: event %s (%s v%d) has %d effects, want 1", shard, ev.ID, ev.Stream, ev.Version, count[ev.ID])
			}
		}
		if len(got) != len(evs) {
			t.Errorf("%s: %d effects for %d events", shard, len(got), len(evs))
		}
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testrun.Wait(t, what, timeout, cond)
}

// settled waits until JetStream has nothing more for group: every message
// of its source, visits, delivered and acknowledged. Whatever was handled
// twice has been handled by then.
func settled(t *testing.T, c *bus.Conn, group string) {
	t.Helper()
	st, err := c.ProvisionStream(context.Background(), "visits")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "group "+group+" settled", 30*time.Second, func() bool {
		for p := range st.Partitions {
			jc, err := st.JetStream().Consumer(context.Background(), consumer.DurableName(group, p))
			if err != nil {
				t.Fatal(err)
			}
			info, err := jc.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	})
}

// counter counts calls per event id.
type counter struct {
	mu sync.Mutex
	n  map[uuid.UUID]int
}

// add counts a call for id and returns how many there were.
func (c *counter) add(id uuid.UUID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[uuid.UUID]int{}
	}
	c.n[id]++
	return c.n[id]
}

// count is how often id was counted.
func (c *counter) count(id uuid.UUID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

func (c *counter) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.n)
}
