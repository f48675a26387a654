package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
	"gopkg.in/yaml.v3"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The consumer on embedded defaults: it relays a sqlite store, reports
// ready, taps the event appended by another store handle, and drains on
// cancel.
func TestConsumer(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	environ := []string{"SWITCHYARD_DATA_DIR=" + dir, "SWITCHYARD_CONTEXT_VISITS_SHARDS=default,tenant-a"}
	var out, logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-http", addr, "-tap", "visits", "-ack-wait", "2s"}, environ, &out, &logs)
	}()
	defer func() {
		cancel()
		<-done
	}()

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	st, err := sqlite.Open(context.Background(), sqlite.Config{Context: "visits", Shard: "tenant-a", Path: filepath.Join(dir, "visits", "tenant-a.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ev, _ := store.NewEvent("VisitBooked", map[string]string{"visit": "42"})
	if _, err := st.Append(context.Background(), "Visit-42", store.NoStream, ev); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), `"data":{"visit":"42"}`) {
		if time.Now().After(deadline) {
			t.Fatalf("event not tapped; out %q; logs:\n%s", out.String(), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), `"shard":"tenant-a"`) {
		t.Fatalf("tap line: %s", out.String())
	}
	if got := get(t, "http://"+addr+"/readyz"); !strings.Contains(got, `"behind_s":0`) {
		t.Fatalf("/readyz has no relay lag of 0 once the event is handled: %s", got)
	}
	for _, want := range []string{`switchyard_events_appended_total{`, `switchyard_relay_published_total{`, `messaging_process_duration_seconds_count{`} {
		if got := get(t, "http://"+addr+"/metrics"); !strings.Contains(got, want) {
			t.Fatalf("/metrics has no %s:\n%s", want, got)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no drain")
	}
	done <- nil
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBadFlags(t *testing.T) {
	var out, logs syncBuffer
	if err := run(context.Background(), []string{"-nope"}, nil, &out, &logs); err == nil {
		t.Fatal("unknown flag accepted")
	}
	err := run(context.Background(), []string{"-http", ""}, []string{"SWITCHYARD_CONTEXT_VISITS_BACKEND=oracle"}, &out, &logs)
	if err == nil || !strings.Contains(err.Error(), "oracle") {
		t.Fatalf("bad backend: %v", err)
	}
	// Nothing configured is an error that says how to configure.
	if err := run(context.Background(), []string{"-http", ""}, nil, &out, &logs); err == nil || !strings.Contains(err.Error(), "SWITCHYARD_CONTEXT_VISITS_SHARDS") {
		t.Fatalf("no configuration: %v", err)
	}
	// Problems of the file and of the environment come out together.
	file := filepath.Join(t.TempDir(), "sw.yaml")
	if err := os.WriteFile(file, []byte("contexts:\n  visits:\n    shards: [\"a b\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"-http", "", "-config", file}, []string{"SWITCHYARD_MAX_EVENT_BYTES=lots"}, &out, &logs)
	if err == nil || !strings.Contains(err.Error(), "contexts.visits.shards[0]") || !strings.Contains(err.Error(), "SWITCHYARD_MAX_EVENT_BYTES") {
		t.Fatalf("a bad file and a bad variable: %v", err)
	}
	// A context to tap that is not configured (a typo) stops it at start.
	environ := []string{"SWITCHYARD_DATA_DIR=" + t.TempDir(), "SWITCHYARD_CONTEXT_VISITS_SHARDS=default"}
	err = run(context.Background(), []string{"-http", "", "-tap", "visit"}, environ, &out, &logs)
	if err == nil || !strings.Contains(err.Error(), `context "visit" is not configured`) {
		t.Fatalf("-tap visit with only visits configured: %v", err)
	}
}

// Every service docker-compose.yml builds from this repository exports its
// traces to the compose file's Jaeger, whose OTLP/HTTP port is published.
func TestComposeExportsToJaeger(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	jaeger, ok := compose.Services["jaeger"]
	if !ok || !strings.HasPrefix(jaeger.Image, "jaegertracing/jaeger:2") || !slices.Contains(jaeger.Ports, "4318:4318") {
		t.Fatalf("jaeger service %+v: want Jaeger v2 publishing OTLP/HTTP on 4318", jaeger)
	}
	built := 0
	for name, s := range compose.Services {
		if s.Build == nil {
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
	if built == 0 {
		t.Error("no service is built from this repository")
	}
}

// docker-compose.yml agrees with the code: the services it builds have a
// Dockerfile; every SWITCHYARD_ variable it sets is one the consumer or
// package stores reads; the configuration file it names is copied into
// the image from a file that exists; every flag of its command is one the
// consumer defines; NATS monitoring is enabled on the port it publishes.
func TestComposeMatchesTheCode(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Build       string            `yaml:"build"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	main, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	var usage syncBuffer
	_ = run(context.Background(), []string{"-help"}, nil, &usage, &usage)
	for name, s := range compose.Services {
		if s.Build == "" {
			continue
		}
		dockerfile, err := os.ReadFile(filepath.Join("../..", s.Build, "Dockerfile"))
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		for k, v := range s.Environment {
			storesVar := k == "SWITCHYARD_DATA_DIR" || k == "SWITCHYARD_MAX_EVENT_BYTES" || k == "SWITCHYARD_TENANTS" || strings.HasPrefix(k, "SWITCHYARD_CONTEXT_")
			if strings.HasPrefix(k, "SWITCHYARD_") && !storesVar && !strings.Contains(string(main), `"`+k+`"`) {
				t.Errorf("service %s sets %s, which the consumer does not read", name, k)
			}
			if k == "SWITCHYARD_CONFIG" && !copiedFrom(t, string(dockerfile), v) {
				t.Errorf("service %s: SWITCHYARD_CONFIG=%s is not copied into the image from a file of the repository", name, v)
			}
		}
		for _, arg := range s.Command {
			if flag, ok := strings.CutPrefix(arg, "-"); ok && !strings.Contains(usage.String(), "  -"+flag+" ") && !strings.Contains(usage.String(), "  -"+flag+"\n") {
				t.Errorf("service %s: flag %s is not one the consumer defines", name, arg)
			}
		}
	}
	conf, err := os.ReadFile("../../deploy/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "http_port: 8222") || !slices.Contains(compose.Services["nats"].Ports, "8222:8222") {
		t.Error("NATS monitoring: want http_port 8222 in deploy/nats.conf, published as 8222:8222")
	}
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
