package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/store"
)

// The failure policy's classes: what is dead-lettered at once, what waits
// for the infrastructure without counting, and what counts (everything
// else, conflicts and timeouts included).
func TestErrorClasses(t *testing.T) {
	conflict := &store.WrongExpectedVersionError{Stream: "s", Expected: store.NoStream, Actual: 3}
	for _, tc := range []struct {
		name                   string
		err                    error
		permanent, unavailable bool
	}{
		{"conflict", conflict, false, false},
		{"wrapped conflict", fmt.Errorf("charge: %w", conflict), false, false},
		{"handler timeout", context.DeadlineExceeded, false, false},
		{"plain", errors.New("boom"), false, false},
		{"panic", &handlers.PanicError{Value: "x"}, false, false},
		{"bad input", &store.InvalidError{Field: "f", Reason: "r"}, true, false},
		{"permanent", handlers.Permanent(errors.New("no")), true, false},
		{"refused", &handlers.SecurityError{Subject: "s", Reason: "forged"}, true, false},
		{"database down", &store.Error{Op: "append", Err: errors.New("dial"), Unavailable: true}, false, true},
		{"database error", &store.Error{Op: "append", Err: errors.New("syntax")}, false, false},
		{"nats down", fmt.Errorf("%w: no servers", bus.ErrUnavailable), false, true},
		{"marked", handlers.Unavailable(errors.New("payment service down")), false, true},
		{"permanent wins", handlers.Unavailable(handlers.Permanent(errors.New("no"))), true, false},
		{"nil", nil, false, false},
	} {
		if got := handlers.IsPermanent(tc.err); got != tc.permanent {
			t.Errorf("%s: IsPermanent = %v, want %v", tc.name, got, tc.permanent)
		}
		if got := handlers.IsUnavailable(tc.err); got != tc.unavailable {
			t.Errorf("%s: IsUnavailable = %v, want %v", tc.name, got, tc.unavailable)
		}
	}
}

// sharing returns n stream names (prefix-0, prefix-1, ...) that share
// stream's partition.
func sharing(stream, prefix string, n int) []string {
	var out []string
	p := bus.Partition(stream, bus.DefaultPartitions)
	for i := 0; len(out) < n; i++ {
		if s := fmt.Sprintf("%s-%d", prefix, i); bus.Partition(s, bus.DefaultPartitions) == p {
			out = append(out, s)
		}
	}
	return out
}

// parked waits until group has letters dead letters, each with each
// messages parked behind it, and returns them.
func parked(t *testing.T, c *bus.Conn, group string, letters, each int, what string) (*deadletter.Queue, []deadletter.Letter) {
	t.Helper()
	q, err := deadletter.Provision(context.Background(), c, "visits")
	if err != nil {
		t.Fatal(err)
	}
	var got []deadletter.Letter
	waitFor(t, what, 30*time.Second, func() bool {
		if got, err = q.List(context.Background(), group, 0, 10); err != nil {
			t.Fatal(err)
		}
		return len(got) == letters && !slices.ContainsFunc(got, func(dl deadletter.Letter) bool { return dl.Parked != each })
	})
	return q, got
}

