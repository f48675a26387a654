package handlers_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
)

// childEnv makes the test binary run as a consumer process (see
// TestKilledConsumer) instead of running tests.
const childEnv = "SWITCHYARD_HANDLERS_TEST_CHILD"

var testShards = []string{"tenant-a", "tenant-b"}

// childMain runs the "effects" group, with its own stores and NATS
// connection, until SIGTERM (a graceful drain) or SIGKILL.
func childMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "child:", err); return 1 }
	f := &fixture{prefix: os.Getenv("CHILD_PREFIX"), stores: map[string]*postgres.Store{}, reg: sharding.NewRegistry()}
	for _, sh := range testShards {
		st, err := postgres.Open(ctx, os.Getenv("CHILD_PG"), postgres.Config{Context: "visits", Shard: sh, Schema: f.schema(sh)})
		if err != nil {
			return fail(err)
		}
		defer st.Close()
		f.stores[sh] = st
		if err := f.reg.Add(st); err != nil {
			return fail(err)
		}
	}
	conn, err := bus.Connect(ctx, bus.Config{URL: os.Getenv("CHILD_NATS")})
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	g := &handlers.Group{Name: "effects", Context: "visits", MaxAttempts: 2}
	record := recordEffectAs(f, os.Getenv("CHILD_NAME"))
	poison, slow := os.Getenv("CHILD_POISON"), os.Getenv("CHILD_SLOW") // "stream/version", "stream"
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, v Booked, m handlers.Message) error {
		if poison == fmt.Sprintf("%s/%d", m.Event.Stream, m.Event.Version) {
			return errors.New("poison")
		}
		if slow == m.Event.Stream {
			time.Sleep(100 * time.Millisecond)
		}
		return record(ctx, v, m)
	})
	r, err := handlers.NewRouter(conn, handlers.RouterConfig{Middleware: handlers.Defaults(f.reg), Stores: f.reg, AckWait: 2 * time.Second})
	if err != nil {
		return fail(err)
	}
	if err := r.Add(g); err != nil {
		return fail(err)
	}
	go func() {
		<-r.Ready()
		fmt.Println("ready")
	}()
	if err := r.Run(ctx); err != nil {
		return fail(err)
	}
	fmt.Println("drained")
	return 0
}

type child struct {
	name string
	cmd  *exec.Cmd
	out  chan string
}

func startChild(t *testing.T, f *fixture, name string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_PG="+testURL, "CHILD_PREFIX="+f.prefix, "CHILD_NATS="+f.srv.URL, "CHILD_NAME="+name)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck // normally gone already
	c := &child{name: name, cmd: cmd, out: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.out <- sc.Text()
		}
		close(c.out)
	}()
	return c
}

func (c *child) expect(t *testing.T, line string, timeout time.Duration) {
	t.Helper()
	select {
	case got, ok := <-c.out:
		if !ok || got != line {
			t.Fatalf("%s said %q (open %v), want %q", c.name, got, ok, line)
		}
	case <-time.After(timeout):
		t.Fatalf("%s did not say %q within %v", c.name, line, timeout)
	}
}

