package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/testrun"
)

func TestMain(m *testing.M) {
	if testrun.IsProgram() {
		main()
	}
	os.Exit(m.Run())
}

// consumer runs this binary as the consumer with args in dir, with env.
func consumer(dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHYARD_CONTEXT_") && !strings.HasPrefix(kv, "SWITCHYARD_CONFIG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, testrun.ProgramEnv+"=1"), env...)
	return cmd
}

// exit runs the consumer to the end and returns its exit code and output.
func exit(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	out, err := consumer(dir, env, args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// The binary on embedded defaults: it runs until SIGTERM and exits 0; a
// second process on the same folder is refused; each bad configuration
// exits 1 listing every problem; a bad command line exits 2.
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	env := []string{"SWITCHYARD_CONTEXT_VISITS_SHARDS=default,tenant-a"}
	addr := testrun.FreeAddr(t)
	run := consumer(dir, env, "run", "-http", addr)
	logs := testrun.Start(t, run)
	testrun.Wait(t, "ready", 30*time.Second, func() bool { return consumer(dir, nil, "health", "-http", addr).Run() == nil })

	if code, out := exit(t, dir, env, "-http", ""); code != 1 || !strings.Contains(out, "in use") {
		t.Errorf("a second process on %s/data/nats: exit %d\n%s", dir, code, out)
	}
	file := filepath.Join(t.TempDir(), "sw.yaml")
	if err := os.WriteFile(file, []byte("contexts:\n  visits:\n    shards: [\"a b\"]\n  visit-log: {}\n  visit_log: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env, args []string
		code      int
		want      []string
	}{
		{nil, nil, 1, []string{"no context configured", "SWITCHYARD_CONTEXT_VISITS_SHARDS"}},
		{[]string{"SWITCHYARD_CONFIG=" + file, "SWITCHYARD_MAX_EVENT_BYTES=lots", "SWITCHYARD_CONTEXT_BILLING_BACKEND=postgres", "SWITCHYARD_CONTEXT_BILLING_DSN=postgres://db:54x32/b"},
			[]string{"migrate"}, 1, []string{"contexts.visits.shards[0]", "SWITCHYARD_MAX_EVENT_BYTES", "collides with contexts.visit-log", "SWITCHYARD_CONTEXT_BILLING_DSN (contexts.billing.dsn)"}},
		{env, []string{"tail", "visit"}, 2, []string{`no context "visit" is configured`}},
		{env, []string{"-config", "pg.yaml", "migrate"}, 2, []string{`"migrate" is a subcommand`}},
		{env, []string{"-tap", "visits"}, 2, []string{"flag provided but not defined: -tap"}},
	} {
		code, out := exit(t, dir, tc.env, tc.args...)
		if code != tc.code {
			t.Errorf("%v %v: exit %d, want %d\n%s", tc.env, tc.args, code, tc.code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v %v: no %q in\n%s", tc.env, tc.args, w, out)
			}
		}
	}

	run.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", logs.String())
	}
}
