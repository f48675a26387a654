package backend_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/backend"
	"github.com/switchyard-go/switchyard/store"
)

func TestPrepare(t *testing.T) {
	now := time.Now()
	p, err := backend.Prepare(context.Background(), "s", store.Any, []store.Event{
		{Type: "Ping"},
		{Type: "Pong", Metadata: correlation.Metadata{"user_id": "u-1", "shard": "forged", "position": "1:1"}},
	}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if string(p[0].Event.Data) != "{}" || p[0].Event.ID.Version() != 7 || p[0].Event.Stream != "s" || !p[0].Event.RecordedAt.Equal(now) {
		t.Errorf("defaults: %+v", p[0].Event)
	}
	md := p[1].Event.Metadata
	if md["user_id"] != "u-1" || md.Get(correlation.Shard) != "" || md.Get(correlation.Position) != "" {
		t.Errorf("metadata %v: want the application's key, none of the store's", md)
	}
	if md.Get(correlation.CorrelationID) != p[1].Event.ID.String() {
		t.Errorf("an event with no cause correlates to itself: %v", md)
	}
	id := uuid.New()
	for name, evs := range map[string][]store.Event{
		"none":          nil,
		"bad type":      {{Type: "a.b"}},
		"twice":         {{ID: id, Type: "A"}, {ID: id, Type: "B"}},
		"not JSON":      {{Type: "A", Data: []byte("{")}},
		"NUL":           {{Type: "A", Data: []byte(`"\u0000"`)}},
		"too large":     {{Type: "A", Data: []byte(`"` + strings.Repeat("x", 100) + `"`)}},
		"bad metadata":  {{Type: "A", Metadata: correlation.Metadata{"k": "\x01"}}},
		"metadata size": {{Type: "A", Metadata: correlation.Metadata{"k": strings.Repeat("x", 200)}}},
	} {
		if _, err := backend.Prepare(context.Background(), "s", store.Any, evs, 64, now); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", name, err)
		}
	}
}

// A failed append is a replay when every event is already in the stream,
// in order, where expected says; a duplicate when some ID is stored
// elsewhere; a conflict otherwise.
func TestDiagnose(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	pending := []backend.Pending{{Event: store.Event{ID: a}}, {Event: store.Event{ID: b}}}
	at := func(stream string, v int64) backend.Place { return backend.Place{Stream: stream, Version: v} }
	for _, tc := range []struct {
		name     string
		expected store.ExpectedVersion
		found    map[uuid.UUID]backend.Place
		replay   int64
		err      error
	}{
		{"conflict", store.Exact(3), nil, -1, store.ErrWrongExpectedVersion},
		{"replay", store.Exact(3), map[uuid.UUID]backend.Place{a: at("s", 4), b: at("s", 5)}, 4, nil},
		{"replay of a new stream", store.NoStream, map[uuid.UUID]backend.Place{a: at("s", 0), b: at("s", 1)}, 0, nil},
		{"replay elsewhere in the stream", store.Exact(1), map[uuid.UUID]backend.Place{a: at("s", 4), b: at("s", 5)}, -1, store.ErrDuplicateEvent},
		{"out of order", store.Exact(3), map[uuid.UUID]backend.Place{a: at("s", 5), b: at("s", 4)}, -1, store.ErrDuplicateEvent},
		{"in another stream", store.Any, map[uuid.UUID]backend.Place{a: at("t", 0)}, -1, store.ErrDuplicateEvent},
	} {
		from, err := backend.Diagnose("s", tc.expected, pending, tc.found, 5)
		if from != tc.replay || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: Diagnose = %d, %v; want %d, %v", tc.name, from, err, tc.replay, tc.err)
		}
	}
}

func TestSignal(t *testing.T) {
	var s backend.Signal
	a, stopA := s.Subscribe()
	b, stopB := s.Subscribe()
	s.Notify()
	s.Notify() // coalesces
	for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
		select {
		case <-ch:
		default:
			t.Fatalf("%s got no signal", name)
		}
		select {
		case <-ch:
			t.Fatalf("%s got two signals for two coalesced notifies", name)
		default:
		}
	}
	stopA()
	s.Notify()
	stopB()
	select {
	case <-a:
		t.Fatal("a signalled after it stopped")
	default:
	}
}
