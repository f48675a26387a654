package bus_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/backoff"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// testURL is one PostgreSQL database for the run; each store gets a schema.
var testURL string

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(pgtest.Main(m, &testURL))
}

type backend struct {
	name string
	open func(t *testing.T, maxEventBytes int) store.Outbox
}

func backends() []backend {
	return []backend{
		{"postgres", func(t *testing.T, max int) store.Outbox { return pgStoreMax(t, pgtest.RandomName("s_"), max) }},
		{"sqlite", func(t *testing.T, max int) store.Outbox {
			return sqliteStoreMax(t, filepath.Join(t.TempDir(), "default.db"), max)
		}},
	}
}

// smallEvents is the event limit of the stores of the tests that shrink
// NATS's limits: 48 KiB fits the 64 KiB they start with.
const smallEvents = 48 << 10

// pgStore opens the store of (visits, default) in schema, its own pool.
func pgStore(t *testing.T, schema string) *postgres.Store {
	t.Helper()
	return pgStoreMax(t, schema, 0)
}

// pgStoreMax is pgStore taking events of up to maxEventBytes (0: the
// default).
func pgStoreMax(t *testing.T, schema string, maxEventBytes int) *postgres.Store {
	t.Helper()
	if testURL == "" {
		pgtest.URL(t) // skips, or fails under CI=true
		t.Fatal("test database was not created")
	}
	s, err := postgres.Open(context.Background(), testURL, postgres.Config{Context: "visits", Shard: "default", Schema: schema, MaxEventBytes: maxEventBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sqliteStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	return sqliteStoreMax(t, path, 0)
}

// sqliteStoreMax is sqliteStore taking events of up to maxEventBytes (0:
// the default).
func sqliteStoreMax(t *testing.T, path string, maxEventBytes int) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Context: "visits", Shard: "default", Path: path, Synchronous: "normal", MaxEventBytes: maxEventBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func connect(t *testing.T, url string, cfg bus.Config) *bus.Conn {
	t.Helper()
	cfg.URL, cfg.Logger = url, testrun.Logger(t)
	c, err := bus.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run runs r until the test ends.
func run(t *testing.T, r *bus.Relay) (stop func()) {
	t.Helper()
	return testrun.Background(t, "relay", r.Run)
}

func newRelay(t *testing.T, c *bus.Conn, st store.Outbox, cfg bus.RelayConfig) *bus.Relay {
	t.Helper()
	r, err := bus.NewRelay(c, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// appendMany appends streams × perStream events from writers goroutines:
// single appends, batches of three, and batches inside Transact.
func appendMany(t *testing.T, st store.Store, prefix string, streams, perStream int) []store.Event {
	t.Helper()
	var mu sync.Mutex
	var all []store.Event
	var wg sync.WaitGroup
	for s := 0; s < streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("%s-%d", prefix, s)
			for v := 0; v < perStream; {
				n := 1 + (v+s)%3
				if v+n > perStream {
					n = perStream - v
				}
				evs := make([]store.Event, n)
				for i := range evs {
					evs[i], _ = store.NewEvent("Visited", map[string]any{"stream": stream, "v": v + i})
				}
				var out []store.Event
				var err error
				if s%4 == 0 {
					err = st.Transact(context.Background(), func(ctx context.Context) error {
						out, err = st.Append(ctx, stream, store.Exact(int64(v-1)), evs...)
						return err
					})
				} else {
					out, err = st.Append(context.Background(), stream, store.Exact(int64(v-1)), evs...)
				}
				if err != nil {
					t.Errorf("append to %s: %v", stream, err)
					return
				}
				mu.Lock()
				all = append(all, out...)
				mu.Unlock()
				v += n
			}
		}()
		if (s+1)%8 == 0 {
			wg.Wait()
		}
	}
	wg.Wait()
	return all
}

// delivered reads every message of the context's stream, in stream order.
func delivered(t *testing.T, c *bus.Conn, contextName string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.JetStream().Stream(ctx, bus.StreamName(contextName))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := int(info.State.Msgs)
	if n == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
	}
	return out
}

// checkDelivered asserts JetStream holds each of want exactly once, in
// version order per stream, on the right subject, with its metadata.
func checkDelivered(t *testing.T, c *bus.Conn, want []store.Event, partitions int) {
	t.Helper()
	msgs := delivered(t, c, "visits")
	byID := make(map[uuid.UUID]store.Event, len(want))
	for _, ev := range want {
		byID[ev.ID] = ev
	}
	seen := make(map[uuid.UUID]bool, len(msgs))
	last := make(map[string]int64)
	for _, m := range msgs {
		ev, addr, err := bus.Decode(toMsg(m))
		if err != nil {
			t.Fatalf("decode %s: %v", m.Subject(), err)
		}
		w, ok := byID[ev.ID]
		if !ok {
			t.Fatalf("unexpected event %s in JetStream", ev.ID)
		}
		if seen[ev.ID] {
			t.Fatalf("event %s (%s v%d) delivered twice", ev.ID, ev.Stream, ev.Version)
		}
		seen[ev.ID] = true
		if got := m.Headers().Get(jetstream.MsgIDHeader); got != ev.ID.String() {
			t.Fatalf("Nats-Msg-Id = %q, want the event id %s", got, ev.ID)
		}
		if ev.Stream != w.Stream || ev.Version != w.Version || ev.Position != w.Position || string(ev.Data) != string(w.Data) {
			t.Fatalf("delivered %s v%d @%s %s; stored %s v%d @%s %s", ev.Stream, ev.Version, ev.Position, ev.Data, w.Stream, w.Version, w.Position, w.Data)
		}
		if addr.Shard != "default" || addr.Context != "visits" || addr.Partition != bus.Partition(ev.Stream, partitions) {
			t.Fatalf("subject %s: wrong address for stream %s", m.Subject(), ev.Stream)
		}
		if ev.Metadata.Get(correlation.CorrelationID) != w.Metadata.Get(correlation.CorrelationID) || ev.Metadata.Get(correlation.CorrelationID) == "" {
			t.Fatalf("correlation_id %q, stored %q", ev.Metadata.Get(correlation.CorrelationID), w.Metadata.Get(correlation.CorrelationID))
		}
		if prev, ok := last[ev.Stream]; ok && ev.Version != prev+1 {
			t.Fatalf("stream %s: version %d delivered after %d", ev.Stream, ev.Version, prev)
		} else if !ok && ev.Version != 0 {
			t.Fatalf("stream %s: first delivered version is %d", ev.Stream, ev.Version)
		}
		last[ev.Stream] = ev.Version
	}
	if len(seen) != len(want) {
		t.Fatalf("JetStream holds %d of %d events", len(seen), len(want))
	}
}

// waitFor polls cond for up to 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testrun.Wait(t, what, 30*time.Second, cond)
}

func waitLag0(t *testing.T, r *bus.Relay) {
	t.Helper()
	waitFor(t, "lag 0", func() bool {
		n, err := r.Lag(context.Background())
		return err == nil && n == 0
	})
}

func TestRelayDeliversEverythingOnceInOrder(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			srv := natstest.Start(t, false)
			c := connect(t, srv.URL, bus.Config{Stream: bus.StreamConfig{Partitions: 4}})
			st := b.open(t, 0)
			// Some events wait in the store before the relay starts.
			want := appendMany(t, st, "early", 10, 5)
			r := newRelay(t, c, st, bus.RelayConfig{BatchSize: 64})
			run(t, r)
			want = append(want, appendMany(t, st, "visit", 40, 25)...)
			waitLag0(t, r)
			checkDelivered(t, c, want, 4)
			if s := r.Status(); !s.Leader || s.Published != uint64(len(want)) || s.LastError != nil {
				t.Fatalf("status %+v; want leader, %d published, no error", s, len(want))
			}
		})
	}
}

