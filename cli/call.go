package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/stores"
	"github.com/switchyard-go/switchyard/telemetry"
)

// call is one run of a subcommand: the flags every subcommand takes, the
// environment and where output goes.
type call struct {
	prog           Program
	name           string
	environ        []string
	stdout, stderr io.Writer

	configPath string
	natsURL    string
	asJSON     bool
	debug      bool
}

// flags declares the flags every subcommand takes.
func (c *call) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.configPath, "config", c.env("SWITCHYARD_CONFIG", ""), "YAML file of contexts, shards and tenants (env SWITCHYARD_CONFIG; none: contexts from SWITCHYARD_CONTEXT_* variables)")
	fs.StringVar(&c.natsURL, "nats", c.env("SWITCHYARD_NATS_URL", ""), "NATS URL (env SWITCHYARD_NATS_URL; empty: an embedded nats-server in <data_dir>/nats)")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON for scripts instead of tables")
	fs.BoolVar(&c.debug, "debug", false, "log at debug level")
}

// env returns the value of key in the environment, or def.
func (c *call) env(key, def string) string {
	for _, kv := range c.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key && v != "" {
			return v
		}
	}
	return def
}

// logger logs to stderr: JSON at info level for run, with the trace and
// span ids of the ctx it is given (telemetry.LogHandler); text at warning
// level for the tools, whose output is their answer.
func (c *call) logger() *slog.Logger {
	if c.name == "run" {
		level := slog.LevelInfo
		if c.debug {
			level = slog.LevelDebug
		}
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(c.stderr, &slog.HandlerOptions{Level: level})))
	}
	level := slog.LevelWarn
	if c.debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
}

// config reads the configuration: the file, then the environment over
// it, checked as a whole (stores.Read). None at all is an error.
func (c *call) config() (stores.Config, error) {
	cfg, err := stores.Read(c.configPath, c.environ)
	if err != nil {
		return cfg, err
	}
	if len(cfg.Contexts) == 0 {
		return cfg, errors.New("no context configured: give a file (-config or SWITCHYARD_CONFIG), " +
			"or name a context's shards in the environment (SWITCHYARD_CONTEXT_VISITS_SHARDS=default)")
	}
	return cfg, nil
}

// checkContext checks that name is a configured context: a usage error.
func checkContext(cfg stores.Config, name string) error {
	if _, ok := cfg.Contexts[name]; !ok {
		return usage(fmt.Errorf("no context %q is configured (configured: %s)", name, strings.Join(names(cfg.Contexts), ", ")))
	}
	return nil
}

// connect connects to NATS, or starts the embedded server in the data
// folder: for a tool only one that exists (a deployment on embedded
// defaults, stopped). A tool meeting a folder a running process holds
// says how to reach that process's server instead. It checks that the
// NATS user may do what the subcommand needs (a *bus.PermissionError
// naming the subject it may not).
func (c *call) connect(ctx context.Context, cfg stores.Config, port int, log *slog.Logger, need bus.Permissions) (*bus.Conn, error) {
	dataDir := cfg.DataDir
	if dataDir == "" {
		dataDir = "data"
	}
	dir := filepath.Join(dataDir, "nats")
	_, err := os.Stat(dir)
	if c.natsURL == "" && c.name != "run" && err != nil {
		return nil, fmt.Errorf("no NATS to ask: give -nats URL (or SWITCHYARD_NATS_URL); the embedded server's folder %s: %w", dir, err)
	}
	cfgBus := bus.Config{URL: c.natsURL, Logger: log, Embedded: bus.Embedded{Dir: dir, Port: port}}
	if c.natsURL != "" {
		if cfgBus.Security, err = c.security(); err != nil {
			return nil, err
		}
	}
	conn, err := bus.Connect(ctx, cfgBus)
	var inUse *bus.DirInUseError
	if errors.As(err, &inUse) && c.name != "run" {
		return nil, fmt.Errorf("%w\n  a running process holds the embedded NATS: start it with -nats-port 4222, then pass -nats nats://127.0.0.1:4222", err)
	}
	if err != nil {
		return nil, err
	}
	if err := conn.Check(ctx, c.prog.Name+" "+c.name, need); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// print writes v as indented JSON with -json, else calls table with a
// tabwriter that is flushed after.
func (c *call) print(v any, table func(w io.Writer)) error {
	if c.asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// progress tells the person at the terminal how far long work has got;
// -json output stays clean on stdout.
func (c *call) progress(format string, args ...any) {
	fmt.Fprintf(c.stderr, format+"\n", args...)
}
