package stores

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/store/sqlite"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"gopkg.in/yaml.v3"
)

// The backends a context can use.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// DefaultShard is the shard a context has when its configuration lists none.
// It is a default of the configuration only: a lookup never falls back to it.
const DefaultShard = "default"

// Placeholders a postgres DSN may contain.
const (
	PlaceholderContext = "{context}"
	PlaceholderShard   = "{shard}"
)

// Config describes every (context, shard) store of a process and the tenants'
// shards. The zero value is valid and opens nothing.
type Config struct {
	// DataDir is the folder of the sqlite contexts that set no Dir
	// (default "data", relative to the working directory).
	DataDir string `yaml:"data_dir"`

	// MaxEventBytes limits one event's data plus metadata in every store
	// (0: the store's default, store.DefaultMaxEventBytes).
	MaxEventBytes int `yaml:"max_event_bytes"`

	// Contexts maps a bounded context's name to its stores.
	Contexts map[string]ContextConfig `yaml:"contexts"`

	// Tenants maps a tenant to its shard, which at least one context must
	// have.
	Tenants map[string]string `yaml:"tenants"`

	// from maps a YAML path to the variable ApplyEnv set it from, so that
	// Validate names the variable.
	from map[string]string
}

// ContextConfig describes the stores of one bounded context: one per shard.
type ContextConfig struct {
	// Backend is "sqlite" (the default) or "postgres".
	Backend string `yaml:"backend"`

	// DSN is the postgres connection string; sqlite takes none. It may
	// contain {context} and {shard}, replaced by the names, e.g.
	// postgres://db:5432/sw_{context}_{shard}. With {shard} every shard has
	// its own database and the store's tables are in schema "switchyard";
	// without it the shards share the database and each has its own schema,
	// <context>_<shard> with '-' turned into '_'.
	DSN string `yaml:"dsn"`

	// ReplicaDSN names each shard's streaming replica, with the same
	// {context} and {shard} placeholders as DSN, best with a user that may
	// only read: reads in the store.Reading role go there (see
	// postgres.Config.ReplicaDSN). Postgres only; optional.
	ReplicaDSN string `yaml:"replica_dsn"`

	// CreateDatabases makes Open create each shard's postgres database when
	// it does not exist.
	CreateDatabases bool `yaml:"create_databases"`

	// Dir is the sqlite folder (default Config.DataDir); a store's file is
	// Dir/<context>/<shard>.db.
	Dir string `yaml:"dir"`

	// Shards lists the context's shards (default ["default"]).
	Shards []string `yaml:"shards"`
}

func (cc ContextConfig) backend() string {
	if cc.Backend == "" {
		return BackendSQLite
	}
	return cc.Backend
}

func (cc ContextConfig) shards() []string {
	if len(cc.Shards) == 0 {
		return []string{DefaultShard}
	}
	return cc.Shards
}

// fill puts the names in a DSN's placeholders.
func fill(dsn, contextName, shard string) string {
	return strings.NewReplacer(PlaceholderContext, contextName, PlaceholderShard, shard).Replace(dsn)
}

// postgresTarget returns the DSN and schema of the postgres store of
// (contextName, shard) configured by cc.
func (cc ContextConfig) postgresTarget(contextName, shard string) (dsn, schema string) {
	dsn = fill(cc.DSN, contextName, shard)
	if strings.Contains(cc.DSN, PlaceholderShard) {
		return dsn, "switchyard"
	}
	return dsn, strings.ReplaceAll(contextName+"_"+shard, "-", "_")
}

// ConfigError is one problem with a configuration: Path says where, in the
// YAML's terms (contexts.visits.shards[2], tenants.acme) or as the
// environment variable that set it. It matches store.ErrInvalid.
type ConfigError struct {
	Path string
	Err  error
}

func (e *ConfigError) Error() string { return "stores: config " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, store.ErrInvalid) true.
func (e *ConfigError) Is(target error) bool { return target == store.ErrInvalid }

// path returns prefix.key, or prefix["key"] when key is not a plain name.
func path(prefix, key string) string {
	if store.CheckName("", key) == nil {
		return prefix + "." + key
	}
	return prefix + "[" + strconv.Quote(key) + "]"
}

