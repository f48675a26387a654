package cli

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"time"

	"github.com/switchyard-go/switchyard/browser"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/stores"
	"github.com/switchyard-go/switchyard/telemetry"
	"go.opentelemetry.io/otel"
)

var runCommand = &command{
	max:     0,
	summary: "relay every configured store (one leader per store across replicas) and run the handler groups, until SIGTERM",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		o := runOptions{
			http:     fs.String("http", c.env("SWITCHYARD_HTTP", ":8080"), "address of /healthz, /readyz and /metrics (env SWITCHYARD_HTTP; empty: none)"),
			natsPort: fs.Int("nats-port", 0, "embedded nats-server: a port to listen on, for other processes and tools (0: none)"),
			replica:  fs.String("replica", c.env("SWITCHYARD_REPLICA", ""), "this replica's name in status (env SWITCHYARD_REPLICA; default host-pid)"),
			noRelays: fs.Bool("no-relays", false, "run no relays (another deployment relays)"),
			drain:    fs.Duration("drain-timeout", 30*time.Second, "how long in-flight handlers may run after SIGTERM"),
			ackWait:  fs.Duration("ack-wait", 30*time.Second, "JetStream AckWait: how long a dead replica keeps its partitions"),
			inFlight: fs.Int("max-in-flight", consumer.DefaultMaxInFlight, "messages of one partition a group may hold unacknowledged (handled one at a time, in order)"),
			turns:    fs.Int("turns", 0, "partitions of a group that run their batches at once; the others wait, their batches growing (0: one per core, at least 2; negative: none waits)"),
			browse:   fs.String("browser", c.env("SWITCHYARD_BROWSER", browseLocal), "the event browser at /browse/ on -http: local (answers loopback clients only), all, or off (env SWITCHYARD_BROWSER)"),
			writes:   fs.Bool("browser-writes", c.env("SWITCHYARD_BROWSER_WRITES", "") == "true", "let the browser replay and discard dead letters (env SWITCHYARD_BROWSER_WRITES=true); it has no login: with -browser all, put it behind your own"),
		}
		return func(ctx context.Context, _ []string) error { return c.run(ctx, o) }
	},
}

type runOptions struct {
	http, replica, browse *string
	natsPort, inFlight    *int
	turns                 *int
	noRelays, writes      *bool
	drain, ackWait        *time.Duration
}

// run sets up telemetry, opens the stores (creating what the
// configuration says to), connects, and runs a handlers.Runner with the
// program's groups, serving health and metrics, until ctx ends.
func (c *call) run(ctx context.Context, o runOptions) error {
	log := c.logger()
	if err := checkBrowse(*o.browse); err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{Service: c.prog.Name, Prometheus: true})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx) // flushing on the way out; the SDK logs failures
	}()
	otel.SetTracerProvider(tel.TracerProvider)
	otel.SetMeterProvider(tel.MeterProvider)

	cfg, err := c.config()
	if err != nil {
		return err
	}
	reg, err := stores.Open(ctx, cfg, stores.WithLogger(log))
	if err != nil {
		return err
	}
	defer reg.Close()
	if err := c.migrateApp(ctx, reg); err != nil {
		return err
	}
	conn, err := c.connect(ctx, cfg, *o.natsPort, log, bus.Permissions{}) // the runner checks its parts
	if err != nil {
		return err
	}
	defer conn.Close()

	runner, err := handlers.NewRunner(conn, reg, handlers.RunnerConfig{
		NoRelays: *o.noRelays,
		Replica:  *o.replica,
		Router:   handlers.RouterConfig{AckWait: *o.ackWait, DrainTimeout: *o.drain, MaxInFlight: *o.inFlight, Turns: *o.turns},
		Logger:   log,
	})
	if err != nil {
		return err
	}
	if err := runner.Add(c.prog.Groups...); err != nil {
		return err
	}
	if *o.http != "" {
		mux := serve(runner, tel.Metrics())
		b, err := mountBrowser(mux, *o.browse, browser.Config{Registry: reg, Conn: conn, Writes: *o.writes, Logger: log})
		if err != nil {
			return err
		}
		if b != nil {
			if err := conn.Check(ctx, "event browser", browser.Permissions(reg.Contexts(), *o.writes)); err != nil {
				return err
			}
		}
		ln, err := net.Listen("tcp", *o.http)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		if b != nil {
			srv.RegisterOnShutdown(b.Close) // live tails never go idle on their own
		}
		go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
		defer shutdown(context.WithoutCancel(ctx), srv)
		log.InfoContext(ctx, "serving health and metrics", "addr", ln.Addr().String(), "browser", *o.browse, "browser_writes", *o.writes)
	}
	return runner.Run(ctx)
}

// shutdown stops srv, giving its requests a few seconds before it cuts
// them off.
func shutdown(ctx context.Context, srv *http.Server) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if srv.Shutdown(ctx) != nil {
		srv.Close() //nolint:errcheck // shutting down anyway
	}
}

// serve serves /healthz (the process is up) and /readyz (streams
// provisioned, relays running, groups consuming), both with the runner's
// status as JSON: every relay, and the partitions that wait for the
// infrastructure, with why; and /metrics.
func serve(r *handlers.Runner, metrics http.Handler) *http.ServeMux {
	status := func(w http.ResponseWriter, ready bool) {
		st, rec := r.Status(), r.Record()
		blocked := map[string]any{} // group → partition → why it waits
		for g, sh := range rec.Groups {
			if len(sh.Blocked) > 0 {
				blocked[g] = sh.Blocked
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if !ready || st.Ready {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": st.Ready, "relays": rec.Relays, "blocked": blocked}) //nolint:errcheck // the client went away
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { status(w, false) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { status(w, true) })
	mux.Handle("GET /metrics", metrics)
	return mux
}
