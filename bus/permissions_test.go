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
			o.Users = append(o.Users, &server.User{Username: name, Password: name, Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: p.Publish}, Subscribe: &server.SubjectPermission{Allow: p.Subscribe}}})
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
	if !errors.As(err, &perr) || perr.User != "relay" || perr.Action != "publish" || !strings.Contains(perr.Subject, "BILLING") && !strings.Contains(perr.Subject, "billing") {
		t.Fatalf("relay of billing/default: %v, want a *bus.PermissionError naming one of its subjects", err)
	}
	for _, want := range []string{`"relay"`, perr.Subject, "relay of billing/default"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %s", err, want)
		}
	}
}

// Permissions the user lacks by a deny rule are named with it; a user who
// may not ask for its permissions is not held up.
func TestCheck(t *testing.T) {
	srv := natstest.StartWith(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "denied", Password: "denied", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Deny: []string{"sw.visits.tenant-b.>"}}}},
			{Username: "mute", Password: "mute", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{"sw.>"}}}},
		}
	})
	ctx := context.Background()
	denied := as(t, srv, "denied")
	if err := denied.Check(ctx, "relay of visits/tenant-a", bus.RelayPermissions("visits", "tenant-a")); err != nil {
		t.Errorf("tenant-a: %v", err)
	}
	err := denied.Check(ctx, "relay", bus.Permissions{Publish: []string{"sw.visits.>"}})
	var perr *bus.PermissionError
	if !errors.As(err, &perr) || perr.Subject != "sw.visits.>" || perr.Denied != "sw.visits.tenant-b.>" {
		t.Errorf("sw.visits.>: %v, want it refused by the deny rule", err)
	}
	mute := connect(t, srv.URL, bus.Config{Security: bus.Security{User: "mute", Password: "mute"}})
	if err := mute.Check(ctx, "relay", bus.RelayPermissions("visits", "tenant-a")); err != nil {
		t.Errorf("a user who may not ask: %v, want nil (it cannot tell)", err)
	}
}
