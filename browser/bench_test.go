package browser_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/switchyard-go/switchyard/browser"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// The size of the benchmarks' store: benchStreams streams of
// benchPerStream events, each stream one correlation chain.
const (
	benchStreams   = 10_000
	benchPerStream = 100
)

// BenchmarkPages measures the server time of the browser's pages over a
// store of one million events (SQLite; PostgreSQL too when
// SWITCHYARD_TEST_POSTGRES_URL is set). Filling each store takes a while.
//
//	go test ./browser -run '^$' -bench Pages -benchtime 200x
func BenchmarkPages(b *testing.B) {
	backends := map[string]func(b *testing.B) store.Store{"sqlite": sqliteStore}
	if os.Getenv("SWITCHYARD_TEST_POSTGRES_URL") != "" {
		backends["postgres"] = postgresStore
	}
	for name, open := range backends {
		b.Run(name, func(b *testing.B) {
			st := open(b)
			mid := fill(b, st)
			h := benchBrowser(b, st)
			stream := "Visit-" + strconv.Itoa(benchStreams/2)
			page := func(name, path string) {
				b.Run(name, func(b *testing.B) {
					for b.Loop() {
						w := httptest.NewRecorder()
						h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
						if w.Code != http.StatusOK {
							b.Fatalf("%s: %d\n%s", path, w.Code, w.Body.String())
						}
					}
				})
			}
			page("stream-last-page", "/stores/visits/default/streams/"+stream)
			page("stream-first-page", "/stores/visits/default/streams/"+stream+"?from=0")
			page("event", "/stores/visits/default/events/"+mid.ID.String())
			page("streams-by-prefix", "/stores/visits/default/?prefix=Visit-5")
			page("chain", "/chains/"+mid.Metadata.Get(correlation.CorrelationID))
		})
	}
}

func sqliteStore(b *testing.B) store.Store {
	st, err := sqlite.Open(context.Background(), sqlite.Config{Context: "visits", Shard: "default", Dir: b.TempDir(), Synchronous: "normal"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func postgresStore(b *testing.B) store.Store {
	st, err := postgres.Open(context.Background(), pgtest.Database(b), postgres.Config{Context: "visits", Shard: "default"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// fill appends the benchmark's events, eight writers at once, and returns
// an event from the middle of a middle stream.
func fill(b *testing.B, st store.Store) store.Event {
	b.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		mid  store.Event
		errs = make(chan error, 8)
	)
	for w := range 8 {
		wg.Go(func() {
			for s := w; s < benchStreams; s += 8 {
				evs, err := appendStream(st, s)
				if err != nil {
					errs <- err
					return
				}
				if s == benchStreams/2 {
					mu.Lock()
					mid = evs[benchPerStream/2]
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return mid
}

// appendStream appends stream s's events: the first starts a chain that
// the others continue.
func appendStream(st store.Store, s int) ([]store.Event, error) {
	name := "Visit-" + strconv.Itoa(s)
	first, err := st.Append(context.Background(), name, store.NoStream, store.Event{Type: "VisitBooked", Data: []byte(`{"visit":` + strconv.Itoa(s) + `}`)})
	if err != nil {
		return nil, err
	}
	ctx := correlation.NewContext(context.Background(), first[0].Metadata)
	rest := make([]store.Event, benchPerStream-1)
	for i := range rest {
		rest[i] = store.Event{Type: "VisitMoved", Data: []byte(fmt.Sprintf(`{"visit":%d,"to":"room %d","note":"%0200d"}`, s, i, i))}
	}
	more, err := st.Append(ctx, name, store.Exact(0), rest...)
	return append(first, more...), err
}

// benchBrowser is the browser over st alone, on an embedded NATS.
func benchBrowser(b *testing.B, st store.Store) http.Handler {
	reg := sharding.NewRegistry()
	if err := reg.Add(st); err != nil {
		b.Fatal(err)
	}
	conn, err := bus.Connect(context.Background(), bus.Config{Embedded: bus.Embedded{Dir: filepath.Join(b.TempDir(), "nats")}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	h, err := browser.New(browser.Config{Registry: reg, Conn: conn})
	if err != nil {
		b.Fatal(err)
	}
	return h
}
