package handlers_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/status"
)

// withUsers starts a server whose users each have their permissions alone
// (nil: anything); each user's password is its name.
func withUsers(t *testing.T, perms map[string]*bus.Permissions) *natstest.Server {
	t.Helper()
	return natstest.StartWith(t, func(o *server.Options) {
		for name, p := range perms {
			u := &server.User{Username: name, Password: name}
			if p != nil {
				u.Permissions = natstest.Allow(*p)
			}
			o.Users = append(o.Users, u)
		}
	})
}

// connectAs connects as user, its replies on an inbox of its own; the
// test fails if the server refuses it a subject.
func connectAs(t *testing.T, srv *natstest.Server, user string) *bus.Conn {
	t.Helper()
	refused := &refusals{Handler: logger(t).Handler()}
	t.Cleanup(func() {
		if s := refused.seen.Load(); s != nil {
			t.Errorf("NATS refused %s a subject: %s", user, *s)
		}
	})
	c, err := bus.Connect(context.Background(), bus.Config{URL: srv.URL, Logger: slog.New(refused),
		Security: bus.Security{User: user, Password: user, InboxPrefix: "_INBOX_" + user}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// leastRunner is a runner of every store of f, with a group that records
// its effects and dead-letters stream S until fixed.
func leastRunner(t *testing.T, f *fixture, c *bus.Conn, fixed *atomic.Bool) *handlers.Runner {
	t.Helper()
	r, err := handlers.NewRunner(c, f.reg, handlers.RunnerConfig{Router: handlers.RouterConfig{AckWait: 2 * time.Second}, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	g := failing(f, "effects", func(m handlers.Message) bool { return m.Event.Stream == "S" && !fixed.Load() })
	if err := r.Add(g); err != nil {
		t.Fatal(err)
	}
	return r
}

// The permissions a Runner says it needs are enough, and nothing more is
// asked for: under a NATS user allowed exactly those, it relays, handles,
// dead-letters and keeps its record; an operator allowed status's read
// permissions reads status and the dead letters; one allowed the dead
// letters' writes too replays them.
func TestLeastPrivilege(t *testing.T) {
	f := newFixture(t, "tenant-a", "tenant-b")
	var fixed atomic.Bool
	// The permissions do not depend on the server: ask a runner on one of
	// its own.
	need := leastRunner(t, f, connectAs(t, withUsers(t, map[string]*bus.Permissions{"replica": nil}), "replica"), &fixed).Permissions()
	read := status.ReadPermissions("visits").Add(bus.ConnPermissions("_INBOX_operator"))
	write := read.Add(deadletter.WritePermissions("visits")).Add(bus.ConnPermissions("_INBOX_admin"))
	srv := withUsers(t, map[string]*bus.Permissions{"replica": &need, "operator": &read, "admin": &write})

	c := connectAs(t, srv, "replica")
	r := leastRunner(t, f, c, &fixed)
	testrun.Background(t, "runner", r.Run)
	select {
	case <-r.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("runner not ready")
	}
	f.appendBooked(t, "tenant-a", 3, 2, "ok")
	f.appendBooked(t, "tenant-b", 3, 2, "ok")
	f.appendTo(t, "tenant-a", "S", 0, 1)
	waitFor(t, "the effects", 20*time.Second, func() bool {
		return len(f.effects(t, "tenant-a", "effects")) >= 6 && len(f.effects(t, "tenant-b", "effects")) >= 6
	})

	operator := connectAs(t, srv, "operator")
	ctx := context.Background()
	q, err := deadletter.Open(ctx, operator, "visits")
	if err != nil {
		t.Fatal(err)
	}
	var dls []deadletter.Letter
	waitFor(t, "the dead letter", 20*time.Second, func() bool {
		dls, err = q.List(ctx, "effects", 0, 10)
		return err == nil && len(dls) == 1
	})
	waitFor(t, "status showing the replica", 10*time.Second, func() bool {
		rep, err := status.Read(ctx, operator, f.reg)
		return err == nil && len(rep.Replicas) == 1 && len(rep.Groups) == 1 && rep.Groups[0].DeadLetters == 1
	})

	admin := connectAs(t, srv, "admin")
	aq, err := deadletter.Open(ctx, admin, "visits")
	if err != nil {
		t.Fatal(err)
	}
	fixed.Store(true)
	if err := aq.Replay(ctx, dls[0].Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "S handled after the replay", 20*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", "S")) == 1 })

}

// refusals notes the first permissions violation a connection logs.
type refusals struct {
	slog.Handler
	seen atomic.Pointer[string]
}

// Enabled takes warnings even when the test's log does not show them.
func (r *refusals) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || r.Handler.Enabled(ctx, l)
}

func (r *refusals) Handle(ctx context.Context, rec slog.Record) error {
	rec.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && errors.Is(err, nats.ErrPermissionViolation) {
			s := err.Error()
			r.seen.CompareAndSwap(nil, &s)
		}
		return true
	})
	if !r.Handler.Enabled(ctx, rec.Level) {
		return nil
	}
	return r.Handler.Handle(ctx, rec)
}

// A replica whose user lacks the group's members bucket fails at start,
// before anything runs, naming the subject and the group.
func TestMissingPermissionFailsAtStart(t *testing.T) {
	f := newFixture(t, "tenant-a")
	var fixed atomic.Bool
	all := leastRunner(t, f, connectAs(t, withUsers(t, map[string]*bus.Permissions{"replica": nil}), "replica"), &fixed).Permissions()
	var need bus.Permissions
	need.Subscribe = all.Subscribe
	for _, s := range all.Publish {
		if !strings.Contains(s, "sw_members_") {
			need.Publish = append(need.Publish, s)
		}
	}
	if len(need.Publish) == len(all.Publish) {
		t.Fatalf("no members bucket among %q", all.Publish)
	}
	srv := withUsers(t, map[string]*bus.Permissions{"replica": &need})
	r := leastRunner(t, f, connectAs(t, srv, "replica"), &fixed)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := r.Run(ctx)
	var perr *bus.PermissionError
	if !errors.As(err, &perr) || !strings.Contains(perr.Subject, "sw_members_visits_G_effects") || perr.Part != "group effects" {
		t.Fatalf("Run: %v, want a *bus.PermissionError naming the members bucket of group effects", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only when its context ended")
	}
	if slices.ContainsFunc(need.Publish, func(s string) bool { return s == perr.Subject }) {
		t.Fatalf("%s was granted", perr.Subject)
	}
}
