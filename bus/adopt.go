package bus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/internal/jspub"
)

// Adoption makes a Conn of a *nats.Conn the application connected itself
// (its own TLS, credentials, callbacks): the application makes the
// connection with the Adoption's Options among its own, which keep what
// relays rely on (publishes that fail while reconnecting, never queued to
// overtake; a batch sent on one connection), then hands it over:
//
//	ad := bus.NewAdoption()
//	nc, err := nats.Connect(url, append(myOptions, ad.Options()...)...)
//	conn, err := ad.Conn(nc, bus.Config{})
//
// The connection stays the application's: Conn.Close leaves it open.
type Adoption struct{ fence *fence }

// NewAdoption returns an Adoption for one connection.
func NewAdoption() *Adoption { return &Adoption{fence: &fence{}} }

// Options are what the connection must be made with, after the
// application's own options.
func (a *Adoption) Options() []nats.Option {
	return []nats.Option{nats.SetCustomDialer(a.fence), nats.ReconnectBufSize(-1)}
}

// ErrNotAdoptable: the *nats.Conn given to Adoption.Conn was not made
// with the Adoption's Options, or is closed.
var ErrNotAdoptable = errors.New("the NATS connection was not made with the Adoption's options")

// Conn makes a Conn of nc. cfg's URL, Embedded and Security do not apply
// (nc is connected already); the rest does.
func (a *Adoption) Conn(nc *nats.Conn, cfg Config) (*Conn, error) {
	switch {
	case nc == nil || nc.IsClosed():
		return nil, &ConfigError{Path: "nats.Conn", Err: errors.New("nil or closed")}
	case nc.Opts.CustomDialer != a.fence || nc.Opts.ReconnectBufSize != -1:
		return nil, &ConfigError{Path: "nats.Conn", Err: ErrNotAdoptable}
	case cfg.URL != "" || cfg.Security != (Security{}):
		return nil, &ConfigError{Path: "URL", Err: errors.New("an adopted connection is connected already: leave URL and Security empty")}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	c := &Conn{cfg: cfg, nc: nc, fence: a.fence, stream: map[string]*Stream{}, url: redactURL(nc.ConnectedUrl()), adopted: true}
	prev := nc.Opts.DisconnectedErrCB
	nc.SetDisconnectErrHandler(func(nc *nats.Conn, err error) {
		if p := c.pub.Load(); p != nil {
			p.FailAll(nats.ErrDisconnected)
		}
		if prev != nil {
			prev(nc, err)
		}
	})
	var err error
	c.js, err = jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.APITimeout), jetstream.WithPublishAsyncTimeout(cfg.AckTimeout), jetstream.WithPublishAsyncMaxPending(maxPending))
	if err != nil {
		return nil, &Error{Op: "jetstream", URL: c.url, Err: err}
	}
	pub, err := jspub.New(nc)
	if err != nil {
		return nil, &Error{Op: "subscribe to acks", URL: c.url, Err: err}
	}
	c.pub.Store(pub)
	return c, nil
}

// release ends an adopted connection's use: its subscriptions go, the
// connection stays open.
func (c *Conn) release() error {
	err := c.pub.Load().Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ferr := c.nc.FlushWithContext(ctx); err == nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
		err = ferr
	}
	return err
}
