package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/stores"
	"gopkg.in/yaml.v3"
)

// compose is what the tests read of docker-compose.yml.
type compose struct {
	Services map[string]struct {
		Build struct {
			Context string            `yaml:"context"`
			Args    map[string]string `yaml:"args"`
		} `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Restart     string            `yaml:"restart"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

func readCompose(t *testing.T) compose {
	t.Helper()
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// Every service docker-compose.yml builds from this repository exports its
// traces to the compose file's Jaeger, whose OTLP/HTTP port is published.
func TestComposeExportsToJaeger(t *testing.T) {
	c := readCompose(t)
	jaeger, ok := c.Services["jaeger"]
	if !ok || !strings.HasPrefix(jaeger.Image, "jaegertracing/jaeger:2") || !slices.Contains(jaeger.Ports, "4318:4318") {
		t.Fatalf("jaeger service %+v: want Jaeger v2 publishing OTLP/HTTP on 4318", jaeger)
	}
	built := 0
	for name, s := range c.Services {
		if s.Build.Context == "" {
			continue
		}
		built++
		if got := s.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]; got != "http://jaeger:4318" {
			t.Errorf("service %s: OTEL_EXPORTER_OTLP_ENDPOINT = %q, want http://jaeger:4318", name, got)
		}
		if s.Environment["OTEL_SERVICE_NAME"] == "" {
			t.Errorf("service %s: no OTEL_SERVICE_NAME", name)
		}
	}
	if built < 2 {
		t.Errorf("%d services built from this repository, want the producer and the consumer", built)
	}
}

// docker-compose.yml agrees with the code. For each service it builds: the
// Dockerfile exists and builds the PROGRAM it names; that program, built,
// defines the subcommand and every flag of the command and of the health
// check, which runs the image's entrypoint; every variable it sets appears
// in the binary (one it reads); the configuration file it names is copied
// into the image from a file that exists; a published port is the one the
// program listens on. Services restart on failure; images are pinned;
// NATS monitoring is enabled on the port it publishes.
func TestComposeMatchesTheCode(t *testing.T) {
	c := readCompose(t)
	binaries := map[string]string{} // program → binary
	for name, s := range c.Services {
		if s.Build.Context == "" {
			if s.Image == "" || strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":") {
				t.Errorf("service %s: image %q is not pinned", name, s.Image)
			}
			continue
		}
		dockerfile, err := os.ReadFile(filepath.Join("../..", s.Build.Context, "Dockerfile"))
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		program := s.Build.Args["PROGRAM"]
		if program == "" || !strings.Contains(string(dockerfile), "ARG PROGRAM") {
			t.Errorf("service %s: build arg PROGRAM %q, and the Dockerfile must take it", name, program)
			continue
		}
		if s.Restart != "on-failure" && s.Restart != "unless-stopped" && s.Restart != "always" {
			t.Errorf("service %s: restart %q: it exits while PostgreSQL starts and must come back", name, s.Restart)
		}
		bin, ok := binaries[program]
		if !ok {
			bin = build(t, program)
			binaries[program] = bin
		}
		checkCommand(t, name, bin, s.Command)
		hc := s.Healthcheck.Test
		if len(hc) < 3 || hc[0] != "CMD" || hc[1] != "/app" || !strings.Contains(string(dockerfile), `ENTRYPOINT ["/app"]`) {
			t.Errorf("service %s: health check %q: want [CMD /app health ...], /app being the image's entrypoint", name, hc)
		} else {
			checkCommand(t, name+" health check", bin, hc[2:])
			if flagValue(hc, "-http") != flagValue(s.Command, "-http") {
				t.Errorf("service %s: the health check asks %s, the program listens on %s", name, flagValue(hc, "-http"), flagValue(s.Command, "-http"))
			}
		}
		binary, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range s.Environment {
			read := k
			if strings.HasPrefix(k, "SWITCHYARD_CONTEXT_") {
				read = "SWITCHYARD_CONTEXT_"
			}
			if !strings.Contains(string(binary), read) {
				t.Errorf("service %s sets %s, which %s does not read", name, k, program)
			}
			if k == "SWITCHYARD_CONFIG" && !copiedFrom(t, string(dockerfile), v) {
				t.Errorf("service %s: SWITCHYARD_CONFIG=%s is not copied into the image from a file of the repository", name, v)
			}
		}
		for _, p := range s.Ports {
			if _, inside, _ := strings.Cut(p, ":"); ":"+inside != flagValue(s.Command, "-http") {
				t.Errorf("service %s publishes %s; the program listens on %q", name, p, flagValue(s.Command, "-http"))
			}
		}
	}
	conf, err := os.ReadFile("../../deploy/nats/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "http_port: 8222") || !slices.Contains(c.Services["nats"].Ports, "8222:8222") {
		t.Error("NATS monitoring: want http_port 8222 in deploy/nats/nats.conf, published as 8222:8222")
	}
}

// build builds the program (a package path of the repository) and returns
// the binary.
func build(t *testing.T, program string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "app")
	cmd := exec.Command("go", "build", "-o", bin, program)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", program, err, out)
	}
	return bin
}

