package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/store"
)

// Config configures a connection to NATS. The zero value runs an embedded
// nats-server with JetStream in data/nats, fsyncing every write.
type Config struct {
	// URL lists the NATS servers ("nats://host:4222", several separated by
	// commas). Empty: start an embedded server (see Embedded).
	URL string

	// Name is the connection's name, as the server's monitoring shows it
	// (default "switchyard").
	Name string

	// Security is TLS and credentials for URL's servers.
	Security Security

	// Embedded configures the server started when URL is empty.
	Embedded Embedded

	// Stream holds the JetStream settings of every context's stream;
	// Contexts overrides them per context (a zero field keeps Stream's).
	Stream   StreamConfig
	Contexts map[string]StreamConfig

	// ReconnectWait is the pause between reconnect attempts (default 250ms).
	// The connection reconnects for ever.
	ReconnectWait time.Duration

	// AckTimeout bounds the wait for JetStream to acknowledge a publish
	// (default 5s).
	AckTimeout time.Duration

	// APITimeout bounds a JetStream API request (creating a stream or a
	// consumer, asking for its state) whose context has no deadline
	// (default 5s). A replicated cluster under load may need longer.
	APITimeout time.Duration

	// Logger receives connection events (nil discards them).
	Logger *slog.Logger
}

// Embedded configures the embedded nats-server.
type Embedded struct {
	// Dir holds JetStream's files (default "data/nats").
	Dir string

	// Host and Port to listen on for other processes. Port 0 (the default)
	// listens nowhere: only this process connects, in memory. Port -1 picks
	// a free port (see Conn.ClientURL).
	Host string
	Port int

	// SyncInterval is how often JetStream fsyncs its files: "always" (the
	// default: every acknowledged write is on disk) or a duration such as
	// "2m" (NATS's own default, which Jepsen showed can lose acknowledged
	// writes when machines crash).
	SyncInterval string

	// MaxPayload is the largest message the server accepts, in bytes
	// (default NATS's 1 MiB).
	MaxPayload int32
}

// StreamConfig is the JetStream stream of one context.
type StreamConfig struct {
	// Partitions is how many partitions the context's subjects are split
	// into (default 16). A stream's events all go to one partition, so
	// consumers can keep them in order. It cannot change once the stream
	// exists.
	Partitions int

	// Replicas is the stream's replication factor (default 1; 3 on a
	// cluster).
	Replicas int

	// Storage is "file" (the default) or "memory".
	Storage string

	// Duplicates is JetStream's de-duplication window (default 2m): a
	// re-publish of an event within it is dropped. A relay never lets its
	// unsaved progress grow older than half of it.
	Duplicates time.Duration

	// MaxMsgSize is the largest message the stream stores (0: the server's
	// max payload). The relay quarantines larger events.
	MaxMsgSize int32

	// MaxAge drops messages older than this (0: keep them).
	MaxAge time.Duration
}

// Defaults.
const (
	DefaultPartitions = 16
	DefaultDuplicates = 2 * time.Minute
)

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "switchyard"
	}
	if c.Embedded.Dir == "" {
		c.Embedded.Dir = "data/nats"
	}
	if c.Embedded.Host == "" {
		c.Embedded.Host = "127.0.0.1"
	}
	if c.Embedded.SyncInterval == "" {
		c.Embedded.SyncInterval = "always"
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = 250 * time.Millisecond
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 5 * time.Second
	}
	if c.APITimeout == 0 {
		c.APITimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Stream = c.Stream.withDefaults(StreamConfig{Partitions: DefaultPartitions, Replicas: 1, Storage: "file", Duplicates: DefaultDuplicates})
}

// withDefaults fills c's zero fields from d.
func (c StreamConfig) withDefaults(d StreamConfig) StreamConfig {
	if c.Partitions == 0 {
		c.Partitions = d.Partitions
	}
	if c.Replicas == 0 {
		c.Replicas = d.Replicas
	}
	if c.Storage == "" {
		c.Storage = d.Storage
	}
	if c.Duplicates == 0 {
		c.Duplicates = d.Duplicates
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = d.MaxMsgSize
	}
	if c.MaxAge == 0 {
		c.MaxAge = d.MaxAge
	}
	return c
}