// Decode decodes YAML strictly (unknown fields are errors) without
// validating, for configuration completed by [Config.ApplyEnv] before
// [Open], which validates the whole.
func Decode(yamlBytes []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(yamlBytes))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	var typeErr *yaml.TypeError
	switch {
	case err == nil:
		var extra yaml.Node
		if dec.Decode(&extra) != io.EOF {
			return Config{}, errors.New("stores: parse config: more than one YAML document")
		}
	case errors.Is(err, io.EOF):
		// Empty input: the zero Config.
	case errors.As(err, &typeErr):
		// Unknown fields and mistyped values: the rest was decoded; return
		// it so Parse can report its problems too.
		return c, fmt.Errorf("stores: parse config: %w", err)
	default:
		return Config{}, fmt.Errorf("stores: parse config: %w", err)
	}
	return c, nil
}

// Parse decodes a YAML configuration strictly (an unknown field is an
// error) and validates it. Every problem is reported at once.
func Parse(yamlBytes []byte) (Config, error) {
	c, err := Decode(yamlBytes)
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		return Config{}, errors.Join(err, c.Validate())
	}
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Load reads and parses the YAML configuration file at path; see [Parse].
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("stores: load config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("stores: load config %s: %w", path, err)
	}
	return c, nil
}

// Read reads the configuration of a process: the YAML file at path (none
// when path is ""), then the SWITCHYARD_ variables of environ over it
// ([Config.ApplyEnv]), then the whole validated. Every problem — of the
// file, of the variables, of the result — is reported at once, joined;
// one in a value a variable set names the variable.
func Read(path string, environ []string) (Config, error) {
	var c Config
	var errs []error
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("stores: read config: %w", err)
		}
		if c, err = Decode(b); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	c, err := c.withEnv(environ)
	errs = append(errs, unjoin(err)...)
	errs = append(errs, unjoin(c.Validate())...)
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// unjoin returns the errors err joins, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// source names where the value at YAML path p came from: p, or the
// variable that set it (or set what holds it) and p.
func (c Config) source(p string) string {
	best := ""
	for yp := range c.from {
		if (p == yp || strings.HasPrefix(p, yp+".") || strings.HasPrefix(p, yp+"[")) && len(yp) > len(best) {
			best = yp
		}
	}
	if best == "" {
		return p
	}
	return c.from[best] + " (" + p + ")"
}

// Shards lists the shards c gives contextName, in the order configured
// ([DefaultShard] when it lists none); none for a context c lacks.
func (c Config) Shards(contextName string) []string {
	cc, ok := c.Contexts[contextName]
	if !ok {
		return nil
	}
	return cc.shards()
}

// Only returns the part of c that holds one context's stores, or one
// shard's (shard ""), without tenants: what a tool working store by store
// opens. A context or shard c does not have is a *ConfigError naming it
// and what c has.
func (c Config) Only(contextName, shard string) (Config, error) {
	cc, ok := c.Contexts[contextName]
	if !ok {
		return Config{}, &ConfigError{Path: path("contexts", contextName),
			Err: fmt.Errorf("no such context (configured: %s)", strings.Join(slices.Sorted(maps.Keys(c.Contexts)), ", "))}
	}
	if shard != "" {
		if !slices.Contains(cc.shards(), shard) {
			return Config{}, &ConfigError{Path: path("contexts", contextName) + ".shards",
				Err: fmt.Errorf("no shard %q (configured: %s)", shard, strings.Join(cc.shards(), ", "))}
		}
		cc.Shards = []string{shard}
	}
	out := c
	out.Contexts, out.Tenants = map[string]ContextConfig{contextName: cc}, nil
	return out, nil
}

