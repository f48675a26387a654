package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/store"
)

// testOutbox checks the relay state a backend keeps: commit signals,
// checkpoints that never move back, quarantine, lag and leadership.
func testOutbox(t *testing.T, b Backend) {
	s, ok := b.New(t, 0).(store.Outbox)
	if !ok {
		t.Fatalf("%T does not implement store.Outbox", b.New(t, 0))
	}
	ctx := context.Background()

	signal, stop := s.Commits()
	defer stop()
	expectSignal := func(what string) {
		t.Helper()
		select {
		case <-signal:
		case <-time.After(5 * time.Second):
			t.Fatalf("no commit signal after %s", what)
		}
	}
	expectQuiet := func(what string) {
		t.Helper()
		select {
		case <-signal:
			t.Fatalf("commit signal after %s", what)
		default:
		}
	}
	evA, err := s.Append(ctx, "a", store.NoStream, evs(t, 3)...)
	if err != nil {
		t.Fatal(err)
	}
	expectSignal("Append")
	if err := s.Transact(ctx, func(ctx context.Context) error {
		_, err := s.Append(ctx, "b", store.NoStream, evs(t, 2)...)
		if err != nil {
			return err
		}
		expectQuiet("Append inside a transaction, before commit")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	expectSignal("Transact")
	if err := s.Link(ctx, "c", store.NoStream, evA[0].ID); err != nil {
		t.Fatal(err)
	}
	expectSignal("Link")
	if _, err := s.Append(ctx, "a", store.NoStream, evs(t, 1)...); !errors.Is(err, store.ErrWrongExpectedVersion) {
		t.Fatalf("append: %v", err)
	}
	expectQuiet("a failed append")

	// Checkpoints start at zero, move forward, never back.
	pos, err := s.Checkpoint(ctx, "nats")
	if err != nil || !pos.IsZero() {
		t.Fatalf("first checkpoint = %v, %v; want zero", pos, err)
	}
	// ReadAll holds events back while any older transaction may still
	// commit, and parallel tests keep transactions open: wait for them.
	var all []store.Event
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		all, err = s.ReadAll(ctx, store.Position{}, 100)
		if err != nil || len(all) == 5 || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(all) != 5 {
		t.Fatalf("read all: %d events, %v", len(all), err)
	}
	if n, err := s.CountAfter(ctx, store.Position{}); err != nil || n != 5 {
		t.Fatalf("count after zero = %d, %v; want 5 (links are not counted)", n, err)
	}
	q := store.Quarantined{EventID: all[1].ID, Type: all[1].Type, Stream: all[1].Stream, Version: all[1].Version,
		Position: all[1].Position, Size: 123456, Reason: "too large", At: time.Now().UTC().Truncate(time.Millisecond)}
	if err := s.SaveCheckpoint(ctx, "nats", all[3].Position, q); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "nats", all[2].Position); err != nil {
		t.Fatal(err)
	}
	if pos, err = s.Checkpoint(ctx, "nats"); err != nil || pos != all[3].Position {
		t.Fatalf("checkpoint = %v, %v; want %v (it must not move back)", pos, err, all[3].Position)
	}
	if other, err := s.Checkpoint(ctx, "archive"); err != nil || !other.IsZero() {
		t.Fatalf("another relay's checkpoint = %v, %v; want zero", other, err)
	}
	if n, err := s.CountAfter(ctx, pos); err != nil || n != 1 {
		t.Fatalf("lag = %d, %v; want 1", n, err)
	}
	// Saving the same quarantined event again keeps one entry.
	if err := s.SaveCheckpoint(ctx, "nats", all[4].Position, q); err != nil {
		t.Fatal(err)
	}
	got, err := s.Quarantined(ctx, "nats")
	if err != nil || len(got) != 1 {
		t.Fatalf("quarantined = %v, %v; want 1 entry", got, err)
	}
	if g := got[0]; g.EventID != q.EventID || g.Type != q.Type || g.Stream != q.Stream || g.Version != q.Version ||
		g.Position != q.Position || g.Size != q.Size || g.Reason != q.Reason || !g.At.Equal(q.At) {
		t.Fatalf("quarantined = %+v; want %+v", g, q)
	}
	if _, err := s.Checkpoint(ctx, "Bad Name"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad relay name: %v; want ErrInvalid", err)
	}

	// One leader at a time.
	lease, ok, err := s.TryLead(ctx, "nats")
	if err != nil || !ok {
		t.Fatalf("first TryLead = %v, %v", ok, err)
	}
	if _, ok, err := s.TryLead(ctx, "nats"); err != nil || ok {
		t.Fatalf("second TryLead = %v, %v; want false while the first holds it", ok, err)
	}
	other, ok, err := s.TryLead(ctx, "archive")
	if err != nil || !ok {
		t.Fatalf("TryLead of another relay = %v, %v", ok, err)
	}
	other.Release()
	lease.Release()
	lease.Release() // twice is harmless
	again, ok, err := s.TryLead(ctx, "nats")
	if err != nil || !ok {
		t.Fatalf("TryLead after Release = %v, %v", ok, err)
	}
	select {
	case <-again.Lost():
		t.Fatal("a fresh lease is lost")
	default:
	}
	again.Release()
}