// ConfigError is one problem with a configuration of this package: Path
// names the setting as Go code sets it ("Embedded.SyncInterval",
// "Contexts[visits].Partitions", "RelayConfig.BatchSize"). It matches
// store.ErrInvalid.
type ConfigError struct {
	Path string
	Err  error
}

func (e *ConfigError) Error() string { return "bus: config " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, store.ErrInvalid) true.
func (e *ConfigError) Is(target error) bool { return target == store.ErrInvalid }

// syncInterval parses Embedded.SyncInterval: always reports "always".
func (e Embedded) syncInterval() (d time.Duration, always bool, err error) {
	if strings.EqualFold(e.SyncInterval, "always") || e.SyncInterval == "" {
		return 0, true, nil
	}
	d, err = time.ParseDuration(e.SyncInterval)
	if err != nil || d <= 0 {
		return 0, false, &ConfigError{Path: "Embedded.SyncInterval", Err: fmt.Errorf(`%q: want "always" or a positive duration such as "2m"`, e.SyncInterval)}
	}
	return d, false, nil
}

// Validate reports every problem with c at once, each a *ConfigError.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &ConfigError{Path: path, Err: fmt.Errorf(format, args...)})
	}
	if _, _, err := c.Embedded.syncInterval(); err != nil {
		errs = append(errs, err)
	}
	if c.Embedded.Port < -1 || c.Embedded.Port > 65535 {
		bad("Embedded.Port", "%d: want 0 (no listener), -1 (any free port) or 1-65535", c.Embedded.Port)
	}
	if c.Embedded.MaxPayload < 0 {
		bad("Embedded.MaxPayload", "%d is negative", c.Embedded.MaxPayload)
	}
	errs = append(errs, c.Stream.validate("Stream"))
	for name, sc := range c.Contexts {
		path := "Contexts[" + strconv.Quote(name) + "]"
		if err := store.CheckName("context", name); err != nil {
			errs = append(errs, &ConfigError{Path: path, Err: err})
		}
		errs = append(errs, sc.validate(path))
	}
	errs = append(errs, negative("", setting{"ReconnectWait", c.ReconnectWait}, setting{"AckTimeout", c.AckTimeout}, setting{"APITimeout", c.APITimeout}))
	errs = append(errs, c.Security.validate())
	if c.URL == "" && c.Security != (Security{}) {
		bad("Security", "is for an external NATS (URL); the embedded server needs none")
	}
	return errors.Join(errs...)
}

// setting is a duration a configuration sets, with its field's name.
type setting struct {
	field string
	d     time.Duration
}

// negative reports each setting that is negative, its path prefix+field.
func negative(prefix string, ss ...setting) error {
	var errs []error
	for _, s := range ss {
		if s.d < 0 {
			errs = append(errs, &ConfigError{Path: prefix + s.field, Err: fmt.Errorf("%v is negative", s.d)})
		}
	}
	return errors.Join(errs...)
}

func (c StreamConfig) validate(path string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Path: path + "." + field, Err: fmt.Errorf(format, args...)})
	}
	if c.Partitions < 0 || c.Partitions > 1024 {
		bad("Partitions", "%d: want 1 to 1024", c.Partitions)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		bad("Replicas", "%d: want 1 to 5", c.Replicas)
	}
	switch c.Storage {
	case "", "file", "memory":
	default:
		bad("Storage", `%q: want "file" or "memory"`, c.Storage)
	}
	errs = append(errs, negative(path+".", setting{"Duplicates", c.Duplicates}, setting{"MaxAge", c.MaxAge}))
	if c.MaxMsgSize < 0 {
		bad("MaxMsgSize", "%d is negative", c.MaxMsgSize)
	}
	if c.MaxAge > 0 && c.Duplicates > c.MaxAge {
		bad("Duplicates", "%v is longer than MaxAge %v", c.Duplicates, c.MaxAge)
	}
	return errors.Join(errs...)
}

// StreamConfig returns the settings the stream of the named context is
// provisioned with: Config.Contexts' over Config.Stream's, defaults filled
// in.
func (c *Conn) StreamConfig(contextName string) StreamConfig {
	return c.cfg.Contexts[contextName].withDefaults(c.cfg.Stream)
}