// Validate reports every problem with c at once, joined, each a
// *ConfigError naming where it is: bad context, shard or tenant names (see
// [sharding.CheckName] and [sharding.CheckTenant]), an unknown backend, a
// postgres context without a DSN or a sqlite one with one, a shard listed
// twice, two stores that would share a postgres database and schema, a
// tenant whose shard no context has, a negative max_event_bytes, a DSN
// that does not parse, two context names that differ only in '-' and '_'
// or case (they would share a JetStream stream).
func (c Config) Validate() error {
	var errs []error
	bad := func(path string, err error) { errs = append(errs, &ConfigError{Path: c.source(path), Err: err}) }
	if c.MaxEventBytes < 0 {
		bad("max_event_bytes", fmt.Errorf("%d is negative", c.MaxEventBytes))
	}
	known := make(map[string]bool)     // shards some context has
	targets := make(map[string]string) // postgres database and schema -> path
	names := make(map[string]string)   // envName -> path
	for _, name := range slices.Sorted(maps.Keys(c.Contexts)) {
		cc := c.Contexts[name]
		p := path("contexts", name)
		nameOK := true
		if err := store.CheckName("context", name); err != nil {
			bad(p, err)
			nameOK = false
		} else if other, dup := names[envName(name)]; dup {
			bad(p, fmt.Errorf("collides with %s: both are %s%s_* in the environment and stream SW_%s in JetStream; rename one",
				other, envContext, envName(name), envName(name)))
			nameOK = false
		} else {
			names[envName(name)] = p
		}
		isPostgres := cc.checkBackend(name, p, bad)
		seen := make(map[string]int)
		for i, shard := range cc.shards() {
			sp := p + ".shards[" + strconv.Itoa(i) + "]"
			if err := sharding.CheckName(shard); err != nil {
				bad(sp, err)
				continue
			}
			if j, dup := seen[shard]; dup {
				bad(sp, fmt.Errorf("shard %q is listed twice (also at shards[%d])", shard, j))
				continue
			}
			seen[shard] = i
			known[shard] = true
			if !isPostgres || !nameOK {
				continue
			}
			dsn, schema := cc.postgresTarget(name, shard)
			if err := store.CheckName("schema", schema); err != nil {
				bad(sp, fmt.Errorf("%w (without {shard} in the dsn the schema is <context>_<shard>; put {shard} in the dsn or use shorter names)", err))
				continue
			}
			key := dsn + "\x00" + schema
			if other, dup := targets[key]; dup {
				bad(sp, fmt.Errorf("same postgres database and schema %q as %s (put {context} and {shard} in the dsn)", schema, other))
				continue
			}
			targets[key] = sp
		}
	}
	for _, tenant := range slices.Sorted(maps.Keys(c.Tenants)) {
		shard := c.Tenants[tenant]
		p := path("tenants", tenant)
		if err := sharding.CheckTenant(tenant); err != nil {
			bad(p, err)
		}
		if err := sharding.CheckName(shard); err != nil {
			bad(p, err)
			continue
		}
		if !known[shard] {
			bad(p, fmt.Errorf("shard %q is in no context", shard))
		}
	}
	return errors.Join(errs...)
}

// checkBackend reports, through bad, what is wrong with cc's backend
// settings (cc is context name's, at path p), and says whether it is a
// postgres context whose stores can be placed.
func (cc ContextConfig) checkBackend(name, p string, bad func(string, error)) (isPostgres bool) {
	switch cc.backend() {
	case BackendSQLite:
		if cc.DSN != "" {
			bad(p+".dsn", errors.New(`the sqlite backend takes no dsn (set backend: postgres, or remove the dsn)`))
		}
		if cc.CreateDatabases {
			bad(p+".create_databases", errors.New("only the postgres backend creates databases"))
		}
		if cc.ReplicaDSN != "" {
			bad(p+".replica_dsn", errors.New("the sqlite backend has no replica: its reading role reads the same file"))
		}
	case BackendPostgres:
		isPostgres = cc.DSN != ""
		if cc.DSN == "" {
			bad(p+".dsn", errors.New("the postgres backend needs a dsn"))
		} else if dsn, _ := cc.postgresTarget(name, cc.shards()[0]); postgres.CheckDSN(dsn) != nil {
			bad(p+".dsn", postgres.CheckDSN(dsn))
			isPostgres = false
		}
		if cc.Dir != "" {
			bad(p+".dir", errors.New("dir is for the sqlite backend; postgres takes a dsn"))
		}
		if cc.ReplicaDSN != "" {
			if err := postgres.CheckDSN(fill(cc.ReplicaDSN, name, cc.shards()[0])); err != nil {
				bad(p+".replica_dsn", err)
			} else if strings.Contains(cc.DSN, PlaceholderShard) != strings.Contains(cc.ReplicaDSN, PlaceholderShard) {
				bad(p+".replica_dsn", errors.New("has {shard} where the dsn has not, or the other way round: each shard's replica must hold that shard"))
			}
		}
	default:
		bad(p+".backend", fmt.Errorf("unknown backend %q: want %q or %q", cc.Backend, BackendSQLite, BackendPostgres))
	}
	return isPostgres
}

