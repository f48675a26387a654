package testrun

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
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

// Output collects what a program writes, from several goroutines (a
// process's stdout and stderr) while the test reads it.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String is everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// FreeAddr returns a loopback address with a port nothing listens on, for
// a program to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start starts cmd with its output collected, and stops it (killing it if
// it still runs) when t ends, logging the output if t failed.
func Start(t testing.TB, cmd *exec.Cmd) *Output {
	t.Helper()
	out := &Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s:\n%s", strings.Join(cmd.Args[1:], " "), out.String())
		}
	})
	return out
}
