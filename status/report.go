package status

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
)

// Report is the state of a deployment: its live replicas, every store
// of the registry, and every consumer group on the registry's contexts.
type Report struct {
	Replicas []Replica `json:"replicas"`
	Stores   []Store   `json:"stores"`
	Groups   []Group   `json:"groups"`
}

// Store is one (context, shard) store and its relay.
type Store struct {
	Context string `json:"context"`
	Shard   string `json:"shard"`
	Leader  string `json:"leader"` // the replica leading its relay; "" when none announces it, several (a,b) while records disagree
	// From the store's database, whoever leads:
	Checkpoint  string `json:"checkpoint"`  // what the relay saved as published
	Unpublished int64  `json:"unpublished"` // committed events after the checkpoint
	Quarantined int    `json:"quarantined"` // events the relay set aside
	// From its replica, where it has one (the PostgreSQL backend's
	// replica DSN): how far behind the primary it is, in seconds; nil
	// without a replica. ReplicaErr says why it could not be read.
	ReplicaLag *float64 `json:"replica_lag_s,omitempty"`
	ReplicaErr string   `json:"replica_error,omitempty"`
	// From the leader's record:
	Behind    float64 `json:"behind_s"`
	HeldBy    string  `json:"held_by,omitempty"` // a transaction holding the relay's reads back
	LastError string  `json:"last_error,omitempty"`
	// Err is why the store could not be read; the other fields are then
	// what is known without it.
	Err string `json:"error,omitempty"`
}

// Group is one consumer group on one source context.
type Group struct {
	Name        string      `json:"name"`
	Source      string      `json:"source"`
	Context     string      `json:"context,omitempty"` // as its replicas say; "" when none runs
	Replicas    []string    `json:"replicas"`          // replicas running it
	Pending     uint64      `json:"pending"`           // not yet delivered
	Unacked     uint64      `json:"unacked"`           // delivered, not yet settled
	DeadLetters int         `json:"dead_letters"`
	Parked      int         `json:"parked"`
	Partitions  []Partition `json:"partitions"`
}

// Partition is one partition of a group: who handles it, what waits.
type Partition struct {
	Index   int      `json:"index"`
	Owner   string   `json:"owner"` // the replica handling it; "" when none, "?" pinned to one that does not announce itself
	Pending uint64   `json:"pending"`
	Unacked uint64   `json:"unacked"`
	Blocked *Blocked `json:"blocked,omitempty"`
}

// Read gathers the report: the replicas' records from NATS, every store's
// checkpoint, backlog and quarantine from its database (in parallel), and
// the groups' consumers and dead letters from JetStream. It writes
// nothing. A store that cannot be read is reported with its Err; NATS out
// of reach is an error.
func Read(ctx context.Context, conn *bus.Conn, reg *sharding.Registry) (Report, error) {
	reps, err := replicas(ctx, conn)
	if err != nil {
		return Report{}, err
	}
	slices.SortFunc(reps, func(a, b Replica) int { return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Key, b.Key)) })
	rep := Report{Replicas: reps, Stores: stores(ctx, reg, reps), Groups: []Group{}}
	for _, c := range reg.Contexts() {
		gs, err := groups(ctx, conn, c, reps)
		if err != nil {
			return Report{}, err
		}
		rep.Groups = append(rep.Groups, gs...)
	}
	return rep, nil
}

// stores reads every store of reg, in parallel.
func stores(ctx context.Context, reg *sharding.Registry, reps []Replica) []Store {
	out := []Store{}
	for _, c := range reg.Contexts() {
		for _, sh := range reg.Shards(c) {
			out = append(out, Store{Context: c, Shard: sh})
		}
	}
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() { readStore(ctx, reg, &out[i], reps) })
	}
	wg.Wait()
	return out
}