// appendTo appends n Booked events to stream of shard, versions from on.
func (f *fixture) appendTo(t *testing.T, shard, stream string, from, n int) []store.Event {
	t.Helper()
	var out []store.Event
	for v := from; v < from+n; v++ {
		ev, _ := store.NewEvent("Booked", Booked{N: v})
		got, err := f.stores[shard].Append(context.Background(), stream, store.Exact(int64(v)-1), ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
	}
	return out
}

// versions lists the versions of stream that group has effects for, in
// the order they were recorded.
func (f *fixture) versions(t *testing.T, shard, group, stream string) []int64 {
	t.Helper()
	var out []int64
	for _, e := range f.effects(t, shard, group) {
		if e.stream == stream {
			out = append(out, e.version)
		}
	}
	return out
}

func upTo(from, to int64) []int64 {
	var out []int64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

// A handler that always conflicts, and one that always runs out of time,
// are tried MaxAttempts times and dead-lettered with the reason and the
// attempt count; the other streams of their partition go on.
func TestBoundedFailuresAreDeadLettered(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	ctx := context.Background()
	if _, err := f.stores["tenant-a"].Append(ctx, "taken", store.NoStream, mustBooked(t)); err != nil {
		t.Fatal(err)
	}
	others := sharing("conflicts", "other", 4)
	record := recordEffect(f)
	var tries atomic.Int64
	g := &handlers.Group{Name: "effects", Context: "visits", MaxAttempts: 3,
		Middleware: []handlers.Middleware{handlers.Timeout(100 * time.Millisecond)}}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		switch m.Event.Stream {
		case "conflicts":
			tries.Add(1)
			st, _ := handlers.Store(ctx)
			_, err := st.Append(ctx, "taken", store.NoStream, mustBooked(t)) // exists: a conflict, every time
			return err
		case "slow":
			<-ctx.Done() // always out of time
			return ctx.Err()
		}
		return record(ctx, v, m)
	})
	newRouter(t, f, c, g)
	f.appendTo(t, "tenant-a", "conflicts", 0, 1)
	f.appendTo(t, "tenant-a", "slow", 0, 1)
	for _, s := range others {
		f.appendTo(t, "tenant-a", s, 0, 2)
	}

	dls := deadLetters(t, c, "effects", 2)
	byStream := map[string]deadletter.Letter{}
	for _, dl := range dls {
		byStream[dl.Event.Stream] = dl
	}
	if dl := byStream["conflicts"]; dl.Attempts != 3 || !strings.Contains(dl.Error, "wrong expected version") {
		t.Errorf("conflict dead letter: attempts %d, error %q; want 3 and the conflict", dl.Attempts, dl.Error)
	}
	if dl := byStream["slow"]; dl.Attempts != 3 || !strings.Contains(dl.Error, "deadline exceeded") {
		t.Errorf("timeout dead letter: attempts %d, error %q; want 3 and the deadline", dl.Attempts, dl.Error)
	}
	if n := tries.Load(); n != 3 {
		t.Errorf("the conflicting handler ran %d times, want 3", n)
	}
	waitFor(t, "the other streams of the partition", 20*time.Second, func() bool { return len(f.effects(t, "tenant-a", "effects")) >= 2*len(others) })
	for _, s := range others {
		if got := f.versions(t, "tenant-a", "effects", s); !slices.Equal(got, upTo(0, 1)) {
			t.Errorf("%s: handled %v, want 0 1", s, got)
		}
	}
}

