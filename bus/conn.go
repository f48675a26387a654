package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/internal/filelock"
	"github.com/switchyard-go/switchyard/internal/jspub"
)

// ErrUnavailable means NATS could not be reached or stopped answering. The
// relay backs off and resumes by itself.
var ErrUnavailable = errors.New("nats unavailable")

// Error is a failed bus operation: Op names it, URL the server (without
// credentials).
type Error struct {
	Op  string
	URL string
	Err error
}

func (e *Error) Error() string {
	if e.URL == "" {
		return "bus: " + e.Op + ": " + e.Err.Error()
	}
	return "bus: " + e.Op + " (" + e.URL + "): " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Conn is a NATS connection with JetStream, to an external server or to an
// embedded one it started. It reconnects for ever; publishes made while it
// is reconnecting fail at once instead of being buffered, so nothing a
// relay sends after a reconnect can overtake what the broken connection
// lost.
type Conn struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	srv    *server.Server
	unlock func() // the embedded server's directory
	url    string
	fence  *fence
	// adopted: nc is the application's (Adoption); Close leaves it open.
	adopted bool
	mu      sync.Mutex
	stream  map[string]*Stream // provisioned, by context
	grants  grants             // the user's permissions (Check)

	pace pace                            // events its relays read, for their gathering
	pub  atomic.Pointer[jspub.Publisher] // its relays' publisher
}

// Connect connects to cfg.URL, or starts the embedded server when it is
// empty. A server that cannot be reached is an *Error wrapping
// ErrUnavailable.
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	c := &Conn{cfg: cfg, fence: &fence{}, stream: map[string]*Stream{}}
	log := cfg.Logger
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectJitter(cfg.ReconnectWait/4, cfg.ReconnectWait/4),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if p := c.pub.Load(); p != nil {
				p.FailAll(nats.ErrDisconnected)
			}
			if err == nil {
				return // closed on purpose
			}
			log.LogAttrs(context.Background(), slog.LevelWarn, "nats disconnected", slog.String("url", c.url), slog.Any("error", err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.LogAttrs(context.Background(), slog.LevelInfo, "nats reconnected", slog.String("url", redactURL(nc.ConnectedUrl())))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.LogAttrs(context.Background(), slog.LevelWarn, "nats error", slog.Any("error", err))
		}),
	}
	if cfg.URL == "" {
		srv, unlock, err := startEmbedded(cfg.Embedded, log)
		if err != nil {
			return nil, &Error{Op: "start embedded nats-server", Err: err}
		}
		c.srv, c.unlock = srv, unlock
		c.url = "embedded:" + cfg.Embedded.Dir
		opts = append(opts, nats.InProcessServer(srv))
	} else {
		c.url = redactURL(cfg.URL)
		sec, err := cfg.Security.options()
		if err != nil {
			return nil, err
		}
		opts = append(append(opts, nats.SetCustomDialer(c.fence)), sec...)
	}
	nc, err := connectRetrying(ctx, cfg.URL, opts)
	if err != nil {
		c.shutdownServer()
		return nil, &Error{Op: "connect", URL: c.url, Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	c.nc = nc
	c.js, err = jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.APITimeout), jetstream.WithPublishAsyncTimeout(cfg.AckTimeout), jetstream.WithPublishAsyncMaxPending(maxPending))
	if err != nil {
		c.Close()
		return nil, &Error{Op: "jetstream", URL: c.url, Err: err}
	}
	pub, err := jspub.New(nc)
	if err != nil {
		c.Close()
		return nil, &Error{Op: "subscribe to acks", URL: c.url, Err: err}
	}
	c.pub.Store(pub)
	return c, nil
}

// connectRetrying dials until ctx is done or the first attempt fails for a
// reason other than the server being down: a process and its NATS often
// start together.
func connectRetrying(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		if !errors.Is(err, nats.ErrNoServers) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ConnectTimeout bounds Connect when its context has no deadline.
const ConnectTimeout = 10 * time.Second

// maxPending bounds the publishes awaiting their acks: those of the
// Conn's JetStream handle (a publish beyond it waits), and those of each
// relay (it keeps fewer batches in flight when BatchSize is large).
const maxPending = 8192

// publisher is what the Conn's relays publish through.
func (c *Conn) publisher() *jspub.Publisher { return c.pub.Load() }

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, ConnectTimeout)
}