// Three consumer processes share the partitions of 200 streams × 50 events
// over two shards. One is killed with -9 mid-run, another drained with
// SIGTERM: every event has exactly one effect, each stream's effects came
// in order, the dead process's partitions moved to the others, and every
// derived event carries its source's correlation, causation and shard.
func TestKilledConsumer(t *testing.T) {
	if testing.Short() {
		t.Skip("three processes, 10,000 events")
	}
	f := newFixture(t, testShards...)
	c := connect(t, f.srv.URL)
	f.relay(t, c)

	children := []*child{startChild(t, f, "c1"), startChild(t, f, "c2"), startChild(t, f, "c3")}
	for _, ch := range children {
		ch.expect(t, "ready", 30*time.Second)
	}

	const streams, perStream = 100, 50 // per shard: 200 streams in all
	want := map[string][]store.Event{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, sh := range testShards {
		wg.Go(func() {
			evs := f.appendBooked(t, sh, streams, perStream, "visit")
			mu.Lock()
			want[sh] = evs
			mu.Unlock()
		})
	}
	total := func() map[string]int {
		out := map[string]int{}
		for _, sh := range testShards {
			for _, e := range f.effectsByProc(t, sh) {
				out[e]++
			}
		}
		return out
	}
	sum := func(m map[string]int) (n int) {
		for _, v := range m {
			n += v
		}
		return n
	}
	waitFor(t, "a third of the effects", 60*time.Second, func() bool { return sum(total()) >= streams*perStream*2/3 })
	// Kill the busiest process: it owns partitions now.
	byProc := total()
	victim := children[0]
	for _, ch := range children {
		if byProc[ch.name] > byProc[victim.name] {
			victim = ch
		}
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s after effects per process %v", victim.name, byProc)
	wg.Wait()

	var rest []*child
	for _, ch := range children {
		if ch != victim {
			rest = append(rest, ch)
		}
	}
	waitFor(t, "two thirds of the effects", 60*time.Second, func() bool { return sum(total()) >= streams*perStream*2*2/3 })
	// Drain one of the survivors gracefully.
	if err := rest[0].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest[0].expect(t, "drained", 30*time.Second)
	if err := rest[0].cmd.Wait(); err != nil {
		t.Fatalf("%s exited with %v after SIGTERM", rest[0].name, err)
	}
	waitFor(t, "every effect", 90*time.Second, func() bool { return sum(total()) >= streams*perStream*2 })
	settled(t, c, "effects") // anything handled twice would show now
	final := total()
	t.Logf("effects per process: %v", final)
	f.checkEffects(t, "effects", want)
	if final[rest[1].name] <= byProc[rest[1].name] {
		t.Errorf("the last process handled nothing after the others went: %v then %v", byProc, final)
	}

	for sh, evs := range want {
		for _, src := range evs {
			got, err := f.stores[sh].Read(context.Background(), "derived-"+src.Stream, store.Forward, src.Version, 1)
			if err != nil || len(got) != 1 {
				t.Fatalf("derived event of %s v%d: %v %v", src.Stream, src.Version, got, err)
			}
			md := got[0].Metadata
			if md[string(correlation.CorrelationID)] != src.Metadata[string(correlation.CorrelationID)] ||
				md[string(correlation.CausationID)] != src.ID.String() || md[string(correlation.Shard)] != sh {
				t.Fatalf("derived event of %s has metadata %v", src.ID, md)
			}
		}
	}
}

// effectsByProc lists which process recorded each effect in shard.
func (f *fixture) effectsByProc(t *testing.T, shard string) []string {
	t.Helper()
	rows, err := f.stores[shard].Pool().Query(context.Background(), `SELECT proc FROM `+f.schema(shard)+`.effects`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// A replica parks a stream's messages behind its dead letter and is killed
// with -9; the next one replays it and is killed in the middle of the
// replay; the one after that finishes it. Nothing parked is lost, every
// event has one effect, and the stream's effects come in order.
func TestKilledWithParkedMessages(t *testing.T) {
	f := newFixture(t, testShards...)
	c := connect(t, f.srv.URL)
	f.relay(t, c)
	c1 := startChild(t, f, "c1", "CHILD_POISON=S/3")
	c1.expect(t, "ready", 30*time.Second)
	events := f.appendTo(t, "tenant-a", "S", 0, 10)
	q, dls := parked(t, c, "effects", 1, 6, "S 4-9 parked behind S 3")
	dl := dls[0]
	if err := c1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c1.cmd.Wait() //nolint:errcheck // killed
	if got, err := q.List(context.Background(), "effects", 0, 10); err != nil || len(got) != 1 || got[0].Parked != 6 {
		t.Fatalf("after the kill: %+v, %v; want the dead letter and its 6 followers", got, err)
	}

	c2 := startChild(t, f, "c2", "CHILD_SLOW=S")
	c2.expect(t, "ready", 30*time.Second)
	if err := q.Replay(context.Background(), dl.Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay half way", 30*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", "S")) >= 6 })
	if err := c2.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c2.cmd.Wait() //nolint:errcheck // killed
	c3 := startChild(t, f, "c3")
	c3.expect(t, "ready", 30*time.Second)
	waitFor(t, "S handled up to 9", 30*time.Second, func() bool { return len(f.versions(t, "tenant-a", "effects", "S")) >= 10 })
	settled(t, c, "effects")
	f.checkEffects(t, "effects", map[string][]store.Event{"tenant-a": events})
	if got := f.versions(t, "tenant-a", "effects", "S"); !slices.Equal(got, upTo(0, 9)) {
		t.Fatalf("S: handled %v, want 0..9 once each, in order", got)
	}
	if left, err := q.List(context.Background(), "", 0, 10); err != nil || len(left) != 0 {
		t.Fatalf("left in the queue: %+v, %v", left, err)
	}
}
