// Package natstest runs a real nats-server with JetStream inside a test, on
// a free loopback port, with its files in the test's temporary folder. The
// server can be stopped and started again on the same port and files, as a
// restart of NATS looks to its clients.
package natstest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a nats-server a test started.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
	URL  string
}

// Start starts a server; it stops when t ends. syncAlways makes JetStream
// fsync every write, as production should.
func Start(t testing.TB, syncAlways bool) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{t: t, opts: server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(),
		SyncAlways: syncAlways, NoSigs: true, NoLog: true,
	}}
	s.URL = "nats://127.0.0.1:" + strconv.Itoa(port)
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again (it must be stopped) on the same port and
// files.
func (s *Server) Restart() {
	s.t.Helper()
	s.RestartWith(nil)
}

// RestartWith is Restart with the server's options changed by change (a
// smaller max payload, say); they stay so for later restarts.
func (s *Server) RestartWith(change func(*server.Options)) {
	s.t.Helper()
	if change != nil {
		change(&s.opts)
	}
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		s.t.Fatal("nats-server did not start")
	}
	s.srv = srv
}

// Stop stops the server; clients see their connection drop.
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}