func startEmbedded(e Embedded, log *slog.Logger) (srv *server.Server, unlock func(), err error) {
	interval, always, err := e.syncInterval()
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		return nil, nil, err
	}
	// Two servers writing one directory corrupt it: the first holds it.
	unlock, ok, err := filelock.Lock(filepath.Join(e.Dir, "switchyard.lock"))
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, &DirInUseError{Dir: e.Dir}
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	opts := &server.Options{
		ServerName:   "switchyard-embedded",
		JetStream:    true,
		StoreDir:     e.Dir,
		SyncInterval: interval,
		SyncAlways:   always,
		MaxPayload:   e.MaxPayload,
		NoSigs:       true,
		NoLog:        true,
		Host:         e.Host,
		Port:         e.Port,
		DontListen:   e.Port == 0,
	}
	srv, err = server.NewServer(opts)
	if err != nil {
		return nil, nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, nil, errors.New("embedded nats-server did not start within 30s")
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "embedded nats-server started",
		slog.String("dir", e.Dir), slog.String("sync_interval", e.SyncInterval), slog.String("listen", listenAddr(srv, e)))
	return srv, unlock, nil
}

// DirInUseError is an embedded server's directory that another one, in
// this process or another, is using.
type DirInUseError struct{ Dir string }

func (e *DirInUseError) Error() string {
	return "directory " + e.Dir + " is in use by another embedded nats-server: give each process a directory of its own " +
		"(bus.Embedded.Dir, or a data_dir of its own), or point them all at one NATS server (URL)"
}

func listenAddr(srv *server.Server, e Embedded) string {
	if e.Port == 0 {
		return "none (in-process)"
	}
	return srv.ClientURL()
}

// NATS returns the underlying connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns the JetStream context.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Server names the NATS server c talks to, as logs and errors show it: its
// URL without credentials, or "embedded:<dir>".
func (c *Conn) Server() string { return c.url }

// Embedded reports whether c runs its own nats-server.
func (c *Conn) Embedded() bool { return c.srv != nil }

// ClientURL is a URL other processes can connect to: cfg.URL's first server,
// or the embedded server's listener ("" when it listens nowhere).
func (c *Conn) ClientURL() string {
	if c.srv == nil {
		return strings.Split(c.cfg.URL, ",")[0]
	}
	if c.cfg.Embedded.Port == 0 {
		return ""
	}
	return c.srv.ClientURL()
}

// Close drains the connection and stops the embedded server, if any. An
// adopted connection (Adoption) stays open: Close releases only what the
// Conn subscribed.
func (c *Conn) Close() error {
	if c.adopted {
		return c.release()
	}
	var err error
	if c.nc != nil {
		err = c.nc.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !c.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		c.nc.Close()
	}
	c.shutdownServer()
	if errors.Is(err, nats.ErrConnectionClosed) {
		err = nil
	}
	return err
}

func (c *Conn) shutdownServer() {
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
		c.unlock()
	}
}

// fence dials the connection's TCP sockets, and refuses to reconnect while
// a relay is sending a batch: a batch's messages then all travel on one
// connection, so a later message cannot reach JetStream over a new
// connection when an earlier one died with the old.
type fence struct {
	sending atomic.Int64
	d       net.Dialer
}

func (f *fence) Dial(network, address string) (net.Conn, error) {
	if f.sending.Load() > 0 {
		return nil, errors.New("bus: a relay batch is in flight on the broken connection; reconnecting once it settles")
	}
	f.d.Timeout = 5 * time.Second
	return f.d.Dial(network, address)
}

// begin marks a batch as being sent; it reports false when the connection
// is not up, and the batch must not start. end must follow either way.
func (c *Conn) begin() bool {
	c.fence.sending.Add(1)
	return c.nc.Status() == nats.CONNECTED
}

func (c *Conn) end() { c.fence.sending.Add(-1) }

// redactURL drops user information from every URL in a comma-separated list.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			if strings.Contains(p, "@") {
				parts[i] = "(unparsable url)"
			}
			continue
		}
		u.User = url.User("redacted")
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
