package handlers

import (
	"context"
	"maps"
	"slices"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/status"
)

// Permissions is what a replica running g needs of its NATS user: its
// consumers on the source stream and its dead letters. A group's own
// appends go to its stores, not to NATS.
func Permissions(g *Group) bus.Permissions {
	return consumer.Permissions(g.source(), g.Name).Add(deadletter.Permissions(g.source(), g.Name))
}

// Need is one thing a Runner does on NATS, and the permissions it takes.
type Need struct {
	Part        string // "relay of visits/tenant-a", "group billing"
	Permissions bus.Permissions
}

// Needs lists what a Runner over stores (shards by context) with groups
// does on NATS, part by part: provision the contexts' streams, relay each
// store (unless noRelays), run each group, and keep the replica's record.
// It needs no server and no store: operators derive NATS users' permissions
// from it (cli's permissions subcommand prints them).
func Needs(stores map[string][]string, noRelays bool, groups []*Group) []Need {
	var ns []Need
	for _, c := range slices.Sorted(maps.Keys(stores)) {
		ns = append(ns, Need{"stream of " + c, bus.StreamPermissions(c)})
		for _, sh := range stores[c] {
			if !noRelays {
				ns = append(ns, Need{"relay of " + c + "/" + sh, bus.RelayPermissions(c, sh)})
			}
		}
	}
	for _, g := range groups {
		ns = append(ns, Need{"group " + g.Name, Permissions(g)})
	}
	return append(ns, Need{"replica record", status.Permissions()})
}

// needs is Needs of r.
func (r *Runner) needs() []Need {
	stores := map[string][]string{}
	for _, c := range r.reg.Contexts() {
		stores[c] = r.reg.Shards(c)
	}
	r.router.mu.Lock()
	groups := slices.Clone(r.router.groups)
	r.router.mu.Unlock()
	return Needs(stores, r.cfg.NoRelays, groups)
}

// Permissions is what r needs of its NATS user, every part together: with
// its groups added, paste it (bus.Permissions.Config) into the user's
// entry of the NATS server's configuration.
func (r *Runner) Permissions() bus.Permissions {
	var p bus.Permissions
	for _, n := range r.needs() {
		p = p.Add(n.Permissions)
	}
	return p.Add(bus.ConnPermissions(r.conn.NATS().Opts.InboxPrefix))
}

// check checks every part's permissions before any starts: the first one
// missing is a *bus.PermissionError naming the part and the subject.
func (r *Runner) check(ctx context.Context) error {
	for _, n := range r.needs() {
		if err := r.conn.Check(ctx, n.Part, n.Permissions); err != nil {
			return err
		}
	}
	return nil
}
