package cli_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/cli"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// runCLI runs the program without groups in this process and returns its
// exit code, stdout and stderr.
func runCLI(ctx context.Context, environ []string, args ...string) (int, string, string) {
	var out, errOut testrun.Output
	code := cli.Program{Name: "sw"}.Run(ctx, args, environ, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCommandLine(t *testing.T) {
	env := []string{"SWITCHYARD_DATA_DIR=" + t.TempDir(), "SWITCHYARD_CONTEXT_VISITS_SHARDS=default"}
	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
		code    int
		want    []string // in stderr, or stdout for exit 0
	}{
		{"help", nil, []string{"help"}, cli.ExitOK, []string{"migrate [context[/shard]...]", "dlq replay", "Exit codes"}},
		{"a subcommand's help", nil, []string{"migrate", "-h"}, cli.ExitOK, []string{"Usage: sw migrate", "-config"}},
		{"unknown subcommand", nil, []string{"migrat"}, cli.ExitUsage, []string{`unknown subcommand "migrat"`}},
		{"dlq without an action", nil, []string{"dlq"}, cli.ExitUsage, []string{`unknown subcommand "dlq"`, "dlq list"}},
		{"a subcommand after flags", env, []string{"-config", "pg.yaml", "migrate"}, cli.ExitUsage, []string{`"migrate" is a subcommand: it comes first`}},
		{"unknown flag", env, []string{"status", "-nope"}, cli.ExitUsage, []string{"flag provided but not defined: -nope", "Usage: sw status"}},
		{"a flag of another subcommand", env, []string{"migrate", "-http", ":0"}, cli.ExitUsage, []string{"-http"}},
		{"missing arguments", env, []string{"read", "visits"}, cli.ExitUsage, []string{"want <context> <shard> <stream>"}},
		{"no configuration", nil, []string{"migrate"}, cli.ExitError, []string{"no context configured", "SWITCHYARD_CONTEXT_VISITS_SHARDS"}},
		{"a bad backend", []string{"SWITCHYARD_CONTEXT_VISITS_BACKEND=oracle"}, []string{"run", "-http", ""}, cli.ExitError, []string{`SWITCHYARD_CONTEXT_VISITS_BACKEND (contexts.visits.backend): unknown backend "oracle"`}},
		{"an unknown context", env, []string{"tail", "visit"}, cli.ExitUsage, []string{`no context "visit" is configured (configured: visits)`}},
		{"an unknown shard", env, []string{"read", "visits", "tenant-a", "Visit-1"}, cli.ExitUsage, []string{`no shard "tenant-a" (configured: default)`}},
		{"a store that does not exist", env, []string{"read", "visits", "default", "Visit-1"}, cli.ExitError, []string{"no such file"}},
		{"a stream named like a subcommand", env, []string{"read", "visits", "default", "status"}, cli.ExitError, []string{"no such file"}},
		{"a bad sequence", env, []string{"dlq", "show", "visits", "x"}, cli.ExitUsage, []string{`seq "x"`}},
		{"replay of nothing", env, []string{"dlq", "replay", "visits"}, cli.ExitUsage, []string{"or give -all"}},
		{"-group without -all", env, []string{"dlq", "replay", "visits", "3", "-group", "g"}, cli.ExitUsage, []string{"-group goes with -all"}},
		{"a bad -browser", env, []string{"run", "-http", "", "-browser", "public"}, cli.ExitUsage, []string{`-browser "public": want local, all or off`}},
		{"a tool with no NATS to ask", env, []string{"status"}, cli.ExitError, []string{"no NATS to ask: give -nats URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(context.Background(), tc.environ, tc.args...)
			text := errOut
			if tc.code == cli.ExitOK {
				text = out
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("no %q in\n%s", w, text)
				}
			}
		})
	}
}

