// Package storetest is the conformance suite every store.Store backend must
// pass. A backend's tests call [Run] with a [Backend] that makes fresh stores:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Backend{Name: "sqlite", New: newStore, App: app{}})
//	}
//
// Test names carry the backend's name (TestConformance/sqlite/Append/...).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Backend makes stores for the suite.
type Backend struct {
	// Name goes into test names: "postgres", "sqlite".
	Name string
	// New returns a new, empty store for context "visits", shard "default",
	// with the given event size limit (0 = default), closed by t.Cleanup.
	New func(t *testing.T, maxEventBytes int) store.Store
	// App runs the application's own SQL, for the transaction tests.
	App App
}

// App is the application's own table, as a backend reaches it.
type App interface {
	// Insert writes a row keyed key in the application's table, inside the
	// transaction ctx carries (s.Transact) when there is one.
	Insert(ctx context.Context, s store.Store, key string) error
	// Count returns how many committed rows have key.
	Count(ctx context.Context, s store.Store, key string) (int, error)
}

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	t.Run(b.Name, func(t *testing.T) {
		t.Run("AppendRead", func(t *testing.T) { t.Parallel(); testAppendRead(t, b) })
		t.Run("ExpectedVersion", func(t *testing.T) { t.Parallel(); testExpectedVersion(t, b) })
		t.Run("Atomic", func(t *testing.T) { t.Parallel(); testAtomic(t, b) })
		t.Run("Idempotent", func(t *testing.T) { t.Parallel(); testIdempotent(t, b) })
		t.Run("ReadDirections", func(t *testing.T) { t.Parallel(); testReadDirections(t, b) })
		t.Run("ReadAllBatches", func(t *testing.T) { t.Parallel(); testReadAll(t, b) })
		t.Run("Link", func(t *testing.T) { t.Parallel(); testLink(t, b) })
		t.Run("Transact", func(t *testing.T) { t.Parallel(); testTransact(t, b) })
		t.Run("CrossStore", func(t *testing.T) { t.Parallel(); testCrossStore(t, b) })
		t.Run("Metadata", func(t *testing.T) { t.Parallel(); testMetadata(t, b) })
		t.Run("InvalidInput", func(t *testing.T) { t.Parallel(); testInvalid(t, b) })
		t.Run("Closed", func(t *testing.T) { t.Parallel(); testClosed(t, b) })
		t.Run("RacingWriters", func(t *testing.T) { t.Parallel(); testRace(t, b) })
		t.Run("RacingTransactions", func(t *testing.T) { t.Parallel(); testRaceInTransactions(t, b, false) })
		t.Run("Deferred", func(t *testing.T) { t.Parallel(); testDeferred(t, b) })
		t.Run("RacingDeferred", func(t *testing.T) { t.Parallel(); testRaceInTransactions(t, b, true) })
		t.Run("Outbox", func(t *testing.T) { t.Parallel(); testOutbox(t, b) })
		t.Run("Inbox", func(t *testing.T) { t.Parallel(); testInbox(t, b) })
		t.Run("Catalog", func(t *testing.T) { t.Parallel(); testCatalog(t, b) })
		t.Run("ReadingRole", func(t *testing.T) { t.Parallel(); testReadingRole(t, b) })
		t.Run("Isolation", func(t *testing.T) { t.Parallel(); testIsolation(t, b) })
	})
}