// readStore fills s in from its database and its leader's record.
func readStore(ctx context.Context, reg *sharding.Registry, s *Store, reps []Replica) {
	key := s.Context + "/" + s.Shard
	var leaders []string
	for _, r := range reps {
		if rl, ok := r.Relays[key]; ok && rl.Leader {
			leaders = append(leaders, r.ID)
			s.Behind, s.HeldBy, s.LastError = rl.Behind, rl.HeldBy, rl.LastError
		}
	}
	s.Leader = strings.Join(leaders, ",")
	if len(leaders) > 1 {
		// Records are refreshed every Every: one written before a hand-over
		// may not have caught up yet. For longer, a lease was lost.
		s.LastError = "several replicas say they lead (a hand-over within the last " + (3 * Every).String() + ", or a lease lost)"
	}
	st, err := reg.Store(s.Context, s.Shard)
	if err != nil {
		s.Err = err.Error()
		return
	}
	err = func() error {
		ob, ok := st.(store.Outbox)
		if !ok {
			return errors.New("not relayed: no store.Outbox")
		}
		cp, err := ob.Checkpoint(ctx, bus.DefaultRelayName)
		if err != nil {
			return err
		}
		s.Checkpoint = cp.String()
		if s.Unpublished, err = ob.CountAfter(ctx, cp); err != nil {
			return err
		}
		q, err := ob.Quarantined(ctx, bus.DefaultRelayName)
		s.Quarantined = len(q)
		return err
	}()
	if err != nil {
		s.Err = err.Error()
	}
	readReplica(ctx, st, s)
}

// lagger is a store with a replica whose lag it can tell
// (postgres.Store).
type lagger interface {
	ReplicaLag(ctx context.Context) (time.Duration, bool, error)
}

// readReplica fills in the lag of s's replica, when it has one.
func readReplica(ctx context.Context, st store.Store, s *Store) {
	l, ok := st.(lagger)
	if !ok {
		return
	}
	lag, has, err := l.ReplicaLag(ctx)
	switch {
	case err != nil:
		s.ReplicaErr = err.Error()
	case has:
		secs := lag.Seconds()
		s.ReplicaLag = &secs
	}
}

// groups lists the consumer groups on contextName's stream, from its
// durable consumers (consumer.DurableName), with their dead letters.
func groups(ctx context.Context, conn *bus.Conn, contextName string, reps []Replica) ([]Group, error) {
	js, err := conn.JetStream().Stream(ctx, bus.StreamName(contextName))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil // nothing ran yet
	}
	if err != nil {
		return nil, &bus.Error{Op: "open stream " + bus.StreamName(contextName), URL: conn.Server(), Err: err}
	}
	byName := map[string]*Group{}
	infos := js.ListConsumers(ctx)
	for info := range infos.Info() {
		name, p, ok := consumer.ParseDurable(info.Name)
		if !ok {
			continue // not a group's
		}
		g := byName[name]
		if g == nil {
			g = &Group{Name: name, Source: contextName}
			byName[name] = g
		}
		owner := "" // the replicas' records say which replica a pinned one is (fill)
		if consumer.PinnedTo(info) != "" {
			owner = "?"
		}
		g.Partitions = append(g.Partitions, Partition{Index: p, Pending: info.NumPending, Unacked: uint64(info.NumAckPending), Owner: owner})
	}
	if err := infos.Err(); err != nil {
		return nil, &bus.Error{Op: "list consumers of " + bus.StreamName(contextName), URL: conn.Server(), Err: err}
	}
	counts, err := deadLetters(ctx, conn, contextName)
	if err != nil {
		return nil, err
	}
	out := make([]Group, 0, len(byName))
	for _, g := range byName {
		g.DeadLetters, g.Parked = counts[g.Name].Dead, counts[g.Name].Parked
		g.fill(reps)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// fill adds what the replicas say of g, and the totals.
func (g *Group) fill(reps []Replica) {
	slices.SortFunc(g.Partitions, func(a, b Partition) int { return cmp.Compare(a.Index, b.Index) })
	for _, r := range reps {
		sh, ok := r.Groups[g.Name]
		if !ok || sh.Source != g.Source {
			continue
		}
		g.Context = sh.Context
		g.Replicas = append(g.Replicas, r.ID)
		for i := range g.Partitions {
			p := &g.Partitions[i]
			if slices.Contains(sh.Owned, p.Index) {
				p.Owner = r.ID
			}
			if b, ok := sh.Blocked[p.Index]; ok {
				p.Blocked = &b
			}
		}
	}
	for _, p := range g.Partitions {
		g.Pending += p.Pending
		g.Unacked += p.Unacked
	}
}

// deadLetters counts the dead letters of contextName's groups; none when
// no group ever ran on it.
func deadLetters(ctx context.Context, conn *bus.Conn, contextName string) (map[string]deadletter.Count, error) {
	q, err := deadletter.Open(ctx, conn, contextName)
	if errors.Is(err, deadletter.ErrNoQueue) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return q.Counts(ctx)
}
