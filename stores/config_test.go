package stores_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/store/sqlite"
	"github.com/switchyard-go/switchyard/stores"
)

// injections are context and shard names that must never reach a subject,
// an SQL identifier or a file name.
var injections = []string{"a.b", "*", ">", "x y", "\x00", "a'b", strings.Repeat("a", 64), "", "A", "-a", "a/b", "a;drop", "é"}

// problems returns the problems joined in err, checking each is a
// *stores.ConfigError.
func problems(t *testing.T, err error) []*stores.ConfigError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	var out []*stores.ConfigError
	for _, e := range errs {
		var ce *stores.ConfigError
		if !errors.As(e, &ce) {
			t.Errorf("problem %q is not a *stores.ConfigError", e)
			continue
		}
		if !errors.Is(e, store.ErrInvalid) {
			t.Errorf("problem %q does not match store.ErrInvalid", e)
		}
		out = append(out, ce)
	}
	return out
}

// paths returns the paths of the problems joined in err, sorted.
func paths(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	for _, ce := range problems(t, err) {
		out = append(out, ce.Path)
	}
	slices.Sort(out)
	return out
}

func TestParseReportsEveryProblem(t *testing.T) {
	const doc = `
max_event_bytes: -5
contexts:
  visits:
    shards: [default, tenant-a, a.b, tenant-a]
  Billing:
    backend: postgres
  orders:
    backend: mysql
  audit:
    dsn: postgres://127.0.0.1/audit
  reports:
    backend: postgres
    dsn: postgres://127.0.0.1/reports
    dir: /var/lib/reports
tenants:
  acme: tenant-z
  globex: "*"
`
	_, err := stores.Parse([]byte(doc))
	if err == nil {
		t.Fatal("Parse accepted a configuration full of mistakes")
	}
	want := []string{
		`contexts.audit.dsn`,
		`contexts.orders.backend`,
		`contexts.reports.dir`,
		`contexts.visits.shards[2]`,
		`contexts.visits.shards[3]`,
		`contexts["Billing"]`,
		`contexts["Billing"].dsn`,
		`max_event_bytes`,
		`tenants.acme`,
		`tenants.globex`,
	}
	slices.Sort(want)
	if got := paths(t, err); !slices.Equal(got, want) {
		t.Errorf("problems at\n  %q\nwant\n  %q\nerror:\n%v", got, want, err)
	}
	for _, p := range want {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error text does not name %s:\n%v", p, err)
		}
	}
	for _, s := range []string{`"a.b"`, `"tenant-a"`, `"mysql"`, `"tenant-z"`, `"*"`, `"Billing"`, "-5"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error text does not name %s:\n%v", s, err)
		}
	}
}

func TestParseStrict(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		contains []string
	}{
		{"unknown top-level field", "contexts: {}\ntenant: {acme: default}\n", []string{"field tenant not found"}},
		{"unknown context field", "contexts:\n  visits:\n    shard: [a]\n", []string{"field shard not found"}},
		{"misspelt field and a bad name at once", "contexts:\n  visits:\n    backend: postgres\n    dns: postgres://h/db\n", []string{"field dns not found", "contexts.visits.dsn"}},
		{"wrong type", "max_event_bytes: lots\n", []string{"lots"}},
		{"duplicate key", "contexts:\n  visits: {}\n  visits: {}\n", []string{"already defined"}},
		{"syntax", "contexts: [\n", []string{"parse config"}},
		{"two documents", "contexts: {}\n---\ncontexts: {}\n", []string{"more than one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := stores.Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.doc)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if c.Contexts != nil {
				t.Errorf("Parse returned a config with an error: %+v", c)
			}
		})
	}
}

