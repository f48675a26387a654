package browser

import (
	"context"
	"net/http"
	"sync"

	"github.com/switchyard-go/switchyard/status"
	"github.com/switchyard-go/switchyard/store"
)

// overviewData is the overview page: every store with its relay and size,
// every group with its partitions.
type overviewData struct {
	Stores   []storeRow
	Groups   []status.Group
	Replicas []status.Replica
	NATSErr  string
}

type storeRow struct {
	status.Store
	Events   int64
	Exact    bool // Events is a count, not an estimate
	CountErr string
}

func (b *Browser) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	var (
		wg     sync.WaitGroup
		rep    status.Report
		repErr error
	)
	wg.Go(func() { rep, repErr = status.Read(ctx, b.cfg.Conn, b.cfg.Registry) })
	counts := b.counts(ctx)
	wg.Wait()
	data := overviewData{Groups: rep.Groups, Replicas: rep.Replicas}
	if repErr != nil {
		data.NATSErr = scrub(repErr.Error())
		rep.Stores = b.bareStores()
	}
	for _, s := range rep.Stores {
		c := counts[s.Context+"/"+s.Shard]
		s.Err = scrub(s.Err)
		data.Stores = append(data.Stores, storeRow{Store: s, Events: c.n, Exact: c.exact, CountErr: c.err})
	}
	b.render(w, r, http.StatusOK, "overview", "Overview", data)
}

type count struct {
	n     int64
	exact bool
	err   string
}

// counts counts every store's events, the stores in parallel.
func (b *Browser) counts(ctx context.Context) map[string]count {
	var (
		mu  sync.Mutex
		out = map[string]count{}
	)
	b.eachCatalog(func(st store.Store, cat store.Catalog) {
		var c count
		n, exact, err := cat.Count(ctx)
		c.n, c.exact = n, exact
		if err != nil {
			c.err = scrub(err.Error())
		}
		mu.Lock()
		out[st.Context()+"/"+st.Shard()] = c
		mu.Unlock()
	})
	return out
}

// bareStores lists the stores when NATS cannot say more about them.
func (b *Browser) bareStores() []status.Store {
	var out []status.Store
	b.eachStore(func(st store.Store) { out = append(out, status.Store{Context: st.Context(), Shard: st.Shard()}) })
	return out
}

// eachStore calls fn with every store of the registry, in context and
// shard order.
func (b *Browser) eachStore(fn func(store.Store)) {
	reg := b.cfg.Registry
	for _, c := range reg.Contexts() {
		for _, sh := range reg.Shards(c) {
			if st, err := reg.Store(c, sh); err == nil {
				fn(st)
			}
		}
	}
}
