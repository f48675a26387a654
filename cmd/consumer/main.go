// Command consumer runs Switchyard for the configured stores: a relay for
// every (context, shard) store — one leader per store across all replicas,
// the others standing by — and, with -tap, a handler group per context that
// prints every event as a JSON line. It serves /healthz, /readyz and
// Prometheus' /metrics, exports traces and metrics as the standard OTEL_*
// variables say (package telemetry), and on SIGTERM or SIGINT stops
// fetching, finishes what it holds and exits.
//
//	go run ./cmd/consumer -config deploy/switchyard.yaml -nats nats://localhost:4222 -tap visits
//
// With no -nats URL it starts an embedded nats-server in <data_dir>/nats.
// Configuration comes from the file, then SWITCHYARD_* variables over it
// (see stores.Read: the two are merged, then checked as a whole, every
// problem named by its YAML path or variable), then flags. No context
// configured at all is an error. Applications register their own
// handlers in a main of their own that does what this one does
// (handlers.NewRunner, Runner.Add, Runner.Run).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/stores"
	"github.com/switchyard-go/switchyard/telemetry"
	"go.opentelemetry.io/otel"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

// env returns the value of key in environ, or def.
func env(environ []string, key, def string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key && v != "" {
			return v
		}
	}
	return def
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", env(environ, "SWITCHYARD_CONFIG", ""), "YAML file of contexts, shards and tenants (env SWITCHYARD_CONFIG; none: one sqlite store per context given by SWITCHYARD_CONTEXT_* variables)")
	natsURL := fs.String("nats", env(environ, "SWITCHYARD_NATS_URL", ""), "NATS URL (env SWITCHYARD_NATS_URL; empty: an embedded nats-server in <data_dir>/nats)")
	natsPort := fs.Int("nats-port", 0, "embedded nats-server: port to listen on for other processes (0: none)")
	httpAddr := fs.String("http", env(environ, "SWITCHYARD_HTTP", ":8080"), "address of /healthz, /readyz and /metrics (env SWITCHYARD_HTTP; empty: none)")
	tap := fs.String("tap", env(environ, "SWITCHYARD_TAP", ""), "comma-separated contexts whose events are printed as JSON lines (env SWITCHYARD_TAP)")
	noRelays := fs.Bool("no-relays", false, "run no relays (another deployment relays)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long in-flight handlers may run after SIGTERM")
	ackWait := fs.Duration("ack-wait", 30*time.Second, "JetStream AckWait: how long a dead replica keeps its partitions")
	inFlight := fs.Int("max-in-flight", consumer.DefaultMaxInFlight, "messages of one partition a group may hold unacknowledged (handled one at a time, in order)")
	debug := fs.Bool("debug", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})))
	tel, err := telemetry.Setup(ctx, telemetry.Config{Service: "switchyard-consumer", Prometheus: true})
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

	cfg, err := stores.Read(*configPath, environ)
	if err != nil {
		return err
	}
	if len(cfg.Contexts) == 0 {
		return errors.New("no context configured: give a file (-config or SWITCHYARD_CONFIG), " +
			"or name a context's shards in the environment (SWITCHYARD_CONTEXT_VISITS_SHARDS=default)")
	}
	reg, err := stores.Open(ctx, cfg, stores.WithLogger(log))
	// The stores, relays and router report to the globals set above.
	if err != nil {
		return err
	}
	defer reg.Close()

	dataDir := cfg.DataDir
	if dataDir == "" {
		dataDir = "data"
	}
	conn, err := bus.Connect(ctx, bus.Config{URL: *natsURL, Logger: log, Embedded: bus.Embedded{Dir: filepath.Join(dataDir, "nats"), Port: *natsPort}})
	if err != nil {
		return err
	}
	defer conn.Close()

	runner, err := handlers.NewRunner(conn, reg, handlers.RunnerConfig{
		NoRelays: *noRelays,
		Router:   handlers.RouterConfig{AckWait: *ackWait, DrainTimeout: *drain, MaxInFlight: *inFlight},
		Logger:   log,
	})
	if err != nil {
		return err
	}
	if *tap != "" {
		out := &lines{w: stdout}
		for _, c := range strings.Split(*tap, ",") {
			g := &handlers.Group{Name: "tap-" + c, Context: c}
			handlers.HandleMessage(g, "print", handlers.AllTypes, out.print)
			if err := runner.Add(g); err != nil {
				return err
			}
		}
	}

	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: serve(runner, tel.Metrics()), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
		defer srv.Shutdown(context.WithoutCancel(ctx))
		log.InfoContext(ctx, "consumer: serving health and metrics", "addr", ln.Addr().String())
	}
	return runner.Run(ctx)
}

// serve serves /healthz (the process is up) and /readyz (streams
// provisioned, relays running, groups consuming), both with the runner's
// status as JSON: every relay, and the partitions that wait for the
// infrastructure, with why; and /metrics.
func serve(r *handlers.Runner, metrics http.Handler) http.Handler {
	status := func(w http.ResponseWriter, ready bool) {
		st := r.Status()
		relays := map[string]any{}
		for k, s := range st.Relays {
			e := map[string]any{"leader": s.Leader, "checkpoint": s.Checkpoint.String(), "published": s.Published,
				"quarantined": s.Quarantined, "behind_s": s.Behind.Seconds()}
			if s.LastError != nil {
				e["last_error"] = s.LastError.Error()
			}
			relays[k] = e
		}
		blocked := map[string]any{} // group → partition → why it waits
		for g, gs := range st.Groups {
			if len(gs.Blocked) == 0 {
				continue
			}
			parts := map[string]any{}
			for p, b := range gs.Blocked {
				parts[strconv.Itoa(p)] = map[string]any{"since": b.Since.UTC().Format(time.RFC3339), "waits": b.Waits, "reason": b.Reason}
			}
			blocked[g] = parts
		}
		w.Header().Set("Content-Type", "application/json")
		if !ready || st.Ready {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": st.Ready, "relays": relays, "blocked": blocked}) //nolint:errcheck // the client went away
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { status(w, false) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { status(w, true) })
	mux.Handle("GET /metrics", metrics)
	return mux
}

// lines prints messages as JSON lines, one writer at a time.
type lines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lines) print(_ context.Context, m handlers.Message) error {
	b, err := json.Marshal(map[string]any{
		"context": m.Source, "shard": m.Shard, "stream": m.Event.Stream, "version": m.Event.Version,
		"type": m.Event.Type, "data": json.RawMessage(m.Event.Data), "metadata": m.Event.Metadata,
	})
	if err != nil {
		return handlers.Permanent(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err = fmt.Fprintf(l.w, "%s\n", b)
	return err
}
