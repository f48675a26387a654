package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/internal/testrun"
)

func TestMain(m *testing.M) {
	if testrun.IsProgram() {
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
	out := testrun.Program(t, env...)
	if !strings.Contains(out, "refused: ctx carries an open transaction of store billing/tenant-a") {
		t.Errorf("billing's write to visits' store was not refused:\n%s", out)
	}
	chain := regexp.MustCompile(`(?m)^  visits  VisitBooked   (\S+) causation=- .*\n  billing InvoiceIssued (\S+) causation=(\S+) .*\n  visits  VisitInvoiced \S+ causation=(\S+) `)
	m := chain.FindStringSubmatch(out)
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
