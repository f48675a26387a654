package testrun_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/testrun"
)

func TestBackgroundStopsAndWaits(t *testing.T) {
	var running, stopped atomic.Bool
	stop := testrun.Background(t, "worker", func(ctx context.Context) error {
		running.Store(true)
		<-ctx.Done()
		stopped.Store(true)
		return nil
	})
	testrun.Wait(t, "the worker running", 5*time.Second, running.Load)
	stop()
	if !stopped.Load() {
		t.Fatal("stop returned before the worker did")
	}
	stop() // twice is harmless
}
