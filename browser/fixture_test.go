package browser_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/browser"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// deployment is what the browser's tests look at: two contexts of two
// shards each on SQLite, embedded NATS, a runner whose billing group
// charges each booked visit (and refuses the poisoned ones while poisoned
// is set), and the browser mounted at /browse/.
type deployment struct {
	reg      *sharding.Registry
	conn     *bus.Conn
	poisoned atomic.Bool
	srv      *httptest.Server
	browser  *browser.Browser
	url      string // the browser's root
}

// VisitBooked is the visits context's event.
type VisitBooked struct {
	Visit  string `json:"visit"`
	Note   string `json:"note,omitempty"`
	Poison bool   `json:"poison,omitempty"`
}

func deploy(t *testing.T, writes bool) *deployment {
	t.Helper()
	dir := t.TempDir()
	d := &deployment{reg: sharding.NewRegistry()}
	d.poisoned.Store(true)
	for _, c := range []string{"visits", "billing"} {
		for _, sh := range []string{"tenant-a", "tenant-b"} {
			st, err := sqlite.Open(context.Background(), sqlite.Config{Context: c, Shard: sh, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.reg.Add(st); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { d.reg.Close() })
	conn, err := bus.Connect(context.Background(), bus.Config{Embedded: bus.Embedded{Dir: filepath.Join(dir, "nats")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d.conn = conn
	d.run(t)
	b, err := browser.New(browser.Config{Registry: d.reg, Conn: conn, Writes: writes, Logger: testrun.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	d.browser = b
	mux := http.NewServeMux()
	mux.Handle("/browse/", http.StripPrefix("/browse", b))
	d.srv = httptest.NewServer(mux)
	t.Cleanup(d.srv.Close)
	d.url = d.srv.URL + "/browse/"
	return d
}

// run starts the runner with the billing group.
func (d *deployment) run(t *testing.T) {
	g := &handlers.Group{Name: "billing", Context: "billing", Source: "visits", MaxAttempts: 2}
	handlers.Handle(g, "charge", "VisitBooked", func(ctx context.Context, v VisitBooked, m handlers.Message) error {
		if v.Poison && d.poisoned.Load() {
			return handlers.Permanent(errors.New("visit " + v.Visit + " cannot be charged: no price list"))
		}
		st, _ := handlers.Store(ctx)
		ev, err := store.NewEvent("ChargeRaised", map[string]any{"visit": v.Visit, "cents": 4200})
		if err != nil {
			return err
		}
		_, err = st.Append(ctx, "Charge-"+v.Visit, store.Any, ev)
		return err
	})
	runner, err := handlers.NewRunner(d.conn, d.reg, handlers.RunnerConfig{Replica: "replica-1", Logger: testrun.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Add(g); err != nil {
		t.Fatal(err)
	}
	testrun.Background(t, "runner", runner.Run)
	<-runner.Ready()
}

// book appends a VisitBooked to visits/shard, caused by cause when it is
// not nil.
func (d *deployment) book(t *testing.T, shard string, v VisitBooked, cause *store.Event) store.Event {
	t.Helper()
	st, err := d.reg.Store("visits", shard)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(v)
	ctx := context.Background()
	if cause != nil {
		ctx = correlation.NewContext(ctx, cause.Metadata)
	}
	out, err := st.Append(ctx, "Visit-"+v.Visit, store.Any, store.Event{Type: "VisitBooked", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// chainAcross books a visit in tenant-a and, caused by it, one in
// tenant-b; billing charges each in its shard: one correlation chain of
// four events in two contexts and two shards.
func (d *deployment) chainAcross(t *testing.T) store.Event {
	t.Helper()
	first := d.book(t, "tenant-a", VisitBooked{Visit: "1"}, nil)
	d.book(t, "tenant-b", VisitBooked{Visit: "2"}, &first)
	d.waitCharged(t, "tenant-a", "1")
	d.waitCharged(t, "tenant-b", "2")
	return first
}

// waitCharged waits for billing's charge of visit in shard.
func (d *deployment) waitCharged(t *testing.T, shard, visit string) {
	t.Helper()
	st, _ := d.reg.Store("billing", shard)
	testrun.Wait(t, "the charge of visit "+visit, 30*time.Second, func() bool {
		evs, err := st.Read(context.Background(), "Charge-"+visit, store.Forward, 0, 1)
		return err == nil && len(evs) == 1
	})
}

// script appends an event whose data and metadata hold markup, as JSON
// allows it unescaped.
func (d *deployment) script(t *testing.T) store.Event {
	t.Helper()
	st, _ := d.reg.Store("visits", "tenant-a")
	out, err := st.Append(context.Background(), "Visit-script", store.Any, store.Event{
		Type:     "VisitBooked",
		Data:     []byte(`{"visit":"x","note":"</pre><script>alert(\"pwned\")</script><img src=x onerror=\"document.title='pwned'\">"}`),
		Metadata: map[string]string{"note": `<script>alert("pwned")</script>`},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}
