// Package otlptest is an OTLP/HTTP receiver for tests and benchmarks: it
// takes the spans and metrics an exporter sends (protobuf or JSON over
// HTTP, as OTEL_EXPORTER_OTLP_ENDPOINT points it) and keeps them for the
// caller to look at, or counts and drops them.
package otlptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Receiver is a running OTLP/HTTP receiver. Close stops it.
type Receiver struct {
	srv  *httptest.Server
	keep bool

	mu       sync.Mutex
	spans    []*tracepb.ResourceSpans
	metrics  []*metricpb.ResourceMetrics
	requests int
	bytes    int64
}

// Start starts a receiver on a loopback port; keep false drops what it
// receives unread, counting only requests and bytes (for benchmarks: a
// collector decodes on a machine of its own).
func Start(keep bool) *Receiver {
	r := &Receiver{keep: keep}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.traces)
	mux.HandleFunc("POST /v1/metrics", r.metricsIn)
	r.srv = httptest.NewServer(mux)
	return r
}

// Endpoint is the value for OTEL_EXPORTER_OTLP_ENDPOINT.
func (r *Receiver) Endpoint() string { return r.srv.URL }

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }

// decode reads req into m, or, when r keeps nothing, only counts it; kept
// reports whether m holds the request, failed that it was answered with
// an error.
func (r *Receiver) decode(w http.ResponseWriter, req *http.Request, m proto.Message) (kept, failed bool) {
	if !r.keep {
		n, _ := io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.requests++
		r.bytes += n
		r.mu.Unlock()
		return false, false
	}
	body, err := io.ReadAll(req.Body)
	if err == nil {
		if req.Header.Get("Content-Type") == "application/json" {
			err = protojson.Unmarshal(body, m)
		} else {
			err = proto.Unmarshal(body, m)
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false, true
	}
	return true, false
}

// answer writes the protobuf answer out.
func answer(w http.ResponseWriter, out proto.Message) {
	b, _ := proto.Marshal(out)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(b) //nolint:errcheck // the exporter retries
}

func (r *Receiver) traces(w http.ResponseWriter, req *http.Request) {
	var in coltracepb.ExportTraceServiceRequest
	kept, failed := r.decode(w, req, &in)
	if failed {
		return
	}
	if kept {
		r.mu.Lock()
		r.spans = append(r.spans, in.ResourceSpans...)
		r.mu.Unlock()
	}
	answer(w, &coltracepb.ExportTraceServiceResponse{})
}

func (r *Receiver) metricsIn(w http.ResponseWriter, req *http.Request) {
	var in colmetricpb.ExportMetricsServiceRequest
	kept, failed := r.decode(w, req, &in)
	if failed {
		return
	}
	if kept {
		r.mu.Lock()
		r.metrics = append(r.metrics, in.ResourceMetrics...)
		r.mu.Unlock()
	}
	answer(w, &colmetricpb.ExportMetricsServiceResponse{})
}

// Span is a received span, flattened.
type Span struct {
	Service string
	Name    string
	Kind    tracepb.Span_SpanKind
	TraceID string // hex
	SpanID  string
	Parent  string
	Attrs   map[string]string
	Links   []string // span ids
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Span
	for _, rs := range r.spans {
		service := resourceAttr(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := Span{Service: service, Name: s.Name, Kind: s.Kind, TraceID: hexOf(s.TraceId), SpanID: hexOf(s.SpanId),
					Parent: hexOf(s.ParentSpanId), Attrs: map[string]string{}}
				for _, kv := range s.Attributes {
					sp.Attrs[kv.Key] = valueString(kv.Value)
				}
				for _, l := range s.Links {
					sp.Links = append(sp.Links, hexOf(l.SpanId))
				}
				out = append(out, sp)
			}
		}
	}
	return out
}

// Received reports how many requests, and bytes of them, a receiver that
// keeps nothing was sent.
func (r *Receiver) Received() (requests int, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.bytes
}

// Sums returns, by metric name, the total of the latest data points of
// every sum and gauge received and the count of every histogram.
func (r *Receiver) Sums() map[string]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]float64{}
	// Cumulative data: the last export of each stream holds its total.
	last := map[string]float64{}
	for _, rm := range r.metrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				for key, v := range points(m) {
					last[m.Name+"\x00"+key] = v
				}
			}
		}
	}
	for k, v := range last {
		name, _, _ := strings.Cut(k, "\x00")
		out[name] += v
	}
	return out
}

// points returns m's data points by their attributes.
func points(m *metricpb.Metric) map[string]float64 {
	out := map[string]float64{}
	key := func(attrs []*commonKV) string {
		s := ""
		for _, kv := range attrs {
			s += kv.Key + "=" + valueString(kv.Value) + ";"
		}
		return s
	}
	switch d := m.Data.(type) {
	case *metricpb.Metric_Sum:
		for _, p := range d.Sum.DataPoints {
			out[key(p.Attributes)] = number(p)
		}
	case *metricpb.Metric_Gauge:
		for _, p := range d.Gauge.DataPoints {
			out[key(p.Attributes)] = number(p)
		}
	case *metricpb.Metric_Histogram:
		for _, p := range d.Histogram.DataPoints {
			out[key(p.Attributes)] = float64(p.Count)
		}
	}
	return out
}

func number(p *metricpb.NumberDataPoint) float64 {
	if v, ok := p.Value.(*metricpb.NumberDataPoint_AsInt); ok {
		return float64(v.AsInt)
	}
	return p.GetAsDouble()
}
