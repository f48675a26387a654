package bus_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/store"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// lagGauge reads switchyard.relay.lag, in seconds; ok is false when no
// process reported it.
func lagGauge(t *testing.T, reader *sdkmetric.ManualReader) (lag float64, ok bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, isGauge := m.Data.(metricdata.Gauge[float64]); isGauge && m.Name == "switchyard.relay.lag" && len(g.DataPoints) == 1 {
				return g.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}

// The lag gauge reads 0 while the relay is caught up, grows while NATS is
// away and an event waits, and is 0 again once it is published; the
// counters count what was published.
func TestLagGauge(t *testing.T) {
	srv := natstest.Start(t, false)
	c := connect(t, srv.URL, bus.Config{ReconnectWait: 50 * time.Millisecond, AckTimeout: 200 * time.Millisecond})
	st := sqliteStore(t, filepath.Join(t.TempDir(), "lag.db"))
	reader := sdkmetric.NewManualReader()
	r := newRelay(t, c, st, bus.RelayConfig{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	run(t, r)
	appendMany(t, st, "lag", 2, 3)
	waitPublished(t, r, 6, "")
	waitFor(t, "lag 0 once caught up", func() bool { lag, ok := lagGauge(t, reader); return ok && lag == 0 })

	srv.Stop()
	if _, err := st.Append(context.Background(), "lag-late", store.NoStream, mustEvent("Booked")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lag over 0.3s while NATS is away", func() bool { lag, _ := lagGauge(t, reader); return lag > 0.3 })
	if st := r.Status(); st.Behind < 300*time.Millisecond {
		t.Errorf("status while NATS is away: Behind %v, want the lag the gauge shows", st.Behind)
	}

	srv.Restart()
	waitPublished(t, r, 7, "")
	waitFor(t, "lag 0 once published", func() bool { lag, ok := lagGauge(t, reader); return ok && lag == 0 })
	if st := r.Status(); st.Behind != 0 {
		t.Errorf("status once caught up: Behind %v, want 0", st.Behind)
	}
}
