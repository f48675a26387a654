package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/otlptest"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// mainEnv makes the test binary run the example instead of its tests.
const mainEnv = "SWITCHYARD_QUICKSTART_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The example, run as a program with OTEL_EXPORTER_OTLP_ENDPOINT pointing
// at an OTLP/HTTP receiver, exports each chain as one trace — append →
// visit-log process → append → visit-notify process — and the metrics of
// what it did.
func TestExportsTheChain(t *testing.T) {
	rcv := otlptest.Start(true)
	defer rcv.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), mainEnv+"=1", "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(), "OTEL_SERVICE_NAME=quickstart-test")
	cmd.WaitDelay = time.Minute
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out)
	}
	chains := strings.Count(string(out), "chain ")
	if chains != 2 {
		t.Fatalf("quickstart printed %d chains, want 2:\n%s", chains, out)
	}
	spans := rcv.Spans()
	byID := map[string]otlptest.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
		if s.Service != "quickstart-test" {
			t.Errorf("span %q of service %q, want quickstart-test", s.Name, s.Service)
		}
	}
	found := 0
	for _, last := range spans {
		if last.Name != "visit-notify process VisitLogged" {
			continue
		}
		found++
		var path []string
		for s, ok := last, true; ok; s, ok = byID[s.Parent] {
			if s.TraceID != last.TraceID {
				t.Errorf("span %q in trace %s, its child in %s", s.Name, s.TraceID, last.TraceID)
			}
			path = append([]string{s.Name + "/" + kind(s.Kind)}, path...)
		}
		want := "append visits/producer > visit-log process VisitScheduled/consumer > append visits/producer > visit-notify process VisitLogged/consumer"
		if got := strings.Join(path, " > "); got != want {
			t.Errorf("chain of trace %s: %s\nwant %s", last.TraceID, got, want)
		}
	}
	if found != 2 {
		t.Errorf("%d visit-notify spans exported, want 2 (of %d spans)", found, len(spans))
	}
	sums := rcv.Sums()
	for name, want := range map[string]float64{
		"switchyard.events.appended": 4, // two visits, two derived
		"switchyard.relay.published": 4,
		"messaging.process.duration": 4, // each event handled by one group
	} {
		if sums[name] != want {
			t.Errorf("metric %s = %v, want %v (all: %v)", name, sums[name], want, sums)
		}
	}
}

func kind(k tracepb.Span_SpanKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "SPAN_KIND_"))
}
