package handlers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/backoff"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/store"
)

// newRouter runs a router with the default chain over groups until the
// test ends.
func newRouter(t *testing.T, f *fixture, c *bus.Conn, groups ...*handlers.Group) *handlers.Router {
	t.Helper()
	r, err := handlers.NewRouter(c, handlers.RouterConfig{Middleware: handlers.Defaults(f.reg), Stores: f.reg, AckWait: 2 * time.Second, Backoff: backoff.Config{Max: 200 * time.Millisecond}, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(groups...); err != nil {
		t.Fatal(err)
	}
	background(t, r.Run)
	select {
	case <-r.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("router not ready")
	}
	return r
}

// Events flow from two shards' stores through their relays to two groups:
// one writes effects and derived events in the shard's transaction, the
// other only counts. Every effect happens once, in stream order, and the
// derived events carry their source's correlation, causation and shard.
func TestEndToEnd(t *testing.T) {
	f := newFixture(t, "tenant-a", "tenant-b")
	c := connect(t, f.srv.URL)
	f.relay(t, c)

	effects := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(effects, "record", "Booked", recordEffect(f))
	var seen counter
	audit := &handlers.Group{Name: "audit", Context: "visits"}
	handlers.HandleMessage(audit, "count", "Booked", func(ctx context.Context, m handlers.Message) error {
		seen.add(m.Event.ID)
		return nil
	})
	newRouter(t, f, c, effects, audit)

	want := map[string][]store.Event{
		"tenant-a": f.appendBooked(t, "tenant-a", 20, 10, "visit"),
		"tenant-b": f.appendBooked(t, "tenant-b", 20, 10, "visit"),
	}
	waitFor(t, "every event's effect", 30*time.Second, func() bool {
		return len(f.effects(t, "tenant-a", "effects")) >= 200 && len(f.effects(t, "tenant-b", "effects")) >= 200 && seen.len() >= 400
	})
	f.checkEffects(t, "effects", want)

	for shard, evs := range want {
		for _, src := range evs[:20] {
			got, err := f.stores[shard].Read(context.Background(), "derived-"+src.Stream, store.Forward, src.Version, 1)
			if err != nil || len(got) != 1 {
				t.Fatalf("derived event of %s v%d: %v %v", src.Stream, src.Version, got, err)
			}
			md := got[0].Metadata
			if md[string(correlation.CorrelationID)] != src.Metadata[string(correlation.CorrelationID)] ||
				md[string(correlation.CausationID)] != src.ID.String() ||
				md[string(correlation.Shard)] != shard {
				t.Fatalf("derived event of %s (correlation %s, shard %s) has metadata %v", src.ID, src.Metadata[string(correlation.CorrelationID)], shard, md)
			}
		}
	}
}

// publishRaw publishes an event message the relay did not: forged or
// duplicated, with its own message id.
func publishRaw(t *testing.T, c *bus.Conn, m *nats.Msg) {
	t.Helper()
	if _, err := c.JetStream().PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func deadLetters(t *testing.T, c *bus.Conn, group string, want int) []deadletter.Letter {
	t.Helper()
	q, err := deadletter.Provision(context.Background(), c, "visits")
	if err != nil {
		t.Fatal(err)
	}
	var got []deadletter.Letter
	waitFor(t, "dead letters", 20*time.Second, func() bool {
		got, err = q.List(context.Background(), group, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) >= want
	})
	return got
}

// A message whose shard header disagrees with its subject, and one for a
// shard the context does not have, are refused and dead-lettered; nothing
// is written and the events behind them flow.
func TestRefusedShard(t *testing.T) {
	f := newFixture(t, "tenant-a", "tenant-b")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	effects := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(effects, "record", "Booked", recordEffect(f))
	newRouter(t, f, c, effects)

	// A genuine event of tenant-a, re-addressed: to tenant-b's subject with
	// its header left (disagreeing), and wholly to an unknown shard.
	genuine := f.appendBooked(t, "tenant-a", 1, 1, "genuine")[0]
	forged := bus.Encode(genuine, "visits", "tenant-a", bus.DefaultPartitions)
	forged.Subject = strings.Replace(forged.Subject, ".tenant-a.", ".tenant-b.", 1)
	forged.Header.Set(jetstream.MsgIDHeader, "forged-1")
	publishRaw(t, c, forged)
	unknown := bus.Encode(genuine, "visits", "tenant-x", bus.DefaultPartitions)
	unknown.Header.Set(jetstream.MsgIDHeader, "forged-2")
	publishRaw(t, c, unknown)
	after := f.appendBooked(t, "tenant-a", 3, 2, "after")

	dls := deadLetters(t, c, "effects", 2)
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want 2: %+v", len(dls), dls)
	}
	for _, dl := range dls {
		if !strings.Contains(dl.Error, "refused") {
			t.Errorf("dead letter %d: error %q, want a refusal", dl.Seq, dl.Error)
		}
		if dl.Header.Get(string(correlation.EventID)) != genuine.ID.String() {
			t.Errorf("dead letter %d lost the original metadata: %v", dl.Seq, dl.Header)
		}
	}
	if !strings.Contains(dls[0].Error, `header shard "tenant-a": differs`) || !strings.Contains(dls[1].Error, `"tenant-x" is not configured`) {
		t.Errorf("dead letter errors do not say what was wrong: %q, %q", dls[0].Error, dls[1].Error)
	}
	want := map[string][]store.Event{"tenant-a": append([]store.Event{genuine}, after...), "tenant-b": nil}
	waitFor(t, "the events behind", 20*time.Second, func() bool { return len(f.effects(t, "tenant-a", "effects")) >= 7 })
	settled(t, c, "effects")
	f.checkEffects(t, "effects", want)
}

// The same event published again under another message id (JetStream
// cannot dedupe it) has no second effect: the inbox skips it.
func TestDuplicateDelivery(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	effects := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(effects, "record", "Booked", recordEffect(f))
	var calls counter
	handlers.HandleMessage(effects, "calls", "Booked", func(ctx context.Context, m handlers.Message) error {
		calls.add(m.Event.ID)
		return nil
	})
	newRouter(t, f, c, effects)

	evs := f.appendBooked(t, "tenant-a", 2, 3, "dup")
	waitFor(t, "the effects", 20*time.Second, func() bool { return len(f.effects(t, "tenant-a", "effects")) >= 6 })
	for i, ev := range evs[:3] {
		m := bus.Encode(ev, "visits", "tenant-a", bus.DefaultPartitions)
		m.Header.Set(jetstream.MsgIDHeader, "again-"+string(rune('0'+i)))
		publishRaw(t, c, m)
	}
	settled(t, c, "effects") // the duplicates handled, and acked
	f.checkEffects(t, "effects", map[string][]store.Event{"tenant-a": evs})
	for _, ev := range evs {
		if n := calls.count(ev.ID); n != 1 {
			t.Errorf("event %s handled %d times, want once: the inbox let a duplicate through", ev.ID, n)
		}
	}
}

// A poison event is retried, then dead-lettered with its metadata, the
// error and the attempt count, while the others flow; replayed once the
// handler is fixed, it is handled once, by its group only.
func TestPoison(t *testing.T) {
	f := newFixture(t, "tenant-a")
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	var fixed, poisonTries counter
	effects := &handlers.Group{Name: "effects", Context: "visits"}
	record := recordEffect(f)
	handlers.Handle(effects, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		if v.Poison && fixed.len() == 0 {
			poisonTries.add(m.Event.ID)
			return errors.New("cannot handle poison")
		}
		return record(ctx, v, m)
	})
	var other counter
	audit := &handlers.Group{Name: "audit", Context: "visits"}
	handlers.HandleMessage(audit, "count", "Booked", func(ctx context.Context, m handlers.Message) error {
		other.add(m.Event.ID)
		return nil
	})
	newRouter(t, f, c, effects, audit)

	ev, _ := store.NewEvent("Booked", Booked{N: 0, Poison: true})
	poison, err := f.stores["tenant-a"].Append(context.Background(), "poison-1", store.NoStream, ev)
	if err != nil {
		t.Fatal(err)
	}
	rest := f.appendBooked(t, "tenant-a", 10, 3, "healthy")

	dls := deadLetters(t, c, "effects", 1)
	dl := dls[0]
	if dl.Event.ID != poison[0].ID || dl.Attempts != handlers.DefaultMaxAttempts || !strings.Contains(dl.Error, "cannot handle poison") ||
		dl.Header.Get(string(correlation.CorrelationID)) != poison[0].Metadata[string(correlation.CorrelationID)] || dl.Group != "effects" {
		t.Fatalf("dead letter: %+v", dl)
	}
	waitFor(t, "the healthy events", 20*time.Second, func() bool { return len(f.effects(t, "tenant-a", "effects")) >= 30 })
	f.checkEffects(t, "effects", map[string][]store.Event{"tenant-a": rest})

	q, _ := deadletter.Provision(context.Background(), c, "visits")
	got, err := q.Get(context.Background(), dl.Seq)
	if err != nil || got.Event.ID != poison[0].ID {
		t.Fatalf("Get(%d) = %+v, %v", dl.Seq, got, err)
	}
	fixed.add(poison[0].ID)
	if err := q.Replay(context.Background(), dl.Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replayed poison", 20*time.Second, func() bool { return len(f.effects(t, "tenant-a", "effects")) >= 31 })
	settled(t, c, "effects")
	settled(t, c, "audit")
	f.checkEffects(t, "effects", map[string][]store.Event{"tenant-a": append(rest, poison...)})
	if _, err := q.Get(context.Background(), dl.Seq); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("replayed dead letter still there: %v", err)
	}
	if other.count(poison[0].ID) != 1 {
		t.Fatalf("the other group saw the poison event %d times, want 1 (the replay is not theirs)", other.count(poison[0].ID))
	}
}
