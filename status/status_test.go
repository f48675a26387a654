package status_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/status"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// A runner on embedded NATS and SQLite: the report names it as the leader
// of both stores and the owner of the partitions it handled, counts the
// dead letter of a poisoned event, and drops the replica once it stops.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	reg := sharding.NewRegistry()
	for _, sh := range []string{"default", "tenant-a"} {
		st, err := sqlite.Open(context.Background(), sqlite.Config{Context: "visits", Shard: sh, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Add(st); err != nil {
			t.Fatal(err)
		}
	}
	defer reg.Close()
	conn, err := bus.Connect(context.Background(), bus.Config{Embedded: bus.Embedded{Dir: filepath.Join(dir, "nats")}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	g := &handlers.Group{Name: "fussy", Context: "visits"}
	handlers.HandleMessage(g, "refuse-poison", "Booked", func(_ context.Context, m handlers.Message) error {
		if m.Event.Stream == "Poison" {
			return handlers.Permanent(errors.New("poisoned"))
		}
		return nil
	})
	runner, err := handlers.NewRunner(conn, reg, handlers.RunnerConfig{Replica: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Add(g); err != nil {
		t.Fatal(err)
	}
	stop := testrun.Background(t, "runner", runner.Run)
	<-runner.Ready()
	st, _ := reg.Store("visits", "tenant-a")
	for _, stream := range []string{"Visit-1", "Poison"} {
		ev, _ := store.NewEvent("Booked", map[string]int{"n": 1})
		if _, err := st.Append(context.Background(), stream, store.Any, ev); err != nil {
			t.Fatal(err)
		}
	}

	var rep status.Report
	testrun.Wait(t, "the report", 20*time.Second, func() bool {
		rep, err = status.Read(context.Background(), conn, reg)
		if err != nil {
			t.Fatal(err)
		}
		return len(rep.Groups) == 1 && rep.Groups[0].DeadLetters == 1 && rep.Groups[0].Pending+rep.Groups[0].Unacked == 0 &&
			len(rep.Replicas) == 1 && len(rep.Replicas[0].Groups["fussy"].Owned) > 0 && rep.Stores[1].Leader == "r1"
	})
	for _, s := range rep.Stores {
		if s.Leader != "r1" || s.Unpublished != 0 || s.Err != "" {
			t.Errorf("store %s/%s: %+v", s.Context, s.Shard, s)
		}
	}
	if tenantA := rep.Stores[1]; tenantA.Shard != "tenant-a" || tenantA.Checkpoint == (store.Position{}).String() {
		t.Errorf("tenant-a's checkpoint did not move: %+v", tenantA)
	}
	g0 := rep.Groups[0]
	if g0.Name != "fussy" || g0.Source != "visits" || g0.Context != "visits" || len(g0.Partitions) != bus.DefaultPartitions {
		t.Errorf("group: %+v", g0)
	}
	owned := 0
	for _, p := range g0.Partitions {
		if p.Owner == "r1" {
			owned++
		}
	}
	if owned == 0 {
		t.Errorf("no partition owned by r1: %+v", g0.Partitions)
	}

	stop()
	rep, err = status.Read(context.Background(), conn, reg)
	if err != nil || len(rep.Replicas) != 0 || rep.Stores[0].Leader != "" {
		t.Fatalf("after the runner stopped: %v, %+v", err, rep)
	}
}

// A store with a streaming replica reports the replica's lag: some while
// the replica is paused behind a write.
func TestReplicaLag(t *testing.T) {
	primary, replica := pgtest.Replicated(t)
	ctx := context.Background()
	st, reg, conn := onePostgresStore(t, primary.URL("postgres"), replica.ReaderURL("postgres"))
	lag := func() (float64, bool) {
		rep, err := status.Read(ctx, conn, reg)
		if err != nil {
			t.Fatal(err)
		}
		s := rep.Stores[0]
		if s.ReplicaLag == nil {
			return 0, false
		}
		return *s.ReplicaLag, true
	}
	testrun.Wait(t, "the replica caught up", 20*time.Second, func() bool { l, ok := lag(); return ok && l == 0 })
	replica.PauseReplay(t)
	ev, _ := store.NewEvent("Booked", map[string]int{"n": 1})
	if _, err := st.Append(ctx, "Visit-1", store.Any, ev); err != nil {
		t.Fatal(err)
	}
	testrun.Wait(t, "the lag of the paused replica", 20*time.Second, func() bool { l, ok := lag(); return ok && l > 0 })
}

// A transaction left open in a store's database holds its relay back: the
// report says which, and how far behind the relay is.
func TestHeldBack(t *testing.T) {
	ctx := context.Background()
	st, reg, conn := onePostgresStore(t, pgtest.Database(t), "")
	runner, err := handlers.NewRunner(conn, reg, handlers.RunnerConfig{Replica: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Background(t, "runner", runner.Run)
	<-runner.Ready()
	_, pid := pgtest.OpenTransaction(t, st.Pool())
	ev, _ := store.NewEvent("Booked", map[string]int{"n": 1})
	if _, err := st.Append(ctx, "Visit-1", store.Any, ev); err != nil {
		t.Fatal(err)
	}
	var s status.Store
	testrun.Wait(t, "the report of the held-back relay", 20*time.Second, func() bool {
		rep, err := status.Read(ctx, conn, reg)
		if err != nil {
			t.Fatal(err)
		}
		s = rep.Stores[0]
		return s.HeldBy != ""
	})
	if !strings.Contains(s.HeldBy, "pid "+strconv.Itoa(pid)) || s.Behind < 1 || s.Unpublished != 1 {
		t.Errorf("store: %+v: want held by pid %d, behind, one event unpublished", s, pid)
	}
}

// onePostgresStore opens the store visits/default on url (with a replica
// at replicaDSN unless it is empty), a registry of it and an embedded
// NATS server's connection, all closed when t ends.
func onePostgresStore(t *testing.T, url, replicaDSN string) (*postgres.Store, *sharding.Registry, *bus.Conn) {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, url, postgres.Config{Context: "visits", Shard: "default", ReplicaDSN: replicaDSN})
	if err != nil {
		t.Fatal(err)
	}
	reg := sharding.NewRegistry()
	if err := reg.Add(st); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	conn, err := bus.Connect(ctx, bus.Config{Embedded: bus.Embedded{Dir: filepath.Join(t.TempDir(), "nats")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return st, reg, conn
}
