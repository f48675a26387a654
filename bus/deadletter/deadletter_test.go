package deadletter_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/store"
)

// delivery is what a consumer would hand over for ev, stored at seq.
func delivery(t *testing.T, ev store.Event, seq uint64) *consumer.Delivery {
	t.Helper()
	m := bus.Encode(ev, "visits", "tenant-a", bus.DefaultPartitions)
	return &consumer.Delivery{Event: ev, Subject: m.Subject, Header: m.Header, Data: m.Data, Seq: seq, Delivered: 3}
}

func event(t *testing.T, stream string, version int64) store.Event {
	t.Helper()
	ev, err := store.NewEvent("Booked", map[string]any{"stream": stream})
	if err != nil {
		t.Fatal(err)
	}
	ev.Stream, ev.Version, ev.RecordedAt = stream, version, time.Now().UTC()
	ev.Position = store.Position{Commit: 10, Seq: version + 1}
	ev.Metadata = correlation.Metadata{"user_id": "u-1"}
	ev.Metadata.Set(correlation.CorrelationID, "c-1")
	return ev
}

// queue connects to a server of the test's own and provisions the visits
// stream and its dead-letter queue.
func queue(t *testing.T) (*bus.Conn, *deadletter.Queue) {
	t.Helper()
	srv := natstest.Start(t, false)
	ctx := context.Background()
	conn, err := bus.Connect(ctx, bus.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ProvisionStream(ctx, "visits"); err != nil {
		t.Fatal(err)
	}
	q, err := deadletter.Provision(ctx, conn, "visits")
	if err != nil {
		t.Fatal(err)
	}
	return conn, q
}

// Dead letters keep everything about the message, list by group, are
// replayed by a marker on the original subject for their group only, and
// go once discarded or deleted; putting the same delivery twice stores it
// once.
func TestQueue(t *testing.T) {
	ctx := context.Background()
	conn, q := queue(t)
	a, b := event(t, "Visit-1", 0), event(t, "Visit-2", 4)
	for _, put := range []struct {
		d     *consumer.Delivery
		group string
	}{{delivery(t, a, 7), "billing"}, {delivery(t, a, 7), "billing"}, {delivery(t, b, 9), "audit"}} {
		if err := q.Put(ctx, put.d, deadletter.Record{Group: put.group, Cause: errors.New("cannot charge"), Attempts: 5}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := q.List(ctx, "", 0, 10)
	if err != nil || len(all) != 2 {
		t.Fatalf("List all = %d letters, %v; want 2 (the same delivery put twice is stored once)", len(all), err)
	}
	billing, err := q.List(ctx, "billing", 0, 10)
	if err != nil || len(billing) != 1 {
		t.Fatalf("List billing = %+v, %v", billing, err)
	}
	dl := billing[0]
	if dl.Group != "billing" || dl.StreamSeq != 7 || dl.Error != "cannot charge" || dl.Attempts != 5 || dl.At.IsZero() ||
		dl.Event.ID != a.ID || dl.DecodeErr != nil || dl.Header.Get(string(correlation.CorrelationID)) != "c-1" ||
		!strings.HasPrefix(dl.Subject, "sw.visits.tenant-a.") {
		t.Fatalf("dead letter %+v", dl)
	}

	// Replay: a marker on the original subject, for its group, naming the
	// dead letter; the dead letter stays until the group's replica handles
	// it.
	sub, err := conn.NATS().SubscribeSync(dl.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Replay(ctx, dl.Seq); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if req, ok := deadletter.Marker(m.Header); !ok || req.Seq != dl.Seq || req.Action != deadletter.ActionReplay ||
		m.Header.Get(bus.HeaderReplayGroup) != "billing" || m.Header.Get(deadletter.HeaderError) != "" {
		t.Fatalf("marker headers %v", m.Header)
	}
	if ev, _, err := bus.Decode(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}); err != nil || ev.ID != a.ID {
		t.Fatalf("the marker decodes to %v, %v; want the dead letter's event", ev.ID, err)
	}
	if _, err := q.Get(ctx, dl.Seq); err != nil {
		t.Fatalf("dead letter gone after Replay, before anyone handled it: %v", err)
	}
	if err := q.Replay(ctx, 999); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("Replay of an unknown dead letter: %v, want ErrNotFound", err)
	}
	// Discard of a dead letter with nothing parked behind it: gone at once.
	for _, l := range all {
		if err := q.Discard(ctx, l.Seq, deadletter.DropFollowers); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Delete(ctx, all[1].Seq); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("deleting a discarded dead letter: %v, want ErrNotFound", err)
	}
	if left, err := q.List(ctx, "", 0, 10); err != nil || len(left) != 0 {
		t.Fatalf("left: %d, %v", len(left), err)
	}
	if _, err := q.List(ctx, "Bad Group", 0, 10); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad group name: %v", err)
	}
}

// A dead letter that parks its stream's later messages: they are kept in
// order behind it, counted in the listing, named by Blocking, and dropped
// together.
func TestParking(t *testing.T) {
	ctx := context.Background()
	_, q := queue(t)
	dead := event(t, "Visit-1", 3)
	if err := q.Put(ctx, delivery(t, dead, 40), deadletter.Record{Group: "billing", Cause: errors.New("no"), Attempts: 5, ParkKey: 40}); err != nil {
		t.Fatal(err)
	}
	var parked []store.Event
	for v := int64(4); v < 7; v++ {
		ev := event(t, "Visit-1", v)
		parked = append(parked, ev)
		d := delivery(t, ev, uint64(40+v))
		for range 2 { // parking the same delivery twice stores it once
			if err := q.Park(ctx, d, "billing", 40); err != nil {
				t.Fatal(err)
			}
		}
	}
	letters, err := q.List(ctx, "billing", 0, 10)
	if err != nil || len(letters) != 1 || letters[0].ParkKey != 40 || letters[0].Parked != 3 {
		t.Fatalf("List = %+v, %v; want the dead letter with 3 parked behind it", letters, err)
	}
	got, err := q.Parked(ctx, letters[0].Group, letters[0].ParkKey, 0, 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("Parked = %d, %v", len(got), err)
	}
	for i, p := range got {
		if p.Event.ID != parked[i].ID || p.StreamSeq != uint64(44+i) {
			t.Errorf("parked %d: %s at %d, want %s at %d", i, p.Event.ID, p.StreamSeq, parked[i].ID, 44+i)
		}
	}
	blocking, err := q.Blocking(ctx, "billing")
	if err != nil || len(blocking) != 1 || blocking[0].Event.Stream != "Visit-1" || blocking[0].ParkKey != 40 {
		t.Fatalf("Blocking = %+v, %v; want Visit-1's dead letter, park key 40", blocking, err)
	}
	if err := q.Drop(ctx, "billing", 40); err != nil {
		t.Fatal(err)
	}
	if got, err := q.Parked(ctx, letters[0].Group, letters[0].ParkKey, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("after Drop: %d parked, %v", len(got), err)
	}
}
