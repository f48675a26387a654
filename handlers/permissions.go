package handlers

import (
	"context"
	"maps"
	"slices"
	"strings"

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

// part is one thing a Runner does on NATS, and what it needs for it.
type part struct {
	name string
	need bus.Permissions
}

// parts lists what r does on NATS: provision the registry's streams, relay
// each of its stores, run each group, and keep the replica's record.
func (r *Runner) parts() []part {
	var ps []part
	for _, c := range r.reg.Contexts() {
		s := bus.StreamName(c)
		ps = append(ps, part{"stream of " + c, bus.Permissions{Publish: []string{"$JS.API.STREAM.CREATE." + s, "$JS.API.STREAM.INFO." + s}}})
	}
	for _, k := range slices.Sorted(maps.Keys(r.relays)) {
		c, sh, _ := strings.Cut(k, "/")
		ps = append(ps, part{"relay of " + k, bus.RelayPermissions(c, sh)})
	}
	r.router.mu.Lock()
	for _, g := range r.router.groups {
		ps = append(ps, part{"group " + g.Name, Permissions(g)})
	}
	r.router.mu.Unlock()
	return append(ps, part{"replica record", status.Permissions()})
}

// Permissions is what r needs of its NATS user, every part together: with
// its groups added, paste it (bus.Permissions.Config) into the user's
// entry of the NATS server's configuration.
func (r *Runner) Permissions() bus.Permissions {
	var p bus.Permissions
	for _, pt := range r.parts() {
		p = p.Add(pt.need)
	}
	return p.Add(bus.ConnPermissions(r.conn.NATS().Opts.InboxPrefix))
}

// check checks every part's permissions before any starts: the first one
// missing is a *bus.PermissionError naming the part and the subject.
func (r *Runner) check(ctx context.Context) error {
	for _, pt := range r.parts() {
		if err := r.conn.Check(ctx, pt.name, pt.need); err != nil {
			return err
		}
	}
	return nil
}