func TestParse(t *testing.T) {
	const doc = `
data_dir: /srv/switchyard
max_event_bytes: 65536
contexts:
  visits:
    shards: [default, tenant-a]
  billing:
    backend: postgres
    dsn: postgres://db:5432/sw_{context}_{shard}
    create_databases: true
    shards: [tenant-a]
  audit: {}
tenants:
  acme: tenant-a
  Globex Corp.: default
`
	c, err := stores.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := stores.Config{
		DataDir:       "/srv/switchyard",
		MaxEventBytes: 65536,
		Contexts: map[string]stores.ContextConfig{
			"visits":  {Shards: []string{"default", "tenant-a"}},
			"billing": {Backend: "postgres", DSN: "postgres://db:5432/sw_{context}_{shard}", CreateDatabases: true, Shards: []string{"tenant-a"}},
			"audit":   {},
		},
		Tenants: map[string]string{"acme": "tenant-a", "Globex Corp.": "default"},
	}
	if !equalConfig(c, want) {
		t.Errorf("Parse =\n  %+v\nwant\n  %+v", c, want)
	}

	for _, empty := range []string{"", "\n", "# nothing\n", "{}\n"} {
		c, err := stores.Parse([]byte(empty))
		if err != nil || len(c.Contexts) != 0 {
			t.Errorf("Parse(%q) = %+v, %v; want the zero config", empty, c, err)
		}
	}
}

