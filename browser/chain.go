package browser

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/backend"
	"github.com/switchyard-go/switchyard/store"
)

// ChainLimit is how many events of one correlation chain each store
// returns.
const ChainLimit = 1000

// gathered is what every store answered.
type gathered struct {
	Events    []found
	Failed    []failure
	Truncated bool // a store holds more than ChainLimit
}

type failure struct{ Store, Err string }

// Failures names the stores that did not answer, and why.
func (g gathered) Failures() string {
	var s []string
	for _, f := range g.Failed {
		s = append(s, f.Store+" ("+f.Err+")")
	}
	return strings.Join(s, ", ")
}

// eachCatalog runs fn on every store that can be browsed, all at once,
// and waits for them.
func (b *Browser) eachCatalog(fn func(st store.Store, cat store.Catalog)) {
	var wg sync.WaitGroup
	b.eachStore(func(st store.Store) {
		if cat, ok := st.(store.Catalog); ok {
			wg.Go(func() { fn(st, cat) })
		}
	})
	wg.Wait()
}

// fanOut asks every store at once and gathers the answers, ordered by the
// time the events were recorded.
func (b *Browser) fanOut(ctx context.Context, ask func(context.Context, store.Catalog) ([]store.Event, error)) gathered {
	var (
		mu  sync.Mutex
		out gathered
	)
	b.eachCatalog(func(st store.Store, cat store.Catalog) {
		evs, err := ask(ctx, cat)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			out.Failed = append(out.Failed, failure{st.Context() + "/" + st.Shard(), scrub(err.Error())})
			return
		}
		if len(evs) > ChainLimit {
			evs, out.Truncated = evs[:ChainLimit], true
		}
		for _, ev := range evs {
			out.Events = append(out.Events, found{Event: ev, Context: st.Context(), Shard: st.Shard()})
		}
	})
	slices.SortStableFunc(out.Events, func(a, b found) int {
		return cmp.Or(a.RecordedAt.Compare(b.RecordedAt), cmp.Compare(a.Context, b.Context), cmp.Compare(a.Shard, b.Shard), a.Position.Compare(b.Position))
	})
	return out
}

// gather reads one correlation chain from every store.
func (b *Browser) gather(ctx context.Context, id string) gathered {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return b.fanOut(ctx, func(ctx context.Context, cat store.Catalog) ([]store.Event, error) {
		return cat.Correlated(ctx, id, ChainLimit+1)
	})
}

// node is an event of the causation tree with the events it caused.
type node struct {
	found
	Children []*node
}

// tick is an event on the timeline.
type tick struct {
	found
	After time.Duration // since the chain's first event
}

type chainData struct {
	ID       string
	Roots    []*node
	Timeline []tick
	Stores   int // how many stores hold events of it
	gathered
}

// chain shows every event of a correlation chain, across all stores, as a
// causation tree and as a timeline.
func (b *Browser) chain(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := backend.CheckCorrelation(id, ChainLimit+1); err != nil {
		b.fail(w, r, notFound("%q is not a correlation id: %v", id, err))
		return
	}
	g := b.gather(r.Context(), id)
	switch {
	case len(g.Events) == 0 && len(g.Failed) == 0:
		b.fail(w, r, notFound("no store holds an event of correlation %s", id))
		return
	case len(g.Events) == 0:
		b.fail(w, r, &pageError{Status: http.StatusServiceUnavailable, Message: "no store answered: " + g.Failures()})
		return
	}
	d := chainData{ID: id, Roots: tree(g.Events), gathered: g}
	seen := map[string]bool{}
	for _, f := range g.Events {
		d.Timeline = append(d.Timeline, tick{found: f, After: f.RecordedAt.Sub(g.Events[0].RecordedAt)})
		seen[f.Context+"/"+f.Shard] = true
	}
	d.Stores = len(seen)
	b.render(w, r, http.StatusOK, "chain", "Correlation "+short(id), d)
}

// tree links each event under the one its causation_id names, wherever
// the clocks of their stores put them; an event whose cause is not in the
// chain, or would close a cycle (forged metadata), is a root. evs are in
// time order, and so is every level of the tree.
func tree(evs []found) []*node {
	nodes := make(map[string]*node, len(evs))
	for _, f := range evs {
		nodes[f.ID.String()] = &node{found: f}
	}
	parent := func(n *node) *node { return nodes[n.Metadata.Get(correlation.CausationID)] }
	var roots []*node
	for _, f := range evs {
		n := nodes[f.ID.String()]
		p := parent(n)
		if p == nil || p == n || reaches(p, n, parent, len(evs)) {
			roots = append(roots, n)
			continue
		}
		p.Children = append(p.Children, n)
	}
	return roots
}

// reaches says whether going up from p through parent meets n: linking n
// under p would then close a cycle.
func reaches(p, n *node, parent func(*node) *node, limit int) bool {
	for i := 0; p != nil && i <= limit; i++ {
		if p == n {
			return true
		}
		p = parent(p)
	}
	return false
}
