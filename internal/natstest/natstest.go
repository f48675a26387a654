// Package natstest runs a real nats-server with JetStream inside a test, on
// a free loopback port, with its files in the test's temporary folder — or
// a cluster of them joined by routes ([StartCluster]). A server can be
// stopped and started again on the same port and files, as a restart of
// NATS looks to its clients.
package natstest

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/switchyard-go/switchyard/bus"
)

// Server is a nats-server a test started.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
	URL  string
}

// freePorts returns n distinct loopback ports nothing listens on: each is
// held until all are found, so that none is handed out twice.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// Start starts a server; it stops when t ends. syncAlways makes JetStream
// fsync every write, as production should.
func Start(t testing.TB, syncAlways bool) *Server {
	t.Helper()
	return StartWith(t, func(o *server.Options) { o.SyncAlways = syncAlways })
}

// StartWith starts a server whose options change sets: TLS, users,
// permissions.
func StartWith(t testing.TB, change func(*server.Options)) *Server {
	t.Helper()
	port := freePorts(t, 1)[0]
	s := &Server{t: t, opts: server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	}}
	change(&s.opts)
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
	s.start(true)
}

// start starts the server; with wait, until it takes connections.
func (s *Server) start(wait bool) {
	s.t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatal(err)
	}
	go srv.Start()
	s.srv = srv
	if wait {
		s.ready()
	}
}

// ready waits until the server takes connections.
func (s *Server) ready() {
	s.t.Helper()
	if !s.srv.ReadyForConnections(20 * time.Second) {
		s.t.Fatal("nats-server did not start")
	}
}

// Stop stops the server; clients see their connection drop.
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Cluster is servers joined into one JetStream cluster.
type Cluster struct {
	Servers []*Server
	URL     string // every server's client URL, comma-separated
}

// StartCluster starts n servers (n-1 of them must be up for JetStream to
// have a quorum) joined by routes on loopback, named n0, n1, …; they stop
// when t ends. It returns once JetStream has a meta leader.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	free := freePorts(t, 2*n)
	ports, routes := free[:n], make([]*url.URL, n)
	for i := range n {
		routes[i] = &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(free[n+i])}
	}
	c := &Cluster{}
	var urls []string
	for i := range n {
		s := &Server{t: t, opts: server.Options{
			ServerName: "n" + strconv.Itoa(i), Host: "127.0.0.1", Port: ports[i],
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "sw", Host: "127.0.0.1", Port: free[n+i]},
			Routes:  routes,
		}}
		s.URL = "nats://127.0.0.1:" + strconv.Itoa(ports[i])
		urls = append(urls, s.URL)
		c.Servers = append(c.Servers, s)
	}
	for _, s := range c.Servers {
		s.start(false)
		t.Cleanup(s.Stop)
	}
	for _, s := range c.Servers {
		s.ready()
	}
	c.URL = strings.Join(urls, ",")
	c.waitForLeader()
	return c
}

// waitForLeader waits until JetStream has a meta leader that counts every
// server as a peer with current stats, and every server is current with it:
// before that, creating a replicated stream can wait out a Raft election or
// two (4-9 s each).
func (c *Cluster) waitForLeader() {
	c.Servers[0].t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c.ready() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Servers[0].t.Fatal("the cluster has no JetStream meta leader with every server current")
}

// ready reports whether the cluster's JetStream is ready for replicated
// streams (see waitForLeader).
func (c *Cluster) ready() bool {
	peers, up := 0, 0
	for _, s := range c.Servers {
		if s.srv == nil {
			continue
		}
		up++
		if s.srv.JetStreamIsLeader() {
			peers = len(s.srv.JetStreamClusterPeers())
		}
		if !s.srv.JetStreamIsCurrent() {
			return false
		}
	}
	return peers == up && up > 0
}

// Server returns the server named name.
func (c *Cluster) Server(name string) *Server {
	for _, s := range c.Servers {
		if s.opts.ServerName == name {
			return s
		}
	}
	return nil
}

// Allow is a user's server permissions allowing exactly p.
func Allow(p bus.Permissions) *server.Permissions {
	return &server.Permissions{Publish: &server.SubjectPermission{Allow: p.Publish}, Subscribe: &server.SubjectPermission{Allow: p.Subscribe}}
}