func mustBooked(t *testing.T) store.Event {
	t.Helper()
	ev, err := store.NewEvent("Booked", Booked{})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// Stream S has events 0–9 and event 3 fails: 0–2 are handled, 3 is
// dead-lettered, 4–9 are parked behind it, and the other streams of the
// partition are handled. Once the fault is fixed, a replay handles 3–9 in
// order, and the stream goes on; replaying twice has one effect, and an
// unknown dead letter is a typed error.
func TestDeadLetterKeepsStreamOrder(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	var fixed atomic.Bool
	record := recordEffect(f)
	g := &handlers.Group{Name: "effects", Context: "visits", MaxAttempts: 2}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		if m.Event.Stream == "S" && m.Event.Version == 3 && !fixed.Load() {
			return errors.New("cannot handle S v3")
		}
		return record(ctx, v, m)
	})
	newRouter(t, f, c, g)
	others := sharing("S", "neighbour", 3)
	f.appendTo(t, "tenant-a", "S", 0, 10)
	for _, s := range others {
		f.appendTo(t, "tenant-a", s, 0, 3)
	}

	q, dls := parked(t, c, "effects", 1, 6, "6 messages parked behind the dead letter")
	dl := dls[0]
	waitFor(t, "the neighbours", 20*time.Second, func() bool { return len(f.effects(t, "tenant-a", "effects")) >= 3+3*len(others) })
	settled(t, c, "effects")
	if got := f.versions(t, "tenant-a", "effects", "S"); !slices.Equal(got, upTo(0, 2)) {
		t.Fatalf("S: handled %v before the replay, want 0 1 2", got)
	}
	if dl.Event.Version != 3 || dl.Attempts != 2 {
		t.Fatalf("dead letter %+v: want S v3 after 2 attempts", dl)
	}
	for _, s := range others {
		if got := f.versions(t, "tenant-a", "effects", s); !slices.Equal(got, upTo(0, 2)) {
			t.Errorf("%s: handled %v, want 0 1 2 (it shares S's partition)", s, got)
		}
	}

	if err := q.Replay(context.Background(), dl.Seq+1000); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("replay of an unknown dead letter: %v, want ErrNotFound", err)
	}
	fixed.Store(true)
	for range 2 {
		if err := q.Replay(context.Background(), dl.Seq); err != nil && !errors.Is(err, deadletter.ErrNotFound) {
			t.Fatal(err)
		}
	}
	waitFor(t, "S handled up to 9", 20*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", "S")) >= 10 })
	f.appendTo(t, "tenant-a", "S", 10, 2) // after the replay: handled as usual
	waitFor(t, "S 10 and 11", 20*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", "S")) >= 12 })
	settled(t, c, "effects")
	if got := f.versions(t, "tenant-a", "effects", "S"); !slices.Equal(got, upTo(0, 11)) {
		t.Fatalf("S: handled %v, want 0..11 once each, in order", got)
	}
	if left, err := q.List(context.Background(), "", 0, 10); err != nil || len(left) != 0 {
		t.Fatalf("dead letters left after the replay: %+v, %v", left, err)
	}
}

// Discarding a dead letter releases its parked followers to the handlers,
// or drops them too.
func TestDiscardReleasesOrDrops(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	newRouter(t, f, c, failing(f, "effects", func(m handlers.Message) bool { return m.Event.Version == 1 }))
	f.appendTo(t, "tenant-a", "release", 0, 4)
	f.appendTo(t, "tenant-a", "drop", 0, 4)
	q, dls := parked(t, c, "effects", 2, 2, "both dead letters with 2 parked each")
	for _, dl := range dls {
		how := deadletter.ReleaseFollowers
		if dl.Event.Stream == "drop" {
			how = deadletter.DropFollowers
		}
		if err := q.Discard(context.Background(), dl.Seq, how); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "release's followers", 20*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", "release")) >= 3 })
	f.appendTo(t, "tenant-a", "drop", 4, 1) // after the discard: handled
	waitFor(t, "drop v4", 20*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", "drop")) >= 2 })
	settled(t, c, "effects")
	if got := f.versions(t, "tenant-a", "effects", "release"); !slices.Equal(got, []int64{0, 2, 3}) {
		t.Errorf("release: handled %v, want 0 2 3 (v1 discarded, its followers released)", got)
	}
	if got := f.versions(t, "tenant-a", "effects", "drop"); !slices.Equal(got, []int64{0, 4}) {
		t.Errorf("drop: handled %v, want 0 4 (v1 and its followers dropped)", got)
	}
}

// A group that skips past dead letters handles the later messages of the
// stream; nothing is parked.
func TestSkipPastDeadLetters(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	g := failing(f, "effects", func(m handlers.Message) bool { return m.Event.Version == 1 })
	g.SkipPastDeadLetters = true
	newRouter(t, f, c, g)
	f.appendTo(t, "tenant-a", "s", 0, 4)
	dls := deadLetters(t, c, "effects", 1)
	waitFor(t, "the rest of the stream", 20*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", "s")) >= 3 })
	if got := f.versions(t, "tenant-a", "effects", "s"); !slices.Equal(got, []int64{0, 2, 3}) || dls[0].Parked != 0 || dls[0].ParkKey != 0 {
		t.Fatalf("handled %v, dead letter %+v; want 0 2 3 and nothing parked", got, dls[0])
	}
}

// Infrastructure out of reach is waited for, not counted: the partition
// shows as blocked with the reason, and the message goes through once the
// dependency is back, however many tries that took.
func TestUnavailableBlocksThePartition(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	var down atomic.Bool
	down.Store(true)
	var tries atomic.Int64
	record := recordEffect(f)
	g := &handlers.Group{Name: "effects", Context: "visits", MaxAttempts: 2}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		if down.Load() {
			tries.Add(1)
			return handlers.Unavailable(errors.New("payment service down"))
		}
		return record(ctx, v, m)
	})
	r := newRouter(t, f, c, g)
	ev := f.appendTo(t, "tenant-a", "s", 0, 1)[0]
	p := bus.Partition("s", bus.DefaultPartitions)
	waitFor(t, "the partition blocked", 20*time.Second, func() bool {
		b, ok := r.Status().Groups["effects"].Blocked[p]
		return ok && b.Waits >= 3 && strings.Contains(b.Reason, "payment service down")
	})
	down.Store(false)
	waitFor(t, "the effect", 20*time.Second, func() bool { return len(f.effects(t, "tenant-a", "effects")) == 1 })
	// The effect commits a moment before the router settles the message.
	waitFor(t, "the partition no longer blocked", 5*time.Second, func() bool {
		_, ok := r.Status().Groups["effects"].Blocked[p]
		return !ok
	})
	if n := tries.Load(); n < 3 {
		t.Fatalf("%d tries while down; want more than MaxAttempts (2): waits must not count", n)
	}
	f.checkEffects(t, "effects", map[string][]store.Event{"tenant-a": {ev}})
	q, _ := deadletter.Provision(context.Background(), c, "visits")
	if dls, _ := q.List(context.Background(), "", 0, 10); len(dls) != 0 {
		t.Fatalf("dead-lettered while the infrastructure was down: %+v", dls)
	}
}

// A handler that appends to another store (another shard here) inside its
// transaction is refused at once, naming both stores, and nothing is
// written there; the message is dead-lettered after its one attempt.
func TestCrossStoreAppendIsRefused(t *testing.T) {
	f := newFixture(t, "tenant-a", "tenant-b")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	var tries atomic.Int64
	g := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		tries.Add(1)
		_, err := f.stores["tenant-b"].Append(ctx, "elsewhere", store.Any, mustBooked(t))
		return err
	})
	newRouter(t, f, c, g)
	f.appendTo(t, "tenant-a", "s", 0, 1)
	dls := deadLetters(t, c, "effects", 1)
	if !strings.Contains(dls[0].Error, "visits/tenant-b") || !strings.Contains(dls[0].Error, "visits/tenant-a") || dls[0].Attempts != 1 {
		t.Fatalf("dead letter: %q after %d attempts; want the refusal naming both stores, after one", dls[0].Error, dls[0].Attempts)
	}
	if n := tries.Load(); n != 1 {
		t.Errorf("the handler ran %d times, want once: the refusal is permanent", n)
	}
	if got, err := f.stores["tenant-b"].Read(context.Background(), "elsewhere", store.Forward, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("the other store holds %d events (%v), want none", len(got), err)
	}
}

