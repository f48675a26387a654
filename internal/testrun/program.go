package testrun

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ProgramEnv, set in its environment, makes a test binary whose TestMain
// calls [IsProgram] run its package's main instead of the tests.
const ProgramEnv = "SWITCHYARD_TEST_RUN_MAIN"

// IsProgram reports whether this test binary was started by [Program] to
// run main.
func IsProgram() bool { return os.Getenv(ProgramEnv) != "" }

// Program runs the test binary as its package's program (see [IsProgram])
// in a folder of its own, without the caller's SWITCHYARD_CONTEXT_ and
// OTEL_ variables and with env added, and returns what it printed. A
// program that fails fails t.
func Program(t testing.TB, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHYARD_CONTEXT_") && !strings.HasPrefix(kv, "OTEL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, append([]string{ProgramEnv + "=1"}, env...)...)
	cmd.WaitDelay = time.Minute
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", os.Args[0], err, out)
	}
	return string(out)
}
