package browser

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
)

// ChainLimit is how many events of one correlation chain each store
// returns.
const ChainLimit = 1000

// gathered is what every store answered.
type gathered struct {
	Events    []found
	Failed    []failure
	Truncated bool // a store held more than ChainLimit
}

type failure struct{ Store, Err string }

func (g gathered) Failures() string {
	var s []string
	for _, f := range g.Failed {
		s = append(s, f.Store+" ("+f.Err+")")
	}
	return strings.Join(s, ", ")
}

// fanOut runs ask on every store at once and gathers the answers, ordered
// by the time the events were recorded.
func (b *Browser) fanOut(ctx context.Context, ask func(context.Context, store.Catalog) ([]store.Event, error)) gathered {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out gathered
	)
	b.eachStore(func(st store.Store) {
		cat, ok := st.(store.Catalog)
		if !ok {
			return
		}
		wg.Go(func() {
			evs, err := ask(ctx, cat)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Failed = append(out.Failed, failure{st.Context() + "/" + st.Shard(), scrub(err.Error())})
				return
			}
			out.Truncated = out.Truncated || len(evs) >= ChainLimit
			for _, ev := range evs {
				out.Events = append(out.Events, found{Event: ev, Context: st.Context(), Shard: st.Shard()})
			}
		})
	})
	wg.Wait()
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
		return cat.Correlated(ctx, id, ChainLimit)
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
	if id == "" || len(id) > 1024 {
		b.fail(w, r, notFound("%q is not a correlation id", id))
		return
	}
	g := b.gather(r.Context(), id)
	if len(g.Events) == 0 && len(g.Failed) == 0 {
		b.fail(w, r, notFound("no store holds an event of correlation %s", id))
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

// tree links each event under the one its causation_id names. evs are in
// time order, and so is every level of the tree. An event whose cause is
// not an earlier event of the chain is a root: so forged metadata naming
// a later event, or the event itself, can never make a cycle.
func tree(evs []found) []*node {
	at := make(map[string]int, len(evs))
	nodes := make([]*node, len(evs))
	var roots []*node
	for i, f := range evs {
		nodes[i] = &node{found: f}
		if p, ok := at[f.Metadata.Get(correlation.CausationID)]; ok {
			nodes[p].Children = append(nodes[p].Children, nodes[i])
		} else {
			roots = append(roots, nodes[i])
		}
		at[f.ID.String()] = i
	}
	return roots
}

// pathEsc escapes one path segment.
func pathEsc(s string) string { return url.PathEscape(s) }