// sized is an event whose data plus stored metadata (the application's
// user_id, and the correlation_id the store stamps) is n bytes.
func sized(t *testing.T, n int) store.Event {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	md, err := json.Marshal(map[string]string{"correlation_id": id.String(), "user_id": "u-1"})
	if err != nil {
		t.Fatal(err)
	}
	data := `"` + strings.Repeat("x", n-len(md)-2) + `"`
	return store.Event{ID: id, Type: "Booked", Data: json.RawMessage(data), Metadata: correlation.Metadata{"user_id": "u-1"}}
}

// Events at 0.99× and 1.0× of the documented limit, with application
// metadata, reach the handlers; one byte more is refused at append, with
// nothing written.
func TestTheLimitIsOneLimit(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	var seen counter
	g := &handlers.Group{Name: "sizes", Context: "visits"}
	handlers.HandleMessage(g, "count", "Booked", func(ctx context.Context, m handlers.Message) error {
		seen.add(m.Event.ID)
		return nil
	})
	newRouter(t, f, c, g)
	st := f.stores["tenant-a"]
	ctx := context.Background()
	limit := store.DefaultMaxEventBytes
	var want []store.Event
	for _, n := range []int{limit * 99 / 100, limit} {
		got, err := st.Append(ctx, fmt.Sprintf("size-%d", n), store.NoStream, sized(t, n))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		want = append(want, got...)
	}
	over := sized(t, limit+1)
	if _, err := st.Append(ctx, "size-over", store.NoStream, over); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("one byte over the limit: %v, want ErrInvalid", err)
	}
	if got, err := st.Read(ctx, "size-over", store.Forward, 0, 1); err != nil || len(got) != 0 {
		t.Fatalf("the refused event was written: %d, %v", len(got), err)
	}
	waitFor(t, "both events handled", 20*time.Second, func() bool { return seen.len() >= 2 })
	for _, ev := range want {
		if seen.count(ev.ID) != 1 {
			t.Errorf("event %s handled %d times", ev.ID, seen.count(ev.ID))
		}
	}
	r, ok := f.relays["tenant-a"]
	if !ok {
		t.Fatal("no relay for tenant-a")
	}
	if q, err := r.Quarantined(ctx); err != nil || len(q) != 0 {
		t.Fatalf("quarantined %+v, %v: an event the store took did not fit NATS", q, err)
	}
}

// A stream is its store's: a dead letter of S in one shard parks S's later
// messages there, not those of the S of another shard.
func TestParkingIsPerStore(t *testing.T) {
	f := newFixture(t, "tenant-a", "tenant-b")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	record := recordEffect(f)
	g := &handlers.Group{Name: "effects", Context: "visits", MaxAttempts: 1}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		if m.Shard == "tenant-a" && m.Event.Version == 0 {
			return errors.New("tenant-a's S v0 fails")
		}
		return record(ctx, v, m)
	})
	newRouter(t, f, c, g)
	f.appendTo(t, "tenant-a", "S", 0, 3)
	b := f.appendTo(t, "tenant-b", "S", 0, 3)
	waitFor(t, "tenant-b's S", 20*time.Second, func() bool { return len(f.versions(t, "tenant-b", "effects", "S")) >= 3 })
	_, dls := parked(t, c, "effects", 1, 2, "tenant-a's S 1-2 parked")
	settled(t, c, "effects")
	if len(f.versions(t, "tenant-a", "effects", "S")) != 0 || dls[0].Event.Metadata.Get(correlation.Shard) != "tenant-a" {
		t.Fatalf("tenant-a's S handled %v, dead letter of shard %q", f.versions(t, "tenant-a", "effects", "S"), dls[0].Event.Metadata.Get(correlation.Shard))
	}
	f.checkEffects(t, "effects", map[string][]store.Event{"tenant-b": b})
}
