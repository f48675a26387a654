package handlers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// A runner owns the relays of every store in the registry and the groups:
// it reports readiness and the relays' state, handles what is appended,
// and returns nil once drained.
func TestRunner(t *testing.T) {
	f := newFixture(t, "tenant-a", "tenant-b")
	c := connect(t, f.srv.URL)
	r, err := handlers.NewRunner(c, f.reg, handlers.RunnerConfig{Router: handlers.RouterConfig{AckWait: 2 * time.Second}, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	g := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(g, "record", "Booked", recordEffect(f))
	if err := r.Add(g); err != nil {
		t.Fatal(err)
	}
	if r.Status().Ready {
		t.Fatal("ready before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("runner not ready")
	}
	want := map[string][]store.Event{
		"tenant-a": f.appendBooked(t, "tenant-a", 5, 4, "run"),
		"tenant-b": f.appendBooked(t, "tenant-b", 5, 4, "run"),
	}
	waitFor(t, "the effects", 20*time.Second, func() bool {
		return len(f.effects(t, "tenant-a", "effects")) >= 20 && len(f.effects(t, "tenant-b", "effects")) >= 20
	})
	f.checkEffects(t, "effects", want)
	st := r.Status()
	if !st.Ready || len(st.Relays) != 2 || !st.Relays["visits/tenant-a"].Leader || st.Relays["visits/tenant-b"].Published < 20 {
		t.Fatalf("status: %+v", st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}

	// Bad groups are reported, every problem at once.
	bad := &handlers.Group{Name: "Bad Name", Context: "visits"}
	handlers.HandleMessage(bad, "x", "bad type!", nil)
	handlers.HandleMessage(bad, "y", "Booked", nil)
	err = r.Add(bad)
	for _, want := range []string{`invalid group "Bad Name"`, `handler "x": store: invalid event type "bad type!"`, `handler "y": nil function`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Add(bad group) = %v; want it to say %s", err, want)
		}
	}
}

// A group the runner's stores cannot serve is refused at Add, naming the
// problem: a context that is not configured (a typo), or a source with
// shards the group's context lacks. A source that lives in other
// processes is not checked.
func TestAddChecksGroupsAgainstTheStores(t *testing.T) {
	reg := sharding.NewRegistry()
	dir := t.TempDir()
	for _, cs := range [][2]string{{"visits", "tenant-a"}, {"visits", "tenant-b"}, {"billing", "tenant-a"}} {
		st, err := sqlite.Open(context.Background(), sqlite.Config{Context: cs[0], Shard: cs[1], Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Add(st); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { reg.Close() })
	c := connect(t, natstest.Start(t, false).URL)
	r, err := handlers.NewRunner(c, reg, handlers.RunnerConfig{NoRelays: true, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	group := func(name, ctx, source string) *handlers.Group {
		g := &handlers.Group{Name: name, Context: ctx, Source: source}
		handlers.HandleMessage(g, "noop", handlers.AllTypes, func(context.Context, handlers.Message) error { return nil })
		return g
	}
	for _, tt := range []struct {
		g    *handlers.Group
		want string // in the error; "" for none
	}{
		{group("typo", "visit", ""), `context "visit" is not configured (configured: billing, visits)`},
		{group("charges", "billing", "visits"), `context "billing" has no store for shards tenant-b of its source "visits"`},
		{group("orders", "billing", "orders"), ""},
		{group("log", "visits", ""), ""},
	} {
		err := r.Add(tt.g)
		var unconfigured *handlers.UnconfiguredError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("group %s: %v", tt.g.Name, err)
		case tt.want != "" && (!errors.As(err, &unconfigured) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("group %s: Add = %v, want an *UnconfiguredError saying %s", tt.g.Name, err, tt.want)
		}
	}
}
