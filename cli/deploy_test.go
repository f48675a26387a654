package cli_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/status"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/stores"
)

// A deployment driven as an operator drives it: migrate, two replicas of
// the program, traffic, one replica stopped by SIGTERM half way, status,
// a poison message dead-lettered, listed and replayed. Every event is
// handled once, in its stream's order.
func TestDeployment(t *testing.T) {
	db := pgtest.Database(t)
	ns := natstest.Start(t, false)
	cfgFile := filepath.Join(t.TempDir(), "app.yaml")
	yaml := fmt.Sprintf("contexts:\n  visits:\n    backend: postgres\n    dsn: %s\n    shards: [default, tenant-a]\n", db)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SWITCHYARD_CONFIG=" + cfgFile, "SWITCHYARD_NATS_URL=" + ns.URL}

	// migrate: a typo is refused, naming it; then every store, with the
	// application's tables.
	if _, errOut, code := tool(t, env, "migrate", "visits/tenant-b", "visit"); code != 2 ||
		!strings.Contains(errOut, `no shard "tenant-b"`) || !strings.Contains(errOut, "contexts.visit:") {
		t.Fatalf("migrate of unknown stores: exit %d\n%s", code, errOut)
	}
	out, errOut, code := tool(t, env, "migrate")
	if code != 0 || strings.Count(out, "up to date") != 2 || !strings.Contains(errOut, "(2 of 2)") {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errOut)
	}

	cfg, err := stores.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := stores.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	r1 := startReplica(t, env, "r1")
	r2 := startReplica(t, env, "r2")
	// Rounds of one event per stream until both replicas handle some: a
	// partition is a replica's once a delivery of it went there.
	const streams = 40
	rounds := 0
	var rep status.Report
	defer func() {
		if t.Failed() {
			t.Logf("the last status: %+v", rep)
		}
	}()
	testrun.Wait(t, "both replicas own partitions", 30*time.Second, func() bool {
		appendBooked(t, reg, streams, rounds, rounds+1, false)
		rounds++
		rep = status.Report{}
		toolJSON(t, env, &rep, "status")
		g := group(rep, "effects")
		return len(rep.Replicas) == 2 && g != nil && len(g.Replicas) == 2 && owners(g) == 2
	})
	for _, s := range rep.Stores {
		if s.Leader != "r1" && s.Leader != "r2" || s.Err != "" {
			t.Errorf("status of store %s/%s: leader %q, error %q", s.Context, s.Shard, s.Leader, s.Err)
		}
	}

	// SIGTERM r1 half way: r2 takes over its relays and partitions.
	r1.Process.Signal(syscall.SIGTERM)
	appendBooked(t, reg, streams, rounds, rounds+5, false)
	rounds += 5
	if err := r1.Wait(); err != nil {
		t.Fatalf("r1 after SIGTERM: %v", err)
	}
	appendBooked(t, reg, 1, 0, 1, true) // Visit-0 of each shard is poisoned from here on
	total := 2 * streams * rounds
	testrun.Wait(t, "every event handled", 60*time.Second, func() bool { return effects(t, reg) == total })
	checkOnceInOrder(t, reg)

	testrun.Wait(t, "status after r1 left", 30*time.Second, func() bool {
		rep = status.Report{}
		toolJSON(t, env, &rep, "status")
		g := group(rep, "effects")
		led := !slices.ContainsFunc(rep.Stores, func(s status.Store) bool { return s.Leader != "r2" })
		return led && len(rep.Replicas) == 1 && rep.Replicas[0].ID == "r2" && g != nil && g.DeadLetters == 2 && g.Pending == 0
	})
	for _, s := range rep.Stores {
		if s.Leader != "r2" || s.Unpublished != 0 {
			t.Errorf("store %s/%s after r1 left: leader %q, %d unpublished", s.Context, s.Shard, s.Leader, s.Unpublished)
		}
	}
	if out, _, code := tool(t, env, "status", "-partitions"); code != 0 || !strings.Contains(out, "effects") || !strings.Contains(out, "r2") {
		t.Fatalf("status as a table: exit %d\n%s", code, out)
	}

	// The dead letters: listed, cured, replayed one by one and handled.
	var letters []struct {
		Seq   uint64
		Group string
		Type  string
		Shard string
	}
	toolJSON(t, env, &letters, "dlq", "list")
	if len(letters) != 2 || letters[0].Type != "Booked" || letters[0].Group != "effects" {
		t.Fatalf("dlq list: %+v", letters)
	}
	cure(t, reg)
	_, errOut, code = tool(t, env, "dlq", "replay", "visits", fmt.Sprint(letters[0].Seq), fmt.Sprint(letters[1].Seq))
	if code != 0 || !strings.Contains(errOut, "(2 of 2)") {
		t.Fatalf("dlq replay: exit %d\n%s", code, errOut)
	}
	testrun.Wait(t, "the replayed dead letters handled", 30*time.Second, func() bool { return effects(t, reg) == total+2 })
	toolJSON(t, env, &letters, "dlq", "list")
	if len(letters) != 0 {
		t.Fatalf("dlq list after replay: %+v", letters)
	}
	checkOnceInOrder(t, reg)

	r2.Process.Signal(syscall.SIGTERM)
	if err := r2.Wait(); err != nil {
		t.Fatalf("r2 after SIGTERM: %v", err)
	}
}