// Every problem of the file and of the environment comes out at once.
func TestEveryConfigProblem(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sw.yaml")
	yaml := "contexts:\n  visits:\n    shards: [\"a b\"]\n  visit-log: {}\n  visit_log: {}\n  billing:\n    backend: postgres\n    dsn: postgres://db:54x32/billing\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(context.Background(), []string{"SWITCHYARD_MAX_EVENT_BYTES=lots"}, "run", "-http", "", "-config", file)
	if code != cli.ExitError {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"contexts.visits.shards[0]", "SWITCHYARD_MAX_EVENT_BYTES", "contexts.visit_log: collides with contexts.visit-log", "contexts.billing.dsn"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("no %q in\n%s", want, errOut)
		}
	}
}

// run on embedded defaults, and the tools against it: health, status,
// tail and read; a second run on the same folder is refused.
func TestEmbedded(t *testing.T) {
	dir := t.TempDir()
	env := []string{"SWITCHYARD_DATA_DIR=" + dir, "SWITCHYARD_CONTEXT_VISITS_SHARDS=default,tenant-a"}
	addr, port := testrun.FreeAddr(t), freePort(t)
	logs := &testrun.Output{}
	stop := testrun.Background(t, "run", func(ctx context.Context) error {
		var out testrun.Output
		if code := (cli.Program{Name: "sw"}).Run(ctx, []string{"-http", addr, "-nats-port", strconv.Itoa(port)}, env, &out, logs); code != 0 {
			return fmt.Errorf("exit %d:\n%s", code, logs.String())
		}
		return nil
	})
	testrun.Wait(t, "ready", 30*time.Second, func() bool {
		code, _, _ := runCLI(context.Background(), nil, "health", "-http", addr)
		return code == 0
	})
	if code, _, errOut := runCLI(context.Background(), env, "run", "-http", ""); code != cli.ExitError || !strings.Contains(errOut, "in use") {
		t.Fatalf("a second run on %s: exit %d\n%s", dir, code, errOut)
	}
	if code, _, errOut := runCLI(context.Background(), env, "status"); code != cli.ExitError || !strings.Contains(errOut, "-nats-port") {
		t.Fatalf("status without -nats while run holds the embedded NATS: exit %d\n%s", code, errOut)
	}

	st, err := sqlite.Open(context.Background(), sqlite.Config{Context: "visits", Shard: "tenant-a", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ev, _ := store.NewEvent("VisitBooked", map[string]string{"visit": "42"})
	stored, err := st.Append(context.Background(), "Visit-42", store.NoStream, ev)
	if err != nil {
		t.Fatal(err)
	}
	nats := "nats://127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, out, errOut := runCLI(ctx, env, "tail", "visits", "-all", "-n", "1", "-nats", nats)
	if code != 0 || !strings.Contains(out, `"data":{"visit":"42"}`) || !strings.Contains(out, `"shard":"tenant-a"`) {
		t.Fatalf("tail: exit %d\n%s\n%s", code, out, errOut)
	}
	testrun.Wait(t, "status: published", 20*time.Second, func() bool {
		_, out, _ := runCLI(context.Background(), env, "status", "-nats", nats)
		return strings.Contains(out, "visits/tenant-a") && strings.Contains(out, "REPLICA") && !strings.Contains(out, "none running") &&
			!strings.Contains(out, "  none  ")
	})
	for _, args := range [][]string{{"read", "visits", "tenant-a", "Visit-42"}, {"read", "-backward", "visits", "tenant-a", "Visit-42"}} {
		code, out, errOut = runCLI(context.Background(), env, args...)
		if code != 0 || !strings.Contains(out, "VisitBooked") || !strings.Contains(out, stored[0].ID.String()) {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	if got := get(t, "http://"+addr+"/metrics"); !strings.Contains(got, "switchyard_relay_published_total{") {
		t.Fatalf("/metrics has no relay counter:\n%s", got)
	}
	page := get(t, "http://"+addr+"/browse/stores/visits/tenant-a/events/"+stored[0].ID.String())
	if !strings.Contains(page, "VisitBooked") || !strings.Contains(page, `<base href="/browse/">`) || !strings.Contains(page, "read-only") {
		t.Fatalf("the browser's page of the event:\n%s", page)
	}

	// A live tail left open does not keep run from stopping.
	resp, err := http.Get("http://" + addr + "/browse/tail/visits/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("run does not stop while a live tail is open")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