// The environment variables ApplyEnv reads.
const (
	envPrefix        = "SWITCHYARD_"
	envDataDir       = envPrefix + "DATA_DIR"
	envMaxEventBytes = envPrefix + "MAX_EVENT_BYTES"
	envTenants       = envPrefix + "TENANTS"
	envContext       = envPrefix + "CONTEXT_"
)

// envSettings are the per-context settings, each a suffix of
// SWITCHYARD_CONTEXT_<NAME>.
// The first that ends a variable's name is its setting: _REPLICA_DSN
// before _DSN.
var envSettings = []string{"_CREATE_DATABASES", "_BACKEND", "_SHARDS", "_REPLICA_DSN", "_DSN", "_DIR"}

// envName is the <NAME> of a context in environment variables.
func envName(contextName string) string {
	return strings.ToUpper(strings.ReplaceAll(contextName, "-", "_"))
}

// ApplyEnv overrides c with the SWITCHYARD_ variables of environ, a list of
// "KEY=value" like os.Environ() returns; the package never reads the
// environment itself. Variables with an empty value are ignored.
//
//	SWITCHYARD_DATA_DIR                        data_dir
//	SWITCHYARD_MAX_EVENT_BYTES                 max_event_bytes
//	SWITCHYARD_TENANTS=acme=tenant-a,globex=b  tenants (replaces them all)
//	SWITCHYARD_CONTEXT_<NAME>_BACKEND          contexts.<name>.backend
//	SWITCHYARD_CONTEXT_<NAME>_DSN              contexts.<name>.dsn
//	SWITCHYARD_CONTEXT_<NAME>_REPLICA_DSN      contexts.<name>.replica_dsn
//	SWITCHYARD_CONTEXT_<NAME>_SHARDS=a,b       contexts.<name>.shards
//	SWITCHYARD_CONTEXT_<NAME>_DIR              contexts.<name>.dir
//	SWITCHYARD_CONTEXT_<NAME>_CREATE_DATABASES contexts.<name>.create_databases
//
// <NAME> is the context's name upper-cased with '-' turned into '_'. A name
// no configured context has creates a context named <NAME> lower-cased.
//
// Every bad value is reported at once, joined, each a *ConfigError naming
// its variable; c is then left unchanged. ApplyEnv does not validate the
// result: [Config.Validate] and [Open] do.
func (c *Config) ApplyEnv(environ []string) error {
	next, err := c.withEnv(environ)
	if err != nil {
		return err
	}
	*c = next
	return nil
}

// withEnv returns c with the variables of environ applied, those that
// have good values, and every bad value's problem, joined.
func (c Config) withEnv(environ []string) (Config, error) {
	next := c
	next.Contexts = maps.Clone(c.Contexts)
	next.from = maps.Clone(c.from)
	if next.from == nil {
		next.from = make(map[string]string)
	}
	var errs []error
	bad := func(key string, err error) { errs = append(errs, &ConfigError{Path: key, Err: err}) }
	for _, kv := range environ {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || value == "" || !strings.HasPrefix(key, envPrefix) {
			continue
		}
		switch {
		case key == envDataDir:
			next.DataDir = value
			next.from["data_dir"] = key
		case key == envMaxEventBytes:
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil {
				bad(key, fmt.Errorf("%q is not a whole number of bytes", value))
				continue
			}
			next.MaxEventBytes = n
			next.from["max_event_bytes"] = key
		case key == envTenants:
			tenants, err := parseTenants(value)
			if err != nil {
				bad(key, err)
				continue
			}
			next.Tenants = tenants
			next.from["tenants"] = key
		case strings.HasPrefix(key, envContext):
			p, err := next.applyContextEnv(strings.TrimPrefix(key, envContext), value)
			if err != nil {
				bad(key, err)
				continue
			}
			next.from[p] = key
		}
	}
	return next, errors.Join(errs...)
}

