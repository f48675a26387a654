package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/pgtest"
)

// mainEnv makes the test binary run the example instead of its tests.
const mainEnv = "SWITCHYARD_EXAMPLE_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runExample runs the example as a program in a folder of its own with env
// added, and checks what it printed: one chain visits → billing → visits,
// each event caused by the one before, and billing's write to visits'
// store refused.
func runExample(t *testing.T, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHYARD_CONTEXT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, append([]string{mainEnv + "=1"}, env...)...)
	cmd.WaitDelay = time.Minute
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("contexts: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "refused: ctx carries an open transaction of store billing/tenant-a") {
		t.Errorf("billing's write to visits' store was not refused:\n%s", out)
	}
	chain := regexp.MustCompile(`(?m)^  visits  VisitBooked   (\S+) causation=- .*\n  billing InvoiceIssued (\S+) causation=(\S+) .*\n  visits  VisitInvoiced \S+ causation=(\S+) `)
	m := chain.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no chain visits → billing → visits printed:\n%s", out)
	}
	if m[3] != m[1] || m[4] != m[2] {
		t.Errorf("causations %s, %s; want %s, %s:\n%s", m[3], m[4], m[1], m[2], out)
	}
}

func TestOnEmbeddedDefaults(t *testing.T) { runExample(t) }

// Each context in a PostgreSQL database of its own.
func TestOnPostgres(t *testing.T) {
	runExample(t,
		"SWITCHYARD_CONTEXT_VISITS_BACKEND=postgres", "SWITCHYARD_CONTEXT_VISITS_DSN="+pgtest.Database(t),
		"SWITCHYARD_CONTEXT_BILLING_BACKEND=postgres", "SWITCHYARD_CONTEXT_BILLING_DSN="+pgtest.Database(t))
}