func ev(t *testing.T, typ string, v any) store.Event {
	t.Helper()
	e, err := store.NewEvent(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func evs(t *testing.T, n int) []store.Event {
	out := make([]store.Event, n)
	for i := range out {
		out[i] = ev(t, "Ticked", map[string]int{"n": i})
	}
	return out
}

func mustAppend(t *testing.T, s store.Store, stream string, exp store.ExpectedVersion, events ...store.Event) []store.Event {
	t.Helper()
	out, err := s.Append(context.Background(), stream, exp, events...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return out
}

// readAll pages through the whole log until it holds want events (others'
// running transactions may hold recent commits back for a moment), then
// checks nothing more is there.
func readAll(t *testing.T, s store.Store, want int) []store.Event {
	t.Helper()
	var all []store.Event
	var after store.Position
	deadline := time.Now().Add(10 * time.Second)
	for {
		batch, err := s.ReadAll(context.Background(), after, 7)
		if err != nil {
			t.Fatalf("read all: %v", err)
		}
		all = append(all, batch...)
		if len(batch) > 0 {
			after = batch[len(batch)-1].Position
			continue
		}
		if len(all) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(all) != want {
		t.Errorf("read all: %d events, want %d", len(all), want)
	}
	return all
}

func readStream(t *testing.T, s store.Store, stream string) []store.Event {
	t.Helper()
	out, err := s.Read(context.Background(), stream, store.Forward, 0, store.MaxReadLimit)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return out
}

func testAppendRead(t *testing.T, b Backend) {
	s := b.New(t, 0)
	in := []store.Event{ev(t, "VisitScheduled", map[string]any{"visit": 42, "at": "09:00"}), ev(t, "VisitConfirmed", map[string]any{"visit": 42})}
	in[1].Metadata = correlation.Metadata{"user_id": "u-7"}
	out := mustAppend(t, s, "Visit-42", store.NoStream, in...)
	if len(out) != 2 {
		t.Fatalf("append returned %d events, want 2", len(out))
	}
	for i, e := range out {
		if e.ID == uuid.Nil || e.ID.Version() != 7 {
			t.Errorf("event %d: ID %s is not a UUIDv7", i, e.ID)
		}
		if e.Version != int64(i) || e.Stream != "Visit-42" {
			t.Errorf("event %d: at %s@%d, want Visit-42@%d", i, e.Stream, e.Version, i)
		}
		if e.RecordedAt.IsZero() {
			t.Errorf("event %d: no RecordedAt", i)
		}
	}
	if out[0].Position.Compare(out[1].Position) >= 0 {
		t.Errorf("positions not increasing: %s then %s", out[0].Position, out[1].Position)
	}
	got := readStream(t, s, "Visit-42")
	if len(got) != 2 {
		t.Fatalf("read %d events, want 2", len(got))
	}
	for i := range got {
		g, w := got[i], out[i]
		if g.ID != w.ID || g.Type != w.Type || string(g.Data) != string(in[i].Data) || g.Version != w.Version ||
			g.Position != w.Position || !g.RecordedAt.Equal(w.RecordedAt) || g.Link {
			t.Errorf("event %d read back as %+v, appended %+v", i, g, w)
		}
		for k, v := range w.Metadata {
			if g.Metadata[k] != v {
				t.Errorf("event %d metadata %s = %q read back, %q appended", i, k, g.Metadata[k], v)
			}
		}
	}
	if got[1].Metadata["user_id"] != "u-7" {
		t.Errorf("application metadata lost: %v", got[1].Metadata)
	}
	// Given IDs are kept.
	id := uuid.New()
	e := ev(t, "VisitCancelled", nil)
	e.ID = id
	if out := mustAppend(t, s, "Visit-42", store.Exact(1), e); out[0].ID != id {
		t.Errorf("given ID %s replaced by %s", id, out[0].ID)
	}
}

func testExpectedVersion(t *testing.T, b Backend) {
	s := b.New(t, 0)
	mustAppend(t, s, "two", store.NoStream, evs(t, 2)...) // versions 0, 1
	cases := []struct {
		stream   string
		expected store.ExpectedVersion
		ok       bool
		actual   int64
	}{
		{"empty-any", store.Any, true, 0},
		{"two", store.Any, true, 0},
		{"empty-nostream", store.NoStream, true, 0},
		{"two", store.NoStream, false, 2},
		{"empty-exists", store.StreamExists, false, -1},
		{"two", store.StreamExists, true, 0},
		{"two", store.Exact(2), false, 3}, // after the two successes above
		{"two", store.Exact(3), true, 0},
		{"empty-exact", store.Exact(0), false, -1},
	}
	for _, c := range cases {
		_, err := s.Append(context.Background(), c.stream, c.expected, ev(t, "E", nil))
		if c.ok {
			if err != nil {
				t.Errorf("append to %s expecting %s: %v", c.stream, c.expected, err)
			}
			continue
		}
		var wrong *store.WrongExpectedVersionError
		if !errors.Is(err, store.ErrWrongExpectedVersion) || !errors.As(err, &wrong) {
			t.Errorf("append to %s expecting %s: got %v, want ErrWrongExpectedVersion", c.stream, c.expected, err)
			continue
		}
		if wrong.Stream != c.stream || wrong.Expected != c.expected || wrong.Actual != c.actual {
			t.Errorf("append to %s expecting %s: error says %+v, want actual %d", c.stream, c.expected, wrong, c.actual)
		}
		if !strings.Contains(err.Error(), c.stream) {
			t.Errorf("error %q does not name the stream", err)
		}
	}
	if n := len(readStream(t, s, "two")); n != 5 {
		t.Errorf("stream two has %d events, want 5", n)
	}
}

func testAtomic(t *testing.T, b Backend) {
	s := b.New(t, 0)
	first := mustAppend(t, s, "a", store.NoStream, ev(t, "E", nil))
	batch := evs(t, 3)
	batch[2].ID = first[0].ID // already stored in stream a
	if _, err := s.Append(context.Background(), "b", store.NoStream, batch...); !errors.Is(err, store.ErrDuplicateEvent) {
		t.Fatalf("append with a stored ID: got %v, want ErrDuplicateEvent", err)
	}
	if got := readStream(t, s, "b"); len(got) != 0 {
		t.Fatalf("failed append left %d events in b", len(got))
	}
	batch = evs(t, 3)
	batch[1].Type = "bad.type"
	if _, err := s.Append(context.Background(), "b", store.NoStream, batch...); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("append with a bad type: got %v, want ErrInvalid", err)
	}
	readAll(t, s, 1)
	// The store still works.
	mustAppend(t, s, "b", store.NoStream, evs(t, 3)...)
}

func testIdempotent(t *testing.T, b Backend) {
	s := b.New(t, 0)
	batch := evs(t, 3)
	for i := range batch {
		batch[i].ID = uuid.Must(uuid.NewV7())
	}
	first := mustAppend(t, s, "s", store.NoStream, batch...)
	mustAppend(t, s, "s", store.Exact(2), evs(t, 1)...)
	for _, exp := range []store.ExpectedVersion{store.NoStream, store.Any} {
		again, err := s.Append(context.Background(), "s", exp, batch...)
		if err != nil {
			t.Fatalf("replaying the same append expecting %s: %v", exp, err)
		}
		for i := range first {
			if again[i].ID != first[i].ID || again[i].Version != first[i].Version || again[i].Position != first[i].Position {
				t.Errorf("replay %s returned %s@%d %s, first append %s@%d %s", exp, again[i].ID, again[i].Version, again[i].Position,
					first[i].ID, first[i].Version, first[i].Position)
			}
		}
	}
	// A subset at its place is a replay too.
	if _, err := s.Append(context.Background(), "s", store.Exact(0), batch[1:]...); err != nil {
		t.Errorf("replaying the tail expecting 0: %v", err)
	}
	// At another place: a duplicate.
	if _, err := s.Append(context.Background(), "s", store.Exact(3), batch...); !errors.Is(err, store.ErrDuplicateEvent) {
		t.Errorf("same IDs at another version: got %v, want ErrDuplicateEvent", err)
	}
	if _, err := s.Append(context.Background(), "other", store.NoStream, batch[0]); !errors.Is(err, store.ErrDuplicateEvent) {
		t.Errorf("same ID in another stream: got %v, want ErrDuplicateEvent", err)
	}
	mixed := append([]store.Event{batch[0]}, evs(t, 1)...)
	if _, err := s.Append(context.Background(), "s", store.NoStream, mixed...); !errors.Is(err, store.ErrDuplicateEvent) {
		t.Errorf("stored ID plus a new one: got %v, want ErrDuplicateEvent", err)
	}
	readAll(t, s, 4)
}

func testReadDirections(t *testing.T, b Backend) {
	s := b.New(t, 0)
	mustAppend(t, s, "r", store.NoStream, evs(t, 10)...)
	versions := func(es []store.Event) []int64 {
		var v []int64
		for _, e := range es {
			v = append(v, e.Version)
		}
		return v
	}
	cases := []struct {
		dir   store.Direction
		from  int64
		limit int
		want  string
	}{
		{store.Forward, 0, 3, "[0 1 2]"},
		{store.Forward, 8, 5, "[8 9]"},
		{store.Forward, 10, 5, "[]"},
		{store.Backward, -1, 3, "[9 8 7]"},
		{store.Backward, 4, 10, "[4 3 2 1 0]"},
		{store.Backward, 100, 2, "[9 8]"},
	}
	for _, c := range cases {
		got, err := s.Read(context.Background(), "r", c.dir, c.from, c.limit)
		if err != nil {
			t.Fatalf("read %v from %d: %v", c.dir, c.from, err)
		}
		if g := fmt.Sprint(versions(got)); g != c.want {
			t.Errorf("read dir %v from %d limit %d: versions %s, want %s", c.dir, c.from, c.limit, g, c.want)
		}
	}
	if got, err := s.Read(context.Background(), "missing", store.Forward, 0, 10); err != nil || len(got) != 0 {
		t.Errorf("reading a missing stream: %d events, %v; want none, nil", len(got), err)
	}
}

func testReadAll(t *testing.T, b Backend) {
	s := b.New(t, 0)
	var appended []store.Event
	for i := 0; i < 10; i++ {
		appended = append(appended, mustAppend(t, s, fmt.Sprintf("s-%d", i%3), store.Any, evs(t, 1+i%4)...)...)
	}
	all := readAll(t, s, len(appended))
	if len(all) != len(appended) {
		t.FailNow()
	}
	for i := range all {
		if all[i].ID != appended[i].ID {
			t.Fatalf("event %d of the log is %s, appended %s (appends here are sequential: log order = append order)", i, all[i].ID, appended[i].ID)
		}
		if i > 0 && all[i-1].Position.Compare(all[i].Position) >= 0 {
			t.Fatalf("positions not increasing at %d: %s then %s", i, all[i-1].Position, all[i].Position)
		}
		if all[i].Metadata.Get(correlation.Position) != all[i].Position.String() {
			t.Errorf("position metadata %q, position %s", all[i].Metadata.Get(correlation.Position), all[i].Position)
		}
	}
	tail, err := s.ReadAll(context.Background(), all[len(all)-1].Position, 10)
	if err != nil || len(tail) != 0 {
		t.Errorf("read after the last position: %d events, %v", len(tail), err)
	}
	mid := all[5].Position
	rest, err := s.ReadAll(context.Background(), mid, 100)
	if err != nil || len(rest) != len(all)-6 || rest[0].ID != all[6].ID {
		t.Errorf("read after position %s: %d events (%v), want %d starting at %s", mid, len(rest), err, len(all)-6, all[6].ID)
	}
	p, err := store.ParsePosition(mid.String())
	if err != nil || p != mid {
		t.Errorf("ParsePosition(%q) = %v, %v", mid.String(), p, err)
	}
}

func testLink(t *testing.T, b Backend) {
	s := b.New(t, 0)
	a := mustAppend(t, s, "Visit-1", store.NoStream, evs(t, 2)...)
	c := mustAppend(t, s, "Visit-2", store.NoStream, evs(t, 1)...)
	ctx := context.Background()
	if err := s.Link(ctx, "day-2026-11-21", store.NoStream, c[0].ID, a[1].ID); err != nil {
		t.Fatalf("link: %v", err)
	}
	got := readStream(t, s, "day-2026-11-21")
	if len(got) != 2 || got[0].ID != c[0].ID || got[1].ID != a[1].ID {
		t.Fatalf("linked stream reads %v", got)
	}
	for i, g := range got {
		if !g.Link || g.Stream != "day-2026-11-21" || g.Version != int64(i) {
			t.Errorf("linked event %d: link=%v at %s@%d", i, g.Link, g.Stream, g.Version)
		}
	}
	if got[1].Metadata.Get(correlation.Stream) != "Visit-1" || got[1].Metadata.Get(correlation.StreamVersion) != "1" || got[1].Position != a[1].Position {
		t.Errorf("linked event lost its origin: %v %s", got[1].Metadata, got[1].Position)
	}
	var wrong *store.WrongExpectedVersionError
	if err := s.Link(ctx, "day-2026-11-21", store.NoStream, a[0].ID); !errors.As(err, &wrong) || wrong.Actual != 1 {
		t.Errorf("link with a wrong expected version: %v", err)
	}
	if err := s.Link(ctx, "day-2026-11-21", store.Exact(1), a[0].ID, uuid.New()); !errors.Is(err, store.ErrEventNotFound) {
		t.Errorf("link of a missing event: got %v, want ErrEventNotFound", err)
	}
	if err := s.Link(ctx, "day-2026-11-21", store.Any, c[0].ID); !errors.Is(err, store.ErrDuplicateEvent) {
		t.Errorf("linking an event twice into one stream: got %v, want ErrDuplicateEvent", err)
	}
	if n := len(readStream(t, s, "day-2026-11-21")); n != 2 {
		t.Errorf("failed links wrote: stream has %d entries, want 2", n)
	}
	readAll(t, s, 3) // links are not in the global log
	// A linked stream can be appended to and linked from Any.
	if err := s.Link(ctx, "day-2026-11-21", store.Exact(1), a[0].ID); err != nil {
		t.Errorf("link at the right version: %v", err)
	}
}

func testTransact(t *testing.T, b Backend) {
	s := b.New(t, 0)
	ctx := context.Background()
	// Application row and events commit together.
	err := s.Transact(ctx, func(ctx context.Context) error {
		if err := b.App.Insert(ctx, s, "committed"); err != nil {
			return err
		}
		if _, err := s.Append(ctx, "tx-1", store.NoStream, evs(t, 2)...); err != nil {
			return err
		}
		// A conflict inside the transaction leaves it usable.
		if _, err := s.Append(ctx, "tx-1", store.NoStream, evs(t, 1)...); !errors.Is(err, store.ErrWrongExpectedVersion) {
			return fmt.Errorf("conflicting append in a transaction: got %v", err)
		}
		// So does an event stored already, one at a time or with others:
		// refused, or a replay where it is stored.
		stored, _ := s.Read(ctx, "tx-1", store.Forward, 0, 1)
		if _, err := s.Append(ctx, "tx-dup", store.Any, stored[0]); !errors.Is(err, store.ErrDuplicateEvent) {
			return fmt.Errorf("stored event appended to another stream in a transaction: got %v", err)
		}
		if _, err := s.Append(ctx, "tx-dup", store.Any, append(evs(t, 1), stored[0])...); !errors.Is(err, store.ErrDuplicateEvent) {
			return fmt.Errorf("stored event appended with another in a transaction: got %v", err)
		}
		if again, err := s.Append(ctx, "tx-1", store.Exact(-1), stored[0]); err != nil || again[0].Version != 0 {
			return fmt.Errorf("replaying an append in its transaction: %v, %v", again, err)
		}
		// Reads in the transaction see its writes.
		if got, err := s.Read(ctx, "tx-1", store.Forward, 0, 10); err != nil || len(got) != 2 {
			return fmt.Errorf("read in the transaction: %d events, %v", len(got), err)
		}
		// A nested Transact that fails is rolled back to its savepoint,
		// with what it nested in turn; the transaction goes on.
		boom := errors.New("boom")
		if err := s.Transact(ctx, func(ctx context.Context) error {
			if err := b.App.Insert(ctx, s, "savepoint"); err != nil {
				return err
			}
			if _, err := s.Append(ctx, "tx-1", store.Exact(1), evs(t, 1)...); err != nil {
				return err
			}
			if err := s.Transact(ctx, func(ctx context.Context) error {
				_, err := s.Append(ctx, "tx-1b", store.NoStream, evs(t, 1)...)
				return err
			}); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			return fmt.Errorf("failing nested transaction: got %v, want boom", err)
		}
		// One that succeeds commits with the transaction.
		return s.Transact(ctx, func(ctx context.Context) error {
			_, err := s.Append(ctx, "tx-1", store.Exact(1), evs(t, 1)...)
			return err
		})
	})
	if err != nil {
		t.Fatalf("transaction: %v", err)
	}
	if n, err := b.App.Count(ctx, s, "committed"); err != nil || n != 1 {
		t.Errorf("application row: %d, %v; want 1", n, err)
	}
	if n := len(readStream(t, s, "tx-1")); n != 3 {
		t.Errorf("committed transaction: %d events, want 3", n)
	}
	if n := len(readStream(t, s, "tx-dup")); n != 0 {
		t.Errorf("refused appends in a transaction left %d events", n)
	}
	if n, err := b.App.Count(ctx, s, "savepoint"); err != nil || n != 0 || len(readStream(t, s, "tx-1b")) != 0 {
		t.Errorf("a nested transaction rolled back left %d application rows (%v) and %d events", n, err, len(readStream(t, s, "tx-1b")))
	}
	// An error rolls both back.
	boom := errors.New("boom")
	err = s.Transact(ctx, func(ctx context.Context) error {
		if err := b.App.Insert(ctx, s, "rolled-back"); err != nil {
			return err
		}
		if _, err := s.Append(ctx, "tx-2", store.NoStream, evs(t, 2)...); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("transaction returned %v, want boom", err)
	}
	// So does a panic.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic in a transaction did not propagate")
			}
		}()
		_ = s.Transact(ctx, func(ctx context.Context) error {
			if _, err := s.Append(ctx, "tx-3", store.NoStream, evs(t, 1)...); err != nil {
				return err
			}
			panic("handler bug")
		})
	}()
	if n, _ := b.App.Count(ctx, s, "rolled-back"); n != 0 {
		t.Errorf("rolled-back application row is there")
	}
	if n := len(readStream(t, s, "tx-2")) + len(readStream(t, s, "tx-3")); n != 0 {
		t.Errorf("rolled-back transactions left %d events", n)
	}
	readAll(t, s, 3)
}

// testRaceInTransactions races 16 writers, each running transactions
// that append one event under store.Any to each of two adjacent streams of
// four — at once, or held (deferred) — so that many wait behind the
// versions others hold uncommitted. The ones that lose a race for a
// version are written again: all go through, none lost, none doubled, no
// gaps.
func testRaceInTransactions(t *testing.T, b Backend, deferred bool) {
	const writers, streams, rounds = 16, 4, 10
	s := b.New(t, 0)
	ctx := context.Background()
	appendAny := func(ctx context.Context, stream string, e store.Event) error {
		if deferred {
			return store.AppendDeferred(ctx, s, stream, store.Any, e)
		}
		_, err := s.Append(ctx, stream, store.Any, e)
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				err := s.Transact(ctx, func(ctx context.Context) error {
					// One order for all: crossing orders would deadlock.
					first := (w + r) % (streams - 1)
					for _, k := range []int{first, first + 1} {
						if err := appendAny(ctx, fmt.Sprintf("txrace-%d", k), ev(t, "Raced", map[string]int{"w": w, "r": r, "stream": k})); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for i := range streams {
		got := readStream(t, s, fmt.Sprintf("txrace-%d", i))
		for j, e := range got {
			if e.Version != int64(j) {
				t.Fatalf("stream txrace-%d: event %d has version %d", i, j, e.Version)
			}
		}
		total += len(got)
	}
	if total != 2*writers*rounds {
		t.Errorf("%d events stored, want %d", total, 2*writers*rounds)
	}
}

func testMetadata(t *testing.T, b Backend) {
	s := b.New(t, 0)
	ctx := context.Background()
	root := mustAppend(t, s, "Visit-9", store.NoStream, ev(t, "VisitScheduled", nil))[0]
	m := root.Metadata
	want := map[correlation.Key]string{
		correlation.EventID:       root.ID.String(),
		correlation.EventType:     "VisitScheduled",
		correlation.Stream:        "Visit-9",
		correlation.StreamVersion: "0",
		correlation.Context:       s.Context(),
		correlation.Shard:         s.Shard(),
		correlation.CorrelationID: root.ID.String(),
		correlation.Position:      root.Position.String(),
	}
	for k, v := range want {
		if m.Get(k) != v {
			t.Errorf("root event %s = %q, want %q", k, m.Get(k), v)
		}
	}
	if m.Get(correlation.CausationID) != "" || m.Get(correlation.RecordedAt) == "" {
		t.Errorf("root event metadata: %v", m)
	}

	// Handling root: derived events inherit.
	hctx := correlation.NewContext(ctx, m)
	hctx = correlation.WithValues(hctx, map[string]string{"user_id": "u-1"})
	forged := ev(t, "InvoiceDrafted", nil)
	forged.Metadata = correlation.Metadata{"shard": "someone-else", "event_id": "x", "request_id": "r-9"}
	child := mustAppend(t, s, "Invoice-1", store.NoStream, forged)[0]
	cm := readStream(t, s, "Invoice-1")[0].Metadata
	if cm.Get(correlation.CorrelationID) != child.ID.String() || cm.Get(correlation.CausationID) != "" {
		t.Errorf("event appended without a cause: correlation %q causation %q, want its own id and none", cm.Get(correlation.CorrelationID), cm.Get(correlation.CausationID))
	}
	if cm.Get(correlation.Shard) != s.Shard() || cm.Get(correlation.EventID) != child.ID.String() || cm["request_id"] != "r-9" {
		t.Errorf("caller overrode store-owned metadata or lost its own: %v", cm)
	}
	d, err := s.Append(hctx, "Invoice-2", store.NoStream, ev(t, "InvoiceDrafted", nil))
	if err != nil {
		t.Fatal(err)
	}
	dm := readStream(t, s, "Invoice-2")[0].Metadata
	if dm.Get(correlation.CorrelationID) != root.ID.String() || dm.Get(correlation.CausationID) != root.ID.String() || dm["user_id"] != "u-1" {
		t.Errorf("derived event metadata %v: want correlation and causation %s, user_id u-1", dm, root.ID)
	}
	// A grandchild keeps the root's correlation and names its parent.
	gctx := correlation.NewContext(ctx, d[0].Metadata)
	mustAppend(t, s, "Invoice-3", store.NoStream, ev(t, "InvoiceSent", nil))
	g, err := s.Append(gctx, "Invoice-4", store.NoStream, ev(t, "InvoiceSent", nil))
	if err != nil {
		t.Fatal(err)
	}
	if g[0].Metadata.Get(correlation.CorrelationID) != root.ID.String() || g[0].Metadata.Get(correlation.CausationID) != d[0].ID.String() || g[0].Metadata["user_id"] != "u-1" {
		t.Errorf("grandchild metadata %v", g[0].Metadata)
	}

	// With a span: W3C trace context.
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(ctx) //nolint:errcheck
	sctx, span := tp.Tracer("storetest").Start(ctx, "append")
	traced, err := s.Append(sctx, "Traced-1", store.NoStream, ev(t, "E", nil))
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	tpv := readStream(t, s, "Traced-1")[0].Metadata.Get(correlation.TraceParent)
	sc := span.SpanContext()
	if wantTP := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; tpv != wantTP || traced[0].Metadata.Get(correlation.TraceParent) != wantTP {
		t.Errorf("traceparent %q, want %q", tpv, wantTP)
	}
}

func testInvalid(t *testing.T, b Backend) {
	const limit = 4096
	s := b.New(t, limit)
	ctx := context.Background()
	good := func() store.Event { return ev(t, "Good", map[string]int{"a": 1}) }
	with := func(f func(*store.Event)) []store.Event { e := good(); f(&e); return []store.Event{e} }
	dupID := uuid.New()
	cases := []struct {
		name, stream, field string
		expected            store.ExpectedVersion
		events              []store.Event
	}{
		{"empty stream", "", "stream", store.Any, with(func(*store.Event) {})},
		{"long stream", strings.Repeat("s", store.MaxStreamLen+1), "stream", store.Any, with(func(*store.Event) {})},
		{"NUL in stream", "a\x00b", "stream", store.Any, with(func(*store.Event) {})},
		{"newline in stream", "a\nb", "stream", store.Any, with(func(*store.Event) {})},
		{"stream not UTF-8", "a\xffb", "stream", store.Any, with(func(*store.Event) {})},
		{"injection-shaped stream", "x'); DROP TABLE sw_events; --", "", store.Any, with(func(*store.Event) {})}, // valid: stored as data
		{"empty type", "s", "event type", store.Any, with(func(e *store.Event) { e.Type = "" })},
		{"dot in type", "s", "event type", store.Any, with(func(e *store.Event) { e.Type = "a.b" })},
		{"star in type", "s", "event type", store.Any, with(func(e *store.Event) { e.Type = "a*" })},
		{"gt in type", "s", "event type", store.Any, with(func(e *store.Event) { e.Type = ">" })},
		{"space in type", "s", "event type", store.Any, with(func(e *store.Event) { e.Type = "a b" })},
		{"quote in type", "s", "event type", store.Any, with(func(e *store.Event) { e.Type = `a"b` })},
		{"long type", "s", "event type", store.Any, with(func(e *store.Event) { e.Type = strings.Repeat("T", store.MaxTypeLen+1) })},
		{"data not JSON", "s", "data of Good", store.Any, with(func(e *store.Event) { e.Data = []byte("{not json") })},
		{"data not UTF-8", "s", "data of Good", store.Any, with(func(e *store.Event) { e.Data = []byte("\"\xff\"") })},
		{"data with NUL escape", "s", "data of Good", store.Any, with(func(e *store.Event) { e.Data = []byte(`"\u0000"`) })},
		{"data over the limit", "s", "data of Good", store.Any, with(func(e *store.Event) { e.Data = []byte(`"` + strings.Repeat("x", limit) + `"`) })},
		{"metadata over the limit", "s", "event Good", store.Any, with(func(e *store.Event) {
			e.Data = []byte(`"` + strings.Repeat("x", limit-200) + `"`)
			e.Metadata = correlation.Metadata{"big": strings.Repeat("m", 300)}
		})},
		{"metadata value with newline", "s", `metadata value of "k"`, store.Any, with(func(e *store.Event) { e.Metadata = correlation.Metadata{"k": "a\r\nb"} })},
		{"empty metadata key", "s", "metadata key", store.Any, with(func(e *store.Event) { e.Metadata = correlation.Metadata{"": "v"} })},
		{"no events", "s", "events", store.Any, nil},
		{"bad expected version", "s", "expected version", store.ExpectedVersion(-3), with(func(*store.Event) {})},
		{"same ID twice", "s", "event id", store.Any, []store.Event{with(func(e *store.Event) { e.ID = dupID })[0], with(func(e *store.Event) { e.ID = dupID })[0]}},
	}
	valid := 0
	for _, c := range cases {
		_, err := s.Append(ctx, c.stream, c.expected, c.events...)
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v, want success", c.name, err)
			}
			valid++
			continue
		}
		var inv *store.InvalidError
		if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &inv) {
			t.Errorf("%s: got %v, want ErrInvalid", c.name, err)
			continue
		}
		if inv.Field != c.field {
			t.Errorf("%s: error names field %q, want %q (%v)", c.name, inv.Field, c.field, err)
		}
	}
	reads := []struct {
		name  string
		dir   store.Direction
		from  int64
		limit int
	}{
		{"zero limit", store.Forward, 0, 0},
		{"huge limit", store.Forward, 0, store.MaxReadLimit + 1},
		{"negative forward", store.Forward, -1, 10},
		{"bad direction", store.Direction(9), 0, 10},
	}
	for _, r := range reads {
		if _, err := s.Read(ctx, "s", r.dir, r.from, r.limit); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("read with %s: got %v, want ErrInvalid", r.name, err)
		}
	}
	if _, err := s.ReadAll(ctx, store.Position{}, -5); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("read all with a negative limit: got %v, want ErrInvalid", err)
	}
	if err := s.Link(ctx, "s", store.Any); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("link of nothing: got %v, want ErrInvalid", err)
	}
	readAll(t, s, valid) // invalid appends wrote nothing
}