// applyContextEnv applies SWITCHYARD_CONTEXT_<rest>=value and returns the
// YAML path of what it set. c.Contexts is c's own.
func (c *Config) applyContextEnv(rest, value string) (string, error) {
	setting, err := c.envSetting(rest)
	if err != nil {
		return "", err
	}
	if setting == "" {
		return "", fmt.Errorf("unknown setting: want %s_<NAME> followed by one of %s", strings.TrimSuffix(envContext, "_"), strings.Join(envSettings, ", "))
	}
	upper := strings.ToUpper(strings.TrimSuffix(rest, setting))
	if upper == "" {
		return "", errors.New("no context name")
	}
	var matches []string
	for name := range c.Contexts {
		if envName(name) == upper {
			matches = append(matches, name)
		}
	}
	var name string
	switch len(matches) {
	case 0:
		name = strings.ToLower(upper)
	case 1:
		name = matches[0]
	default:
		slices.Sort(matches)
		return "", fmt.Errorf("fits more than one context (%q): rename one", matches)
	}
	cc := c.Contexts[name]
	switch setting {
	case "_BACKEND":
		cc.Backend = value
	case "_DSN":
		cc.DSN = value
	case "_REPLICA_DSN":
		cc.ReplicaDSN = value
	case "_DIR":
		cc.Dir = value
	case "_CREATE_DATABASES":
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return "", fmt.Errorf("%q is not a boolean (want true or false)", value)
		}
		cc.CreateDatabases = b
	case "_SHARDS":
		shards, err := splitList(value)
		if err != nil {
			return "", err
		}
		cc.Shards = shards
	}
	if c.Contexts == nil {
		c.Contexts = make(map[string]ContextConfig)
	}
	c.Contexts[name] = cc
	field := strings.ToLower(strings.TrimPrefix(setting, "_"))
	return path("contexts", name) + "." + field, nil
}

// envSetting is the setting that ends rest, the part of a variable's name
// after SWITCHYARD_CONTEXT_: of those that fit (_REPLICA_DSN and _DSN both
// fit ..._REPLICA_DSN), the one that leaves the name of a configured
// context, else the first; "" when none fits. Two that leave configured
// contexts' names are an error.
func (c *Config) envSetting(rest string) (string, error) {
	var fits, configured []string
	for _, s := range envSettings {
		if !strings.HasSuffix(rest, s) {
			continue
		}
		fits = append(fits, s)
		upper := strings.ToUpper(strings.TrimSuffix(rest, s))
		for name := range c.Contexts {
			if envName(name) == upper {
				configured = append(configured, s)
				break
			}
		}
	}
	switch {
	case len(configured) > 1:
		return "", fmt.Errorf("fits two configured contexts, as %s and as %s: rename one", configured[0], configured[1])
	case len(configured) == 1:
		return configured[0], nil
	case len(fits) > 0:
		return fits[0], nil
	}
	return "", nil
}

// splitList splits a comma-separated list, trimming spaces; empty items are
// an error.
func splitList(value string) ([]string, error) {
	items := strings.Split(value, ",")
	for i, item := range items {
		items[i] = strings.TrimSpace(item)
		if items[i] == "" {
			return nil, fmt.Errorf("%q has an empty item %d", value, i)
		}
	}
	return items, nil
}