func equalConfig(a, b stores.Config) bool {
	if a.DataDir != b.DataDir || a.MaxEventBytes != b.MaxEventBytes || len(a.Contexts) != len(b.Contexts) || len(a.Tenants) != len(b.Tenants) {
		return false
	}
	for k, ac := range a.Contexts {
		bc, ok := b.Contexts[k]
		if !ok || ac.Backend != bc.Backend || ac.DSN != bc.DSN || ac.CreateDatabases != bc.CreateDatabases || ac.Dir != bc.Dir || !slices.Equal(ac.Shards, bc.Shards) {
			return false
		}
	}
	for k, v := range a.Tenants {
		if b.Tenants[k] != v {
			return false
		}
	}
	return true
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("contexts:\n  visits: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := stores.Load(good)
	if err != nil || len(c.Contexts) != 1 {
		t.Errorf("Load(good) = %+v, %v", c, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("contexts:\n  visits:\n    shards: [x.y]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := stores.Load(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "contexts.visits.shards[0]") {
		t.Errorf("Load(bad) = %v, want an error naming the file and the path", err)
	}
	if _, err := stores.Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestValidate(t *testing.T) {
	pg := func(dsn string, shards ...string) stores.ContextConfig {
		return stores.ContextConfig{Backend: stores.BackendPostgres, DSN: dsn, Shards: shards}
	}
	long := strings.Repeat("c", 40)
	tests := []struct {
		name  string
		cfg   stores.Config
		paths []string // where the problems are; none: valid
	}{
		{name: "zero value", cfg: stores.Config{}},
		{name: "defaults", cfg: stores.Config{Contexts: map[string]stores.ContextConfig{"visits": {}}, Tenants: map[string]string{"acme": "default"}}},
		{name: "postgres, a database per store", cfg: stores.Config{Contexts: map[string]stores.ContextConfig{
			"visits":  pg("postgres://h/sw_{context}_{shard}", "default", "tenant-a", "tenant_a"),
			"billing": pg("postgres://h/sw_{context}_{shard}", "default", "tenant-a"),
		}}},
		{name: "postgres, a schema per shard", cfg: stores.Config{Contexts: map[string]stores.ContextConfig{
			"visits":  pg("postgres://h/switchyard", "default", "tenant-a"),
			"billing": pg("postgres://h/switchyard", "default", "tenant-a"),
		}}},
		{name: "a replica per shard", cfg: stores.Config{Contexts: map[string]stores.ContextConfig{"visits": {
			Backend: stores.BackendPostgres, DSN: "postgres://h/sw_{shard}", ReplicaDSN: "postgres://reader@r/sw_{shard}"}}}},
		{
			name: "replicas that do not follow the shards, or sqlite's",
			cfg: stores.Config{Contexts: map[string]stores.ContextConfig{
				"visits":  {Backend: stores.BackendPostgres, DSN: "postgres://h/sw_{shard}", ReplicaDSN: "postgres://reader@r/sw"},
				"billing": {ReplicaDSN: "postgres://r/billing"},
				"orders":  {Backend: stores.BackendPostgres, DSN: "postgres://h/o", ReplicaDSN: "mysql://r"},
			}},
			paths: []string{"contexts.visits.replica_dsn", "contexts.billing.replica_dsn", "contexts.orders.replica_dsn"},
		},
		{
			name:  "schemas collide once '-' is '_'",
			cfg:   stores.Config{Contexts: map[string]stores.ContextConfig{"visits": pg("postgres://h/sw", "tenant-a", "tenant_a")}},
			paths: []string{"contexts.visits.shards[1]"},
		},
		{
			name: "schemas collide across contexts",
			cfg: stores.Config{Contexts: map[string]stores.ContextConfig{
				"a-b": pg("postgres://h/sw", "c"),
				"a":   pg("postgres://h/sw", "b-c"),
			}},
			paths: []string{"contexts.a-b.shards[0]"},
		},
		{
			name: "two contexts in one database per shard",
			cfg: stores.Config{Contexts: map[string]stores.ContextConfig{
				"visits":  pg("postgres://h/sw_{shard}", "default"),
				"billing": pg("postgres://h/sw_{shard}", "default"),
			}},
			paths: []string{"contexts.visits.shards[0]"},
		},
		{
			name:  "schema name too long",
			cfg:   stores.Config{Contexts: map[string]stores.ContextConfig{long: pg("postgres://h/sw", long)}},
			paths: []string{"contexts." + long + ".shards[0]"},
		},
		{
			name:  "sqlite with create_databases",
			cfg:   stores.Config{Contexts: map[string]stores.ContextConfig{"visits": {CreateDatabases: true}}},
			paths: []string{"contexts.visits.create_databases"},
		},
		{
			name:  "tenant whose shard no context has",
			cfg:   stores.Config{Contexts: map[string]stores.ContextConfig{"visits": {Shards: []string{"tenant-a"}}}, Tenants: map[string]string{"acme": "default"}},
			paths: []string{"tenants.acme"},
		},
		{
			name:  "bad tenant names",
			cfg:   stores.Config{Tenants: map[string]string{"": "default", "a\nb": "default"}},
			paths: []string{`tenants[""]`, `tenants[""]`, `tenants["a\nb"]`, `tenants["a\nb"]`},
		},
		{
			name:  "names that share a stream once '-' is '_'",
			cfg:   stores.Config{Contexts: map[string]stores.ContextConfig{"visit-log": {}, "visit_log": {}}},
			paths: []string{"contexts.visit_log"},
		},
		{
			name:  "a dsn that does not parse",
			cfg:   stores.Config{Contexts: map[string]stores.ContextConfig{"visits": pg("postgres://u:secret@h:54x32/sw_{shard}")}},
			paths: []string{"contexts.visits.dsn"},
		},
		{
			name:  "negative max_event_bytes",
			cfg:   stores.Config{MaxEventBytes: -1},
			paths: []string{"max_event_bytes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			got := paths(t, err)
			want := slices.Sorted(slices.Values(tt.paths))
			if !slices.Equal(got, want) {
				t.Errorf("problems at %q, want %q; error:\n%v", got, want, err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestValidateRefusesInjectionShapedNames(t *testing.T) {
	for _, name := range injections {
		quoted := strconv.Quote(name)
		configs := map[string]stores.Config{
			"context": {Contexts: map[string]stores.ContextConfig{name: {}}},
			"shard":   {Contexts: map[string]stores.ContextConfig{"visits": {Shards: []string{"default", name}}}},
			"tenant's shard": {
				Contexts: map[string]stores.ContextConfig{"visits": {}},
				Tenants:  map[string]string{"acme": name},
			},
		}
		for where, cfg := range configs {
			err := cfg.Validate()
			if err == nil {
				t.Errorf("%s %s accepted", where, quoted)
				continue
			}
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s %s: %v does not match store.ErrInvalid", where, quoted, err)
			}
			if !strings.Contains(err.Error(), quoted) {
				t.Errorf("%s %s: error does not name it: %v", where, quoted, err)
			}
		}
	}
}

func TestApplyEnv(t *testing.T) {
	base := func() stores.Config {
		return stores.Config{
			DataDir: "data",
			Contexts: map[string]stores.ContextConfig{
				"visits":      {Shards: []string{"default"}},
				"tenant-data": {Backend: "postgres", DSN: "postgres://file/db"},
			},
			Tenants: map[string]string{"acme": "default"},
		}
	}
	tests := []struct {
		name    string
		environ []string
		want    func(c *stores.Config)
	}{
		{name: "nothing", environ: []string{"HOME=/root", "SWITCHYARD_TEST_POSTGRES_URL=postgres://x", "PATH=/bin"}},
		{name: "empty values are ignored", environ: []string{"SWITCHYARD_DATA_DIR=", "SWITCHYARD_CONTEXT_VISITS_SHARDS="}},
		{
			name:    "top level",
			environ: []string{"SWITCHYARD_DATA_DIR=/srv/data", "SWITCHYARD_MAX_EVENT_BYTES= 4096 "},
			want:    func(c *stores.Config) { c.DataDir, c.MaxEventBytes = "/srv/data", 4096 },
		},
		{
			name:    "tenants replace the file's",
			environ: []string{"SWITCHYARD_TENANTS=globex=tenant-b, Initech Inc.=tenant-a"},
			want: func(c *stores.Config) {
				c.Tenants = map[string]string{"globex": "tenant-b", "Initech Inc.": "tenant-a"}
			},
		},
		{
			name:    "a replica, not a context named tenant-data_replica",
			environ: []string{"SWITCHYARD_CONTEXT_TENANT_DATA_REPLICA_DSN=postgres://reader@replica/db"},
			want: func(c *stores.Config) {
				c.Contexts["tenant-data"] = stores.ContextConfig{Backend: "postgres", DSN: "postgres://file/db", ReplicaDSN: "postgres://reader@replica/db"}
			},
		},
		{
			name:    "context settings",
			environ: []string{"SWITCHYARD_CONTEXT_VISITS_SHARDS=default, tenant-a,tenant-b", "SWITCHYARD_CONTEXT_VISITS_DIR=/fast"},
			want: func(c *stores.Config) {
				c.Contexts["visits"] = stores.ContextConfig{Dir: "/fast", Shards: []string{"default", "tenant-a", "tenant-b"}}
			},
		},
		{
			name: "a context with '-' is found by its _ name",
			environ: []string{
				"SWITCHYARD_CONTEXT_TENANT_DATA_DSN=postgres://env/{shard}",
				"SWITCHYARD_CONTEXT_TENANT_DATA_CREATE_DATABASES=true",
			},
			want: func(c *stores.Config) {
				c.Contexts["tenant-data"] = stores.ContextConfig{Backend: "postgres", DSN: "postgres://env/{shard}", CreateDatabases: true}
			},
		},
		{
			name: "a context only in the environment is created",
			environ: []string{
				"SWITCHYARD_CONTEXT_AUDIT_LOG_BACKEND=postgres",
				"SWITCHYARD_CONTEXT_AUDIT_LOG_DSN=postgres://env/audit",
				"SWITCHYARD_CONTEXT_AUDIT_LOG_SHARDS=default",
			},
			want: func(c *stores.Config) {
				c.Contexts["audit_log"] = stores.ContextConfig{Backend: "postgres", DSN: "postgres://env/audit", Shards: []string{"default"}}
			},
		},
		{
			name:    "later values win",
			environ: []string{"SWITCHYARD_DATA_DIR=/a", "SWITCHYARD_DATA_DIR=/b"},
			want:    func(c *stores.Config) { c.DataDir = "/b" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			if err := c.ApplyEnv(tt.environ); err != nil {
				t.Fatal(err)
			}
			want := base()
			if tt.want != nil {
				tt.want(&want)
			}
			if !equalConfig(c, want) {
				t.Errorf("ApplyEnv =\n  %+v\nwant\n  %+v", c, want)
			}
		})
	}

	t.Run("on a zero config", func(t *testing.T) {
		var c stores.Config
		if err := c.ApplyEnv([]string{"SWITCHYARD_CONTEXT_VISITS_SHARDS=tenant-a", "SWITCHYARD_TENANTS=acme=tenant-a"}); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := c.Contexts["visits"].Shards; !slices.Equal(got, []string{"tenant-a"}) {
			t.Errorf("visits shards = %q", got)
		}
	})
	t.Run("the file's map is not changed", func(t *testing.T) {
		c := base()
		contexts := c.Contexts
		if err := c.ApplyEnv([]string{"SWITCHYARD_CONTEXT_ORDERS_SHARDS=default"}); err != nil {
			t.Fatal(err)
		}
		if _, ok := contexts["orders"]; ok {
			t.Error("ApplyEnv wrote into the map it was given")
		}
	})
}

func TestApplyEnvBadValues(t *testing.T) {
	environ := []string{
		"SWITCHYARD_MAX_EVENT_BYTES=1MiB",
		"SWITCHYARD_TENANTS=acme=tenant-a,globex,=tenant-b,acme=tenant-c",
		"SWITCHYARD_CONTEXT_VISITS_SHARDS=default,,tenant-a",
		"SWITCHYARD_CONTEXT_VISITS_CREATE_DATABASES=yes please",
		"SWITCHYARD_CONTEXT_VISITS_COLOUR=blue",
		"SWITCHYARD_CONTEXT__DSN=postgres://h/db",
		"SWITCHYARD_CONTEXT_A_B_BACKEND=postgres",
		"SWITCHYARD_DATA_DIR=/would/change",
	}
	c := stores.Config{Contexts: map[string]stores.ContextConfig{"visits": {}, "a-b": {}, "a_b": {}}}
	err := c.ApplyEnv(environ)
	if err == nil {
		t.Fatal("ApplyEnv accepted bad values")
	}
	want := []string{
		"SWITCHYARD_CONTEXT_A_B_BACKEND",
		"SWITCHYARD_CONTEXT_VISITS_COLOUR",
		"SWITCHYARD_CONTEXT_VISITS_CREATE_DATABASES",
		"SWITCHYARD_CONTEXT_VISITS_SHARDS",
		"SWITCHYARD_CONTEXT__DSN",
		"SWITCHYARD_MAX_EVENT_BYTES",
		"SWITCHYARD_TENANTS",
	}
	if got := paths(t, err); !slices.Equal(got, want) {
		t.Errorf("problems at %q, want %q; error:\n%v", got, want, err)
	}
	for _, s := range []string{`"1MiB"`, `"globex"`, `"=tenant-b"`, `"acme"`, `"yes please"`, `"a-b"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not name %s:\n%v", s, err)
		}
	}
	if strings.Contains(err.Error(), "postgres://h/db") {
		t.Errorf("error shows a DSN:\n%v", err)
	}
	if c.DataDir != "" || len(c.Contexts) != 3 {
		t.Errorf("ApplyEnv changed the config although it reported errors: %+v", c)
	}
}

// openFiles returns the files under dir this process has open (Linux only;
// it skips t elsewhere).
func openFiles(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("cannot list open files:", err)
	}
	var open []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			open = append(open, target)
		}
	}
	return open
}

// openRegistry opens the stores of cfg; the registry is closed when t ends.
func openRegistry(t *testing.T, cfg stores.Config, opts ...stores.Option) *sharding.Registry {
	t.Helper()
	r, err := stores.Open(t.Context(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// appendOne appends an event to a new stream of st in ctx, which carries a
// shard, and checks the event is stamped with st's context and that shard.
func appendOne(t *testing.T, ctx context.Context, st store.Store, stream string) store.Event {
	t.Helper()
	ev, err := store.NewEvent("Scheduled", map[string]int{"id": 42})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Append(ctx, stream, store.NoStream, ev)
	if err != nil {
		t.Fatal(err)
	}
	shard, _ := sharding.FromContext(ctx)
	if s := got[0].Metadata.Get(correlation.Shard); s != shard {
		t.Errorf("%s/%s: appended event's shard = %q, want %q", st.Context(), st.Shard(), s, shard)
	}
	if s := got[0].Metadata.Get(correlation.Context); s != st.Context() {
		t.Errorf("%s/%s: appended event's context = %q", st.Context(), st.Shard(), s)
	}
	return got[0]
}

func TestOpenSQLite(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	billingDir := filepath.Join(dir, "billing-files")
	var logs bytes.Buffer
	cfg := stores.Config{
		DataDir:       dir,
		MaxEventBytes: 4096,
		Contexts: map[string]stores.ContextConfig{
			"visits":  {Shards: []string{"default", "tenant-a", "tenant-b"}},
			"billing": {Dir: billingDir, Shards: []string{"tenant-a", "tenant-b"}},
		},
		Tenants: map[string]string{"acme": "tenant-a", "globex": "tenant-b"},
	}
	r := openRegistry(t, cfg, stores.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if !strings.Contains(logs.String(), "shard=tenant-b") {
		t.Errorf("no log line for the stores opened:\n%s", logs.String())
	}
	if got, want := r.Contexts(), []string{"billing", "visits"}; !slices.Equal(got, want) {
		t.Errorf("Contexts() = %q, want %q", got, want)
	}
	if got, want := r.Shards("visits"), []string{"default", "tenant-a", "tenant-b"}; !slices.Equal(got, want) {
		t.Errorf("Shards(visits) = %q, want %q", got, want)
	}

	shard, err := r.ShardOf("acme")
	if err != nil || shard != "tenant-a" {
		t.Fatalf("ShardOf(acme) = %q, %v", shard, err)
	}
	tctx := sharding.NewContext(ctx, shard)
	for _, c := range []string{"visits", "billing"} {
		st, err := r.For(tctx, c)
		if err != nil {
			t.Fatal(err)
		}
		appendOne(t, tctx, st, "Visit-42")
		read, err := st.Read(ctx, "Visit-42", store.Forward, 0, 10)
		if err != nil || len(read) != 1 || read[0].Metadata.Get(correlation.Shard) != "tenant-a" {
			t.Errorf("%s: read back %v, %v", c, read, err)
		}
		big, _ := store.NewEvent("Big", map[string]string{"x": strings.Repeat("x", 5000)})
		if _, err := st.Append(tctx, "Big-1", store.Any, big); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: max_event_bytes not applied: append of 5000 bytes = %v", c, err)
		}
	}
	for _, path := range []string{
		filepath.Join(dir, "visits", "tenant-a.db"),
		filepath.Join(dir, "visits", "default.db"),
		filepath.Join(billingDir, "billing", "tenant-a.db"),
	} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("store file: %v", err)
		}
	}
	if st, _ := r.Store("visits", "tenant-a"); st.(*sqlite.Store).Path() != filepath.Join(dir, "visits", "tenant-a.db") {
		t.Errorf("visits/tenant-a is at %s", st.(*sqlite.Store).Path())
	}

	// The other shards saw nothing.
	for _, shard := range []string{"default", "tenant-b"} {
		st, err := r.Store("visits", shard)
		if err != nil {
			t.Fatal(err)
		}
		all, err := st.ReadAll(ctx, store.Position{}, 10)
		if err != nil || len(all) != 0 {
			t.Errorf("visits/%s holds %d events (%v), want none", shard, len(all), err)
		}
	}
	if _, err := r.For(ctx, "visits"); !errors.Is(err, sharding.ErrNoShard) {
		t.Errorf("For without a shard = %v, want ErrNoShard", err)
	}
	if _, err := r.For(sharding.NewContext(ctx, "tenant-c"), "visits"); !errors.Is(err, sharding.ErrUnknownShard) {
		t.Errorf("For(tenant-c) = %v, want ErrUnknownShard", err)
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := stores.Config{
		DataDir:  dir,
		Contexts: map[string]stores.ContextConfig{"visits": {}, "x y": {}},
	}
	r, err := stores.Open(t.Context(), cfg)
	if r != nil || !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), `"x y"`) {
		t.Fatalf("Open(invalid) = %v, %v; want the validation error", r, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Open of an invalid config created files: %v", entries)
	}
}

func TestOpenFailureClosesOpenedStores(t *testing.T) {
	dir := t.TempDir()
	cfg := stores.Config{
		DataDir: dir,
		Contexts: map[string]stores.ContextConfig{
			// Opened first (contexts open in name order).
			"audit": {Shards: []string{"default", "tenant-a"}},
			"visits": {
				Backend: stores.BackendPostgres,
				DSN:     "postgres://postgres@127.0.0.1:1/sw_{shard}?sslmode=disable&connect_timeout=5",
				Shards:  []string{"default", "tenant-a"},
			},
		},
	}
	r, err := stores.Open(t.Context(), cfg)
	if err == nil {
		_ = r.Close()
		t.Fatal("Open succeeded with PostgreSQL on an unreachable port")
	}
	if r != nil {
		t.Error("Open returned a registry with its error")
	}
	for _, s := range []string{`context "visits"`, `shard "default"`, "postgres"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not name %s: %v", s, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "audit", "tenant-a.db")); err != nil {
		t.Fatalf("the sqlite stores before the failing one were not opened: %v", err)
	}
	if open := openFiles(t, dir); len(open) != 0 {
		t.Errorf("files left open after Open failed: %q", open)
	}
}

func TestOpenPostgresDatabasePerShard(t *testing.T) {
	base := pgtest.URL(t)
	ctx := t.Context()
	dsn := pgtest.WithDatabase(t, base, pgtest.RandomName("sw_shard_")+"_{shard}")
	if !strings.Contains(dsn, "{shard}") {
		t.Fatalf("the {shard} placeholder did not survive: %s", dsn)
	}
	shards := []string{"default", "tenant-a"}
	t.Cleanup(func() {
		for _, shard := range shards {
			if err := postgres.DropDatabase(context.Background(), strings.ReplaceAll(dsn, "{shard}", shard)); err != nil {
				t.Errorf("drop database of %s: %v", shard, err)
			}
		}
	})
	cfg := stores.Config{
		Contexts: map[string]stores.ContextConfig{
			"visits": {Backend: stores.BackendPostgres, DSN: dsn, CreateDatabases: true, Shards: shards},
		},
		Tenants: map[string]string{"acme": "tenant-a"},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := openRegistry(t, cfg)

	shard, err := r.ShardOf("acme")
	if err != nil {
		t.Fatal(err)
	}
	tctx := sharding.NewContext(ctx, shard)
	st, err := r.For(tctx, "visits")
	if err != nil {
		t.Fatal(err)
	}
	if schema := st.(*postgres.Store).Schema(); schema != "switchyard" {
		t.Errorf("schema = %q, want switchyard", schema)
	}
	got := appendOne(t, tctx, st, "Visit-42")

	// Each shard is its own database: a store opened on tenant-a's database
	// directly finds the event, default's holds nothing.
	direct, err := postgres.Open(ctx, strings.ReplaceAll(dsn, "{shard}", "tenant-a"), postgres.Config{Context: "visits", Shard: "tenant-a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Close() })
	if read, err := direct.Read(ctx, "Visit-42", store.Forward, 0, 10); err != nil || len(read) != 1 || read[0].ID != got.ID {
		t.Errorf("tenant-a's database: read %v, %v", read, err)
	}
	def, err := r.Store("visits", "default")
	if err != nil {
		t.Fatal(err)
	}
	if all, err := def.ReadAll(ctx, store.Position{}, 10); err != nil || len(all) != 0 {
		t.Errorf("visits/default holds %d events (%v), want none", len(all), err)
	}
}

func TestOpenPostgresSchemaPerShard(t *testing.T) {
	dsn := pgtest.Database(t)
	ctx := t.Context()
	cfg := stores.Config{
		Contexts: map[string]stores.ContextConfig{
			"billing": {Backend: stores.BackendPostgres, DSN: dsn, Shards: []string{"default", "tenant-a"}},
		},
	}
	r := openRegistry(t, cfg)
	for shard, schema := range map[string]string{"default": "billing_default", "tenant-a": "billing_tenant_a"} {
		st, err := r.Store("billing", shard)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.(*postgres.Store).Schema(); got != schema {
			t.Errorf("billing/%s: schema %q, want %q", shard, got, schema)
		}
	}
	tctx := sharding.NewContext(ctx, "tenant-a")
	st, err := r.For(tctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	appendOne(t, tctx, st, "Invoice-7")
	def, _ := r.Store("billing", "default")
	if all, err := def.ReadAll(ctx, store.Position{}, 10); err != nil || len(all) != 0 {
		t.Errorf("billing/default holds %d events (%v), want none", len(all), err)
	}
}

// Read merges the file and the environment before validating, and reports
// every problem of both in one error: a bad value in the file by its YAML
// path, a bad variable by its name, and a problem of a value a variable set
// by the variable (and the path). A DSN given only by a variable is
// enough: no password in the file.
func TestReadMergesThenValidates(t *testing.T) {
	file := filepath.Join(t.TempDir(), "switchyard.yaml")
	yaml := "contexts:\n  visits:\n    shards: [default, \"bad shard\"]\n  billing:\n    backend: postgres\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := stores.Read(file, []string{
		"SWITCHYARD_MAX_EVENT_BYTES=lots",
		"SWITCHYARD_CONTEXT_BILLING_DSN=postgres://u:secret@h:54x/billing_{shard}",
	})
	got := paths(t, err)
	want := []string{"SWITCHYARD_CONTEXT_BILLING_DSN (contexts.billing.dsn)", "SWITCHYARD_MAX_EVENT_BYTES", "contexts.visits.shards[1]"}
	if !slices.Equal(got, want) {
		t.Fatalf("problems at %q, want %q; error:\n%v", got, want, err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the password: %v", err)
	}

	cfg, err := stores.Read(file, []string{"SWITCHYARD_CONTEXT_VISITS_SHARDS=default,tenant-a",
		"SWITCHYARD_CONTEXT_BILLING_DSN=postgres://u:secret@h:5432/billing_{shard}"})
	if err != nil {
		t.Fatalf("file completed by the environment: %v", err)
	}
	if cfg.Contexts["billing"].DSN == "" || len(cfg.Contexts["visits"].Shards) != 2 {
		t.Errorf("read %+v", cfg)
	}
}

// Existing opens only what exists and changes nothing: no sqlite file is
// created, no postgres schema made or migrated; once Open has migrated
// them, Existing opens them.
func TestOpenExisting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dsn := pgtest.Database(t)
	cfg, err := stores.Parse([]byte("data_dir: " + dir + "\ncontexts:\n  visits: {}\n  billing:\n    backend: postgres\n    dsn: " + dsn + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	one := func(name string) stores.Config {
		c, err := cfg.Only(name, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := stores.Open(ctx, one("visits"), stores.Existing()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("sqlite store that does not exist: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "visits")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Existing created %s/visits: %v", dir, err)
	}
	if _, err := stores.Open(ctx, one("billing"), stores.Existing()); !errors.Is(err, store.ErrNotMigrated) {
		t.Fatalf("postgres store never migrated: %v, want store.ErrNotMigrated", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var schemas int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'billing_default'`).Scan(&schemas); err != nil || schemas != 0 {
		t.Fatalf("Existing created the schema: %d, %v", schemas, err)
	}
	reg, err := stores.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg.Close()
	reg, err = stores.Open(ctx, cfg, stores.Existing())
	if err != nil {
		t.Fatalf("Existing after migrating: %v", err)
	}
	reg.Close()
}

// A variable that fits two settings sets the one whose context is
// configured; two configured contexts it fits are an error.
func TestApplyEnvReplicaSuffix(t *testing.T) {
	cfg := stores.Config{Contexts: map[string]stores.ContextConfig{"reports-replica": {Backend: "postgres"}}}
	if err := cfg.ApplyEnv([]string{"SWITCHYARD_CONTEXT_REPORTS_REPLICA_DSN=postgres://h/r"}); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Contexts["reports-replica"].DSN; got != "postgres://h/r" || len(cfg.Contexts) != 1 {
		t.Errorf("the dsn of reports-replica = %q, contexts %v", got, cfg.Contexts)
	}
	both := stores.Config{Contexts: map[string]stores.ContextConfig{"reports-replica": {}, "reports": {}}}
	if err := both.ApplyEnv([]string{"SWITCHYARD_CONTEXT_REPORTS_REPLICA_DSN=postgres://h/r"}); err == nil || !strings.Contains(err.Error(), "fits two configured contexts") {
		t.Errorf("a variable fitting two contexts: %v", err)
	}
}