func testClosed(t *testing.T, b Backend) {
	s := b.New(t, 0)
	ctx := context.Background()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := s.Append(ctx, "s", store.Any, evs(t, 1)...); !errors.Is(err, store.ErrClosed) {
		t.Errorf("append: got %v, want ErrClosed", err)
	}
	if _, err := s.Read(ctx, "s", store.Forward, 0, 1); !errors.Is(err, store.ErrClosed) {
		t.Errorf("read: got %v, want ErrClosed", err)
	}
	if _, err := s.ReadAll(ctx, store.Position{}, 1); !errors.Is(err, store.ErrClosed) {
		t.Errorf("read all: got %v, want ErrClosed", err)
	}
	if err := s.Link(ctx, "s", store.Any, uuid.New()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("link: got %v, want ErrClosed", err)
	}
	if err := s.Transact(ctx, func(context.Context) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("transact: got %v, want ErrClosed", err)
	}
}

// testRace: 32 writers race on 10 streams, each appending with the version it
// last read. Versions stay gapless, and every loser gets
// ErrWrongExpectedVersion, never another error.
func testRace(t *testing.T, b Backend) {
	const writers, streams, rounds = 32, 10, 15
	s := b.New(t, 0)
	ctx := context.Background()
	var mu sync.Mutex
	wins, conflicts := 0, 0
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				stream := fmt.Sprintf("race-%d", (w+r)%streams)
				last, err := s.Read(ctx, stream, store.Backward, -1, 1)
				if err != nil {
					errs <- err
					return
				}
				exp := store.NoStream
				if len(last) == 1 {
					exp = store.Exact(last[0].Version)
				}
				_, err = s.Append(ctx, stream, exp, ev(t, "Raced", map[string]int{"w": w, "r": r}))
				mu.Lock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrWrongExpectedVersion):
					conflicts++
				default:
					mu.Unlock()
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for i := 0; i < streams; i++ {
		got := readStream(t, s, fmt.Sprintf("race-%d", i))
		for j, e := range got {
			if e.Version != int64(j) {
				t.Fatalf("stream race-%d: event %d has version %d", i, j, e.Version)
			}
		}
		total += len(got)
	}
	if total != wins || wins+conflicts != writers*rounds {
		t.Errorf("%d events stored, %d appends won, %d conflicts, %d attempts", total, wins, conflicts, writers*rounds)
	}
	t.Logf("%d appends won, %d lost with ErrWrongExpectedVersion", wins, conflicts)
	all := readAll(t, s, total)
	last := map[string]int64{}
	for _, e := range all {
		if v, ok := last[e.Stream]; ok && e.Version != v+1 {
			t.Fatalf("read all: %s version %d after %d", e.Stream, e.Version, v)
		}
		last[e.Stream] = e.Version
	}
}