// startReplica starts a replica named name and waits until it is ready.
func startReplica(t *testing.T, env []string, name string) *exec.Cmd {
	t.Helper()
	addr := testrun.FreeAddr(t)
	cmd := app(t, append(env, "SWITCHYARD_REPLICA="+name), "run", "-http", addr, "-ack-wait", "3s")
	testrun.Start(t, cmd)
	testrun.Wait(t, name+" ready", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return cmd
}

// appendBooked appends versions [from, to) of Visit-0 … Visit-<streams-1>
// in both shards.
func appendBooked(t *testing.T, reg *sharding.Registry, streams, from, to int, poison bool) {
	t.Helper()
	for _, sh := range reg.Shards("visits") {
		st, _ := reg.Store("visits", sh)
		for v := from; v < to; v++ {
			for s := range streams {
				ev, _ := store.NewEvent("Booked", booked{N: v, Poison: poison})
				if _, err := st.Append(context.Background(), fmt.Sprintf("Visit-%d", s), store.Any, ev); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// count sums what sql (with {schema} in it) counts in every shard's schema.
func count(t *testing.T, reg *sharding.Registry, sql string) int {
	t.Helper()
	sum := 0
	for _, sh := range reg.Shards("visits") {
		st, _ := reg.Store("visits", sh)
		pg := st.(*postgres.Store)
		var n int
		if err := pg.Pool().QueryRow(context.Background(), strings.ReplaceAll(sql, "{schema}", pg.Schema())).Scan(&n); err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	return sum
}

// effects counts the effects recorded.
func effects(t *testing.T, reg *sharding.Registry) int {
	return count(t, reg, `SELECT count(*) FROM {schema}.effects`)
}

// checkOnceInOrder checks that no event had its effect twice and that
// each stream's effects follow its versions.
func checkOnceInOrder(t *testing.T, reg *sharding.Registry) {
	t.Helper()
	if dup := count(t, reg, `SELECT count(*) - count(DISTINCT event_id) FROM {schema}.effects`); dup != 0 {
		t.Errorf("%d effects recorded twice", dup)
	}
	if bad := count(t, reg, `SELECT count(*) FROM (SELECT version < lag(version) OVER (PARTITION BY stream ORDER BY n) AS back FROM {schema}.effects) x WHERE back`); bad != 0 {
		t.Errorf("%d effects out of their stream's order", bad)
	}
}

// cure lets the poisoned events through.
func cure(t *testing.T, reg *sharding.Registry) {
	t.Helper()
	count(t, reg, `WITH c AS (INSERT INTO {schema}.cured VALUES (true) RETURNING 1) SELECT count(*) FROM c`)
}

// group finds a group in a report.
func group(rep status.Report, name string) *status.Group {
	i := slices.IndexFunc(rep.Groups, func(g status.Group) bool { return g.Name == name })
	if i < 0 {
		return nil
	}
	return &rep.Groups[i]
}

// owners counts the replicas that own a partition of g.
func owners(g *status.Group) int {
	seen := map[string]bool{}
	for _, p := range g.Partitions {
		if p.Owner != "" && p.Owner != "?" {
			seen[p.Owner] = true
		}
	}
	return len(seen)
}
