package touchtest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/switchyard-go/switchyard/internal/touch"
	"github.com/switchyard-go/switchyard/store"
)

// Touch is one read or write of a store.
type Touch struct {
	Store   string // context/shard
	Op      string // what was done: append to "Visit-42", read "Visit-42", ...
	Write   bool
	Replica bool // read from the store's replica (the store.Reading role)
}

func (t Touch) String() string {
	s := "read "
	if t.Write {
		s = "wrote "
	}
	s += t.Store
	if t.Replica {
		s += " (replica)"
	}
	return s + ": " + t.Op
}

// Recorder records what the code under its ctx read and wrote. It is
// safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	touches []Touch
}

// Record returns ctx recording into a new Recorder. Code given the ctx,
// and every ctx derived from it, reports each store it reads or writes,
// through either backend.
func Record(ctx context.Context) (context.Context, *Recorder) {
	r := &Recorder{}
	return touch.With(ctx, r), r
}

// Touched is what the stores report; see the package doc.
func (r *Recorder) Touched(contextName, shard, op string, write, replica bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.touches = append(r.touches, Touch{Store: contextName + "/" + shard, Op: op, Write: write, Replica: replica})
}

// Touches returns every touch so far, in order.
func (r *Recorder) Touches() []Touch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.touches)
}

// Wrote returns the stores written, each once, sorted.
func (r *Recorder) Wrote() []string {
	return r.names(func(t Touch) bool { return t.Write }, func(t Touch) string { return t.Store })
}

// Read returns the stores read, each once, sorted; a replica read as
// "context/shard (replica)".
func (r *Recorder) Read() []string {
	return r.names(func(t Touch) bool { return !t.Write }, func(t Touch) string {
		if t.Replica {
			return t.Store + " (replica)"
		}
		return t.Store
	})
}

// names returns name of the touches keep keeps, each once, sorted.
func (r *Recorder) names(keep func(Touch) bool, name func(Touch) string) []string {
	var out []string
	for _, t := range r.Touches() {
		if n := name(t); keep(t) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// WroteOnly fails t for every write to a store none of patterns matches
// ("context/shard" with path.Match wildcards, or a context name, as
// store.Isolate reads them). No write at all passes.
func (r *Recorder) WroteOnly(t testing.TB, patterns ...string) {
	t.Helper()
	r.none(t, "wrote", func(x Touch) bool { return x.Write && !matches(t, patterns, x.Store) }, "only "+strings.Join(patterns, ", "))
}

// ReadNothingFrom fails t for every read of a store one of patterns
// matches.
func (r *Recorder) ReadNothingFrom(t testing.TB, patterns ...string) {
	t.Helper()
	r.none(t, "read", func(x Touch) bool { return !x.Write && matches(t, patterns, x.Store) }, "nothing from "+strings.Join(patterns, ", "))
}

// ReadOnlyReplicas fails t for every read of a store's primary where a
// store matching patterns was read: for code that runs in the Reading
// role and should never load the primary.
func (r *Recorder) ReadOnlyReplicas(t testing.TB, patterns ...string) {
	t.Helper()
	r.none(t, "read the primary of", func(x Touch) bool { return !x.Write && !x.Replica && matches(t, patterns, x.Store) }, "only replicas of "+strings.Join(patterns, ", "))
}

// none fails t with each touch bad says is one, and what was wanted.
func (r *Recorder) none(t testing.TB, verb string, bad func(Touch) bool, want string) {
	t.Helper()
	for _, x := range r.Touches() {
		if bad(x) {
			t.Errorf("the code %s %s (%s); want %s", verb, x.Store, x.Op, want)
		}
	}
}

func matches(t testing.TB, patterns []string, name string) bool {
	t.Helper()
	for _, p := range patterns {
		ok, err := store.StoreMatches(p, name)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return true
		}
	}
	return false
}