// testRaceInTransactions races transactions appending one event each to
// the same streams with Any: every one goes through, the versions without
// a gap, however the versions were taken from under them.

// A write to another store with a ctx that carries one store's open
// transaction is refused, naming both, with nothing written: it would
// commit on its own. With store.Detach it goes through, on its own.
func testCrossStore(t *testing.T, b Backend) {
	ctx := context.Background()
	one, other := b.New(t, 0), b.New(t, 0)
	stored := mustAppend(t, other, "linked", store.NoStream, ev(t, "Stored", nil))
	var detached []store.Event
	err := one.Transact(ctx, func(ctx context.Context) error {
		if _, err := one.Append(ctx, "mine", store.NoStream, ev(t, "Mine", nil)); err != nil { // its own: fine
			t.Errorf("append to the transaction's own store: %v", err)
		}
		for name, write := range map[string]func() error{
			"append":   func() error { _, err := other.Append(ctx, "theirs", store.Any, ev(t, "Theirs", nil)); return err },
			"link":     func() error { return other.Link(ctx, "links", store.Any, stored[0].ID) },
			"transact": func() error { return other.Transact(ctx, func(context.Context) error { return nil }) },
		} {
			err := write()
			var cross *store.CrossStoreError
			if !errors.As(err, &cross) || !errors.Is(err, store.ErrCrossStore) || cross.Target == "" || cross.Open == "" {
				t.Errorf("%s to another store inside a transaction: %v; want a *store.CrossStoreError", name, err)
			}
		}
		var err error
		detached, err = other.Append(store.Detach(ctx), "detached", store.NoStream, ev(t, "Detached", nil))
		if err != nil {
			t.Errorf("append with store.Detach: %v", err)
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatalf("Transact = %v", err)
	}
	if got := readStream(t, other, "theirs"); len(got) != 0 {
		t.Errorf("the refused append wrote %d events", len(got))
	}
	if got := readStream(t, other, "links"); len(got) != 0 {
		t.Errorf("the refused link wrote %d entries", len(got))
	}
	if got := readStream(t, one, "mine"); len(got) != 0 {
		t.Errorf("the rolled-back transaction kept %d events", len(got))
	}
	if got := readStream(t, other, "detached"); len(got) != 1 || got[0].ID != detached[0].ID {
		t.Errorf("the detached append: %d events, want it committed on its own", len(got))
	}
}
