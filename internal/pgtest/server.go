package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/switchyard-go/switchyard/internal/testrun"
)

// Server is a PostgreSQL server a test started itself, in a folder of its
// own, on a free loopback port, with trust authentication for user
// postgres; it is stopped and removed when the test ends.
type Server struct {
	Dir  string // its data folder
	Port int
	bin  string
}

// URL is the server's URL for database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// StartServer initdbs and starts a server with the extra settings given
// (name=value). It needs PostgreSQL's binaries (initdb, pg_ctl): without
// them the test skips, or fails under CI=true. Run as root, the server
// runs as the postgres user.
func StartServer(t testing.TB, settings ...string) *Server {
	t.Helper()
	s := &Server{bin: binDir(t), Port: freePort(t)}
	s.Dir = ownedDir(t, "primary")
	s.run(t, "initdb", "-D", s.Dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale")
	s.start(t, settings...)
	return s
}

// StartReplica makes a streaming replica of s with pg_basebackup and
// starts it on a port of its own.
func (s *Server) StartReplica(t testing.TB, settings ...string) *Server {
	t.Helper()
	r := &Server{bin: s.bin, Port: freePort(t)}
	r.Dir = ownedDir(t, "replica")
	os.Remove(r.Dir) // pg_basebackup makes it
	r.run(t, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres", "-D", r.Dir, "-R", "-X", "stream", "-c", "fast")
	r.start(t, settings...)
	return r
}

// start starts the server in s.Dir and waits until it answers.
func (s *Server) start(t testing.TB, settings ...string) {
	t.Helper()
	opts := []string{"-p " + strconv.Itoa(s.Port), "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=" + s.Dir, "-c fsync=off"}
	for _, kv := range settings {
		opts = append(opts, "-c "+kv)
	}
	// Stopped at the end even when the start below fails half way.
	t.Cleanup(func() {
		exec.Command(filepath.Join(s.bin, "pg_ctl"), "-D", s.Dir, "-m", "immediate", "-w", "stop").Run() //nolint:errcheck // best effort
		if os.Geteuid() == 0 {
			exec.Command("runuser", "-u", "postgres", "--", filepath.Join(s.bin, "pg_ctl"), "-D", s.Dir, "-m", "immediate", "-w", "stop").Run() //nolint:errcheck
		}
	})
	s.run(t, "pg_ctl", "-D", s.Dir, "-l", filepath.Join(s.Dir, "server.log"), "-w", "-t", "60", "-o", strings.Join(opts, " "), "start")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("server on port %d does not answer: %v", s.Port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs one of PostgreSQL's programs, as the postgres user when root.
func (s *Server) run(t testing.TB, prog string, args ...string) {
	t.Helper()
	path := filepath.Join(s.bin, prog)
	cmd := exec.Command(path, args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
}

// binDir finds PostgreSQL's binaries: PG_BIN, pg_config --bindir, or
// Debian's /usr/lib/postgresql/<version>/bin.
func binDir(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("PG_BIN")}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	candidates = append(candidates, debian...)
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "pg_basebackup")); err == nil {
			return dir
		}
	}
	unavailable(t, "no PostgreSQL binaries (initdb, pg_ctl, pg_basebackup): set PG_BIN")
	return ""
}

// OwnedDir makes a folder a server's user may read and write (for its
// certificate and key), removed when t ends.
func OwnedDir(t testing.TB, name string) string { t.Helper(); return ownedDir(t, name) }

// GiveToServer makes files the server's user's, as PostgreSQL wants its
// key file.
func GiveToServer(t testing.TB, paths ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}

// ownedDir makes a folder the server's user may write, removed when t ends.
func ownedDir(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sw-pg-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user to run the server: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// freePort is a loopback port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(testrun.FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// Exec runs sql on database db of s as postgres.
func (s *Server) Exec(t testing.TB, db, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// PauseReplay stops a replica applying what it receives; ResumeReplay
// starts it again.
func (s *Server) PauseReplay(t testing.TB) {
	t.Helper()
	s.Exec(t, "postgres", "SELECT pg_wal_replay_pause()")
}
func (s *Server) ResumeReplay(t testing.TB) {
	t.Helper()
	s.Exec(t, "postgres", "SELECT pg_wal_replay_resume()")
}

// Replicated starts a primary and a streaming replica of it, with a user
// "reader" that may only read (pg_read_all_data), and returns both.
func Replicated(t testing.TB) (primary, replica *Server) {
	t.Helper()
	primary = StartServer(t)
	primary.Exec(t, "postgres", "CREATE ROLE reader LOGIN; GRANT pg_read_all_data TO reader")
	return primary, primary.StartReplica(t)
}

// ReaderURL is s's URL for database db as the user "reader".
func (s *Server) ReaderURL(db string) string {
	return fmt.Sprintf("postgres://reader@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}