func TestLagCountsWhatJetStreamHasNotAcked(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{})
	st := sqliteStore(t, filepath.Join(t.TempDir(), "lag.db"))
	appendMany(t, st, "lag", 3, 4)
	r := newRelay(t, c, st, bus.RelayConfig{})
	if n, err := r.Lag(context.Background()); err != nil || n != 12 {
		t.Fatalf("lag before relaying = %d, %v; want 12", n, err)
	}
	run(t, r)
	waitLag0(t, r)
}

// toMsg turns a consumed message back into what the relay published.
func toMsg(m jetstream.Msg) *nats.Msg {
	return &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
}

// A stream changed to refuse fast batches after the relay provisioned it:
// the relay's first batch is refused, and it goes on one publish per event.
func TestRelayStreamRefusingFastBatches(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{})
	ctx := context.Background()
	s, err := c.ProvisionStream(ctx, "visits")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.JetStream().CachedInfo().Config
	if !cfg.AllowBatchPublish {
		t.Fatal("provisioned stream does not allow fast batches")
	}
	cfg.AllowBatchPublish = false
	if _, err := c.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	st := sqliteStore(t, filepath.Join(t.TempDir(), "plain.db"))
	want := appendMany(t, st, "plain", 5, 4)
	r := newRelay(t, c, st, bus.RelayConfig{Backoff: backoff.Config{Max: 50 * time.Millisecond}})
	run(t, r)
	waitLag0(t, r)
	checkDelivered(t, c, want, bus.DefaultPartitions)
}