// checkCommand checks that the program defines the subcommand args[0]
// and its flags in args.
func checkCommand(t *testing.T, what, bin string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no command", what)
		return
	}
	out, _ := exec.Command(bin, args[0], "-h").CombinedOutput()
	for _, arg := range args[1:] {
		if f, ok := strings.CutPrefix(arg, "-"); ok && !regexp.MustCompile(`(?m)^\s+-`+regexp.QuoteMeta(f)+`\b`).Match(out) {
			t.Errorf("%s: %s %s takes no flag %s:\n%s", what, filepath.Base(bin), args[0], arg, out)
		}
	}
}

// flagValue is the value after name in args, "" when there is none.
func flagValue(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// copiedFrom reports whether dockerfile copies a file of the repository to
// dst.
func copiedFrom(t *testing.T, dockerfile, dst string) bool {
	t.Helper()
	for _, line := range strings.Split(dockerfile, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "COPY" && f[2] == dst {
			if _, err := os.Stat(filepath.Join("../..", f[1])); err == nil {
				return true
			}
		}
	}
	return false
}

// The PostgreSQL set-up of the compose file, on a real server: every
// store deploy/switchyard.yaml names has its database and role in
// deploy/postgres-init.sql; a store opened as a shard's role migrates and
// writes its own database and cannot open another shard's.
func TestComposePostgresRoles(t *testing.T) {
	cfg, err := stores.Load("../../deploy/switchyard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	initSQL, err := os.ReadFile("../../deploy/postgres-init.sql")
	if err != nil {
		t.Fatal(err)
	}
	var dbs []string
	for name, cc := range cfg.Contexts {
		for _, sh := range cc.Shards {
			dsn := strings.NewReplacer("{context}", name, "{shard}", sh).Replace(cc.DSN)
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			db := strings.TrimPrefix(u.Path, "/")
			for _, want := range []string{"CREATE ROLE " + u.User.Username() + " LOGIN", "CREATE DATABASE " + db + " OWNER " + u.User.Username(), "ON DATABASE " + db + " FROM PUBLIC"} {
				if !strings.Contains(string(initSQL), want) {
					t.Errorf("store %s/%s: deploy/postgres-init.sql has no %q", name, sh, want)
				}
			}
			dbs = append(dbs, db)
		}
	}

	admin := pgtest.URL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	drop := func() {
		for _, db := range dbs {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			conn.Exec(ctx, "DROP ROLE IF EXISTS "+db)
		}
	}
	drop()
	t.Cleanup(drop)
	var lines []string // without comments
	for _, l := range strings.Split(string(initSQL), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	for _, stmt := range strings.Split(strings.Join(lines, "\n"), ";") {
		if sql := strings.TrimSpace(stmt); sql != "" {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
	}
	as := func(role, db string) string {
		u, _ := url.Parse(admin)
		u.User = url.UserPassword(role, "switchyard")
		u.Path = "/" + db
		return u.String()
	}
	// The store of tenant_a, opened as its role: it migrates its schema and
	// appends; the same role cannot even open tenant_b's.
	own, err := postgres.Open(ctx, as("visits_tenant_a", "visits_tenant_a"), postgres.Config{Context: "visits", Shard: "tenant_a"})
	if err != nil {
		t.Fatalf("visits_tenant_a opening its own store (migrating it): %v", err)
	}
	defer own.Close()
	ev, err := store.NewEvent("Visited", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.Append(ctx, "visit-1", store.NoStream, ev); err != nil {
		t.Fatalf("visits_tenant_a appending to its store: %v", err)
	}
	if other, err := postgres.Open(ctx, as("visits_tenant_a", "visits_tenant_b"), postgres.Config{Context: "visits", Shard: "tenant_b"}); err == nil {
		other.Close()
		t.Fatal("visits_tenant_a opened the store in visits_tenant_b")
	} else if !strings.Contains(err.Error(), "permission denied for database") {
		t.Fatalf("visits_tenant_a opening visits_tenant_b's store: %v, want permission denied", err)
	}
}

// The NATS users of deploy/nats are allowed exactly what their roles
// need, as the program itself says (its permissions subcommand over
// deploy/switchyard.yaml), and the consumer service connects as the
// replica user, on that user's inbox.
func TestComposeNATSPermissions(t *testing.T) {
	c := readCompose(t)
	opts, err := server.ProcessConfigFile("../../deploy/nats/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	consumer := c.Services["consumer"]
	bin := build(t, consumer.Build.Args["PROGRAM"])
	for role, user := range map[string]string{"run": "replica", "operator": "operator", "admin": "admin"} {
		u := users[user]
		if u == nil || u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil {
			t.Errorf("deploy/nats/nats.conf: no user %s with publish and subscribe permissions", user)
			continue
		}
		if len(u.Permissions.Publish.Deny)+len(u.Permissions.Subscribe.Deny) > 0 || u.Permissions.Response != nil {
			t.Errorf("user %s: deny rules or response permissions the program did not ask for: %+v", user, u.Permissions)
		}
		cmd := exec.Command(bin, "permissions", "-role", role, "-json", "-inbox-prefix", "_INBOX_"+user)
		cmd.Env = append(os.Environ(), "SWITCHYARD_CONFIG=../../deploy/switchyard.yaml")
		if role == "run" { // as the service runs it
			for k, v := range consumer.Environment {
				if k != "SWITCHYARD_CONFIG" {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
			}
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s permissions -role %s: %v", filepath.Base(bin), role, err)
		}
		var want bus.Permissions
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatal(err)
		}
		got := bus.Permissions{Publish: u.Permissions.Publish.Allow, Subscribe: u.Permissions.Subscribe.Allow}.Add(bus.Permissions{})
		if !slices.Equal(got.Publish, want.Publish) || !slices.Equal(got.Subscribe, want.Subscribe) {
			t.Errorf("user %s (role %s): deploy/nats allows\n%v\nthe program needs\n%v\n(regenerate: see deploy/nats/nats.conf)", user, role, got, want)
		}
	}
	env := consumer.Environment
	if r := users["replica"]; r == nil || env["SWITCHYARD_NATS_USER"] != "replica" || env["SWITCHYARD_NATS_PASSWORD"] != r.Password || env["SWITCHYARD_NATS_INBOX_PREFIX"] != "_INBOX_replica" {
		t.Errorf("consumer service: want it to connect as deploy/nats's replica user, on _INBOX_replica; environment %v", env)
	}
}
