package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/internal/otlptest"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/internal/testrun"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

func TestMain(m *testing.M) {
	if testrun.IsProgram() {
		if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "-test.") {
			os.Args = os.Args[:1] // testrun.Program: the demo
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runExample runs the example as a program with env added, checks what
// it printed, and returns it.
func runExample(t *testing.T, env ...string) string {
	t.Helper()
	out := testrun.Program(t, env...)
	checkChains(t, out)
	return out
}

// checkChains checks what the example printed: acme and globex booked and
// their chains handled in their shards with the request's metadata,
// initech refused.
func checkChains(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"POST http://initech.localhost/visits: 404 Not Found",
		"(tenant acme, shard tenant-a, request ",
		"(tenant globex, shard tenant-b, request ",
		`"remote_ip":"127.0.0.1","count":1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the example did not print %q:\n%s", want, out)
		}
	}
	// Each derived event names its cause by the full id of the first.
	chain := regexp.MustCompile(`(?m)^  VisitBooked  (\S+) .*\n  VisitLogged  \S+ .*causation=(\S+)`)
	matches := chain.FindAllStringSubmatch(out, -1)
	if len(matches) != 2 {
		t.Fatalf("%d chains printed, want 2:\n%s", len(matches), out)
	}
	for _, m := range matches {
		if m[1] != m[2] {
			t.Errorf("VisitLogged caused by %s, want the VisitBooked %s", m[2], m[1])
		}
	}
}

// On PostgreSQL (a schema per shard in one database) the same program does
// the same.
func TestOnPostgres(t *testing.T) {
	dsn := pgtest.Database(t)
	runExample(t, "SWITCHYARD_CONTEXT_VISITS_BACKEND=postgres", "SWITCHYARD_CONTEXT_VISITS_DSN="+dsn)
}

// With OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP receiver, the
// example exports each chain as one trace — append → visits-by-ip process
// → append → visit-notify process — and the metrics of what it did.
func TestExportsTheChain(t *testing.T) {
	rcv := otlptest.Start(true)
	defer rcv.Close()
	runExample(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(), "OTEL_SERVICE_NAME=multitenant-test")
	spans := rcv.Spans()
	byID := map[string]otlptest.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
		if s.Service != "multitenant-test" {
			t.Errorf("span %q of service %q, want multitenant-test", s.Name, s.Service)
		}
	}
	found := 0
	for _, last := range spans {
		if last.Name != "visit-notify process VisitLogged" {
			continue
		}
		found++
		var path []string
		for s, ok := last, true; ok; s, ok = byID[s.Parent] {
			if s.TraceID != last.TraceID {
				t.Errorf("span %q in trace %s, its child in %s", s.Name, s.TraceID, last.TraceID)
			}
			path = append([]string{s.Name + "/" + kind(s.Kind)}, path...)
		}
		want := "append visits/producer > visits-by-ip process VisitBooked/consumer > append visits/producer > visit-notify process VisitLogged/consumer"
		if got := strings.Join(path, " > "); got != want {
			t.Errorf("chain of trace %s: %s\nwant %s", last.TraceID, got, want)
		}
	}
	if found != 2 {
		t.Errorf("%d visit-notify spans exported, want 2 (of %d spans)", found, len(spans))
	}
	sums := rcv.Sums()
	for name, want := range map[string]float64{
		"switchyard.events.appended": 4, // two visits, two derived
		"switchyard.relay.published": 4,
		"messaging.process.duration": 4, // each event handled by one group
	} {
		if sums[name] != want {
			t.Errorf("metric %s = %v, want %v (all: %v)", name, sums[name], want, sums)
		}
	}
}

func kind(k tracepb.Span_SpanKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "SPAN_KIND_"))
}

// Deployed as docker-compose.yml deploys it, on PostgreSQL and a NATS
// server with deploy/nats's users: migrate, the producer (serve) and a run
// replica as processes of their own, the replica as the replica user;
// requests to the producer are handled by the replica, with the request's
// metadata, and the operator user reads status.
func TestDeployed(t *testing.T) {
	dsn := pgtest.Database(t)
	deployed, err := server.ProcessConfigFile("../../deploy/nats/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	ns := natstest.StartWith(t, func(o *server.Options) { o.Users = deployed.Users })
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	// deploy/switchyard.yaml's contexts and shards (the users' permissions
	// name them), in the test's database.
	yaml := "contexts:\n  visits:\n    backend: postgres\n    dsn: " + dsn + "\n    shards: [default, tenant_a, tenant_b]\n" +
		"  billing:\n    backend: postgres\n    dsn: " + dsn + "\n    shards: [default]\ntenants:\n  acme: tenant_a\n  globex: tenant_b\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	as := func(user string) []string {
		return []string{"SWITCHYARD_CONFIG=" + cfg, "SWITCHYARD_NATS_URL=" + ns.URL, "SWITCHYARD_NATS_USER=" + user,
			"SWITCHYARD_NATS_PASSWORD=switchyard", "SWITCHYARD_NATS_INBOX_PREFIX=_INBOX_" + user}
	}
	env := as("replica")
	if out, err := subprocess(env, "migrate").CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	health, producer := testrun.FreeAddr(t), testrun.FreeAddr(t)
	replica, replicaOut := start(t, env, "run", "-http", health)
	_, _ = start(t, env, "serve", "-http", producer)
	testrun.Wait(t, "replica ready", 30*time.Second, func() bool {
		return subprocess(env, "health", "-http", health).Run() == nil
	})
	testrun.Wait(t, "producer up", 30*time.Second, func() bool {
		return subprocess(env, "health", "-http", producer, "-path", "/healthz").Run() == nil
	})
	for _, host := range []string{"acme.localhost", "globex.localhost"} {
		if _, err := bookVisit(context.Background(), producer, host); err != nil {
			t.Fatal(err)
		}
	}
	testrun.Wait(t, "both visits logged", 30*time.Second, func() bool {
		out := replicaOut.String()
		return strings.Contains(out, "tenant acme, shard tenant_a, request ") && strings.Contains(out, "tenant globex, shard tenant_b, request ")
	})
	if out, err := subprocess(as("operator"), "status").CombinedOutput(); err != nil {
		t.Errorf("status as the operator: %v\n%s", err, out)
	}
	if out, err := subprocess(as("operator"), "tail", "-n", "1", "-all", "visits").CombinedOutput(); err == nil || !strings.Contains(string(out), `may not publish to $JS.API.CONSUMER.CREATE.SW_VISITS.>`) {
		t.Errorf("tail as the read-only operator: %v, want it refused at start naming the subject:\n%s", err, out)
	}
	if out, err := subprocess(as("admin"), "tail", "-n", "1", "-all", "visits").CombinedOutput(); err != nil {
		t.Errorf("tail as the admin: %v\n%s", err, out)
	}
	replica.Process.Signal(syscall.SIGTERM)
	if err := replica.Wait(); err != nil {
		t.Fatalf("replica after SIGTERM: %v\n%s", err, replicaOut.String())
	}
	if strings.Contains(replicaOut.String(), "Permissions Violation") {
		t.Errorf("the replica was refused a subject:\n%s", replicaOut.String())
	}
}

// subprocess is the example as a program with args and env added.
func subprocess(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), testrun.ProgramEnv+"=1"), env...)
	return cmd
}

// start starts the example with args until the test ends, collecting
// what it prints.
func start(t *testing.T, env []string, args ...string) (*exec.Cmd, *testrun.Output) {
	t.Helper()
	cmd := subprocess(env, args...)
	return cmd, testrun.Start(t, cmd)
}