// parseTenants parses "tenant=shard,tenant=shard".
func parseTenants(value string) (map[string]string, error) {
	items, err := splitList(value)
	if err != nil {
		return nil, err
	}
	tenants := make(map[string]string, len(items))
	var errs []error
	for _, item := range items {
		tenant, shard, ok := strings.Cut(item, "=")
		tenant, shard = strings.TrimSpace(tenant), strings.TrimSpace(shard)
		switch {
		case !ok || tenant == "" || shard == "":
			errs = append(errs, fmt.Errorf("%q is not tenant=shard", item))
		case tenants[tenant] != "":
			errs = append(errs, fmt.Errorf("tenant %q is listed twice", tenant))
		default:
			tenants[tenant] = shard
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return tenants, nil
}

// Option configures [Open].
type Option interface {
	apply(*options)
}

type options struct {
	existing bool
	logger   *slog.Logger
	tp       trace.TracerProvider
	mp       metric.MeterProvider
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger makes Open and the stores it opens log to l (nil discards).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = l })
}

// Existing makes Open open only stores that exist, and change none: it
// creates no postgres database (whatever create_databases says) and no
// sqlite file, and migrates no schema — one that is missing or older than
// this build's is an error matching store.ErrNotMigrated. For tools that
// only look at stores.
func Existing() Option {
	return optionFunc(func(o *options) { o.existing = true })
}

// WithTracerProvider gives the stores Open opens tp for their append spans
// (default: the global provider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) { o.tp = tp })
}

// WithMeterProvider gives the stores Open opens mp for their metrics
// (default: the global provider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) { o.mp = mp })
}

// Open validates cfg, opens the store of every (context, shard) it lists and
// assigns its tenants, and returns the [sharding.Registry] holding them; the
// caller closes it. Contexts are opened in name order, shards in the order listed.
//
// If a store fails to open, the stores already opened are closed and the
// error names the context and shard that failed.
func Open(ctx context.Context, cfg Config, opts ...Option) (*sharding.Registry, error) {
	var o options
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := sharding.NewRegistry()
	for _, name := range slices.Sorted(maps.Keys(cfg.Contexts)) {
		cc := cfg.Contexts[name]
		for _, shard := range cc.shards() {
			s, err := openStore(ctx, name, shard, cc, cfg, o)
			if err == nil {
				err = r.Add(s)
				if err != nil {
					err = errors.Join(err, s.Close())
				}
			}
			if err != nil {
				err = fmt.Errorf("stores: open context %q shard %q (%s): %w", name, shard, cc.backend(), err)
				return nil, errors.Join(err, r.Close())
			}
			o.logger.LogAttrs(ctx, slog.LevelInfo, "store opened",
				slog.String("context", name), slog.String("shard", shard), slog.String("backend", cc.backend()))
		}
	}
	for _, tenant := range slices.Sorted(maps.Keys(cfg.Tenants)) {
		if err := r.SetTenant(tenant, cfg.Tenants[tenant]); err != nil {
			return nil, errors.Join(err, r.Close())
		}
	}
	return r, nil
}

// openStore opens the store of (contextName, shard) configured by cc.
func openStore(ctx context.Context, contextName, shard string, cc ContextConfig, cfg Config, o options) (store.Store, error) {
	logger := o.logger.With(slog.String("context", contextName), slog.String("shard", shard))
	if cc.backend() == BackendPostgres {
		dsn, schema := cc.postgresTarget(contextName, shard)
		st, err := postgres.Open(ctx, dsn, postgres.Config{
			Context:        contextName,
			Shard:          shard,
			Schema:         schema,
			MaxEventBytes:  cfg.MaxEventBytes,
			CreateDatabase: cc.CreateDatabases && !o.existing,
			NoMigrate:      o.existing,
			ReplicaDSN:     fill(cc.ReplicaDSN, contextName, shard),
			Logger:         logger,
			TracerProvider: o.tp,
			MeterProvider:  o.mp,
		})
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return st, nil
	}
	dir := cc.Dir
	if dir == "" {
		dir = cfg.DataDir // "" is sqlite's default, "data"
	}
	st, err := sqlite.Open(ctx, sqlite.Config{
		Context:        contextName,
		Shard:          shard,
		Dir:            dir,
		MustExist:      o.existing,
		NoMigrate:      o.existing,
		MaxEventBytes:  cfg.MaxEventBytes,
		Logger:         logger,
		TracerProvider: o.tp,
		MeterProvider:  o.mp,
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}
