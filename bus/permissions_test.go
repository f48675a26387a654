package bus_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// users starts a server with an admin that may do anything, and a user
// per entry of perms allowed those permissions alone; each user's
// password is its name.
func users(t *testing.T, perms map[string]bus.Permissions) *natstest.Server {
	t.Helper()
	return natstest.StartWith(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "admin", Password: "admin"}}
		for name, p := range perms {
			o.Users = append(o.Users, &server.User{Username: name, Password: name, Permissions: natstest.Allow(p)})
		}
	})
}

// as connects as user, replies coming on an inbox of its own.
func as(t *testing.T, srv *natstest.Server, user string) *bus.Conn {
	t.Helper()
	return connect(t, srv.URL, bus.Config{Security: bus.Security{User: user, Password: user, InboxPrefix: "_INBOX_" + user}})
}

// A relay user allowed only its store's subjects relays that store; it
// may publish to no other context's subjects, and a relay of another
// store fails at start naming the subject it lacks.
func TestRelayConfinedToItsStore(t *testing.T) {
	srv := users(t, map[string]bus.Permissions{
		"relay": bus.RelayPermissions("visits", "default").Add(bus.ConnPermissions("_INBOX_relay")),
	})
	admin, relay := as(t, srv, "admin"), as(t, srv, "relay")

	st := sqliteStore(t, filepath.Join(t.TempDir(), "visits.db"))
	run(t, newRelay(t, relay, st, bus.RelayConfig{}))
	waitFor(t, "the stream provisioned", func() bool {
		_, err := admin.JetStream().Stream(context.Background(), bus.StreamName("visits"))
		return err == nil
	})
	want := appendMany(t, st, "s", 4, 5)
	waitFor(t, "every event relayed", func() bool { return len(delivered(t, admin, "visits")) == len(want) })
	checkDelivered(t, admin, want, bus.DefaultPartitions)

	nc := relay.NATS()
	if err := nc.Publish(bus.Subject("billing", "default", 0, "Charged"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := nc.LastError(); !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "sw.billing.default.0.Charged") {
		t.Errorf("publishing to another context: last error %v, want a permissions violation naming the subject", err)
	}

	other, err := sqlite.Open(context.Background(), sqlite.Config{Context: "billing", Shard: "default", Path: filepath.Join(t.TempDir(), "billing.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	err = newRelay(t, relay, other, bus.RelayConfig{}).Run(context.Background())
	var perr *bus.PermissionError
	if !errors.As(err, &perr) || perr.User != "relay" || perr.Action != "publish" || perr.Subject != "$JS.API.STREAM.CREATE.SW_BILLING" {
		t.Fatalf("relay of billing/default: %v, want a *bus.PermissionError naming its stream's creation", err)
	}
	for _, want := range []string{`"relay"`, perr.Subject, "relay of billing/default"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %s", err, want)
		}
	}
}

// Deny rules: a publish they overlap is refused, naming the rule; a
// subscription only when they cover it whole (the server lets the rest
// through). A user who may not ask for its permissions is let be; a
// question cut short is asked again; a refused reply inbox is named.
func TestCheck(t *testing.T) {
	srv := natstest.StartWith(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "denied", Password: "denied", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Deny: []string{"sw.visits.tenant-b.>"}},
				Subscribe: &server.SubjectPermission{Deny: []string{"_INBOX_denied.admin.>"}}}},
			{Username: "mute", Password: "mute", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{"sw.>"}}}},
			{Username: "deaf", Password: "deaf", Permissions: &server.Permissions{
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_deaf.>"}}}},
		}
	})
	ctx := context.Background()
	denied := as(t, srv, "denied")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := denied.Check(cancelled, "relay", bus.Permissions{Publish: []string{"sw.visits.>"}}); err != nil {
		t.Errorf("with its context cancelled: %v, want nil (it cannot tell yet)", err)
	}
	if err := denied.Check(ctx, "relay of visits/tenant-a", bus.RelayPermissions("visits", "tenant-a")); err != nil {
		t.Errorf("tenant-a: %v", err)
	}
	err := denied.Check(ctx, "relay", bus.Permissions{Publish: []string{"sw.visits.>"}})
	var perr *bus.PermissionError
	if !errors.As(err, &perr) || perr.Subject != "sw.visits.>" || perr.Denied != "sw.visits.tenant-b.>" {
		t.Errorf("sw.visits.>: %v, want it refused by the deny rule (asked again after the cancelled question)", err)
	}
	if err := denied.Check(ctx, "tail", bus.Permissions{Subscribe: []string{"_INBOX_denied.admin.x.>"}}); err == nil {
		t.Error("a subscription a deny rule covers whole was allowed")
	}

	mute := connect(t, srv.URL, bus.Config{Security: bus.Security{User: "mute", Password: "mute"}})
	if err := mute.Check(ctx, "relay", bus.RelayPermissions("visits", "tenant-a")); err != nil {
		t.Errorf("a user who may not ask: %v, want nil (it cannot tell)", err)
	}
	deaf := connect(t, srv.URL, bus.Config{Security: bus.Security{User: "deaf", Password: "deaf"}}) // on the default inbox
	err = deaf.Check(ctx, "status", bus.Permissions{})
	if !errors.As(err, &perr) || !perr.Inbox || perr.Subject != "_INBOX.>" || !strings.Contains(err.Error(), "SWITCHYARD_NATS_INBOX_PREFIX") {
		t.Errorf("a user whose inbox is another: %v, want its inbox named refused", err)
	}
}
