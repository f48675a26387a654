package backoff_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/backoff"
)

func TestDelay(t *testing.T) {
	cfg := backoff.Config{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 3, Jitter: 0.1}
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{1, 100 * time.Millisecond}, {2, 300 * time.Millisecond}, {3, 900 * time.Millisecond}, {4, time.Second}, {50, time.Second},
	} {
		for range 100 {
			got := cfg.Delay(tc.failures)
			if lo, hi := tc.want*9/10, min(tc.want*11/10, cfg.Max); got < lo || got > hi {
				t.Fatalf("Delay(%d) = %v, want %v ±10%%, at most Max", tc.failures, got, tc.want)
			}
		}
	}
	// Without jitter, the waits are exact.
	exact := backoff.Config{Initial: 10 * time.Millisecond, Max: 35 * time.Millisecond, Jitter: -1}
	for failures, want := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 35 * time.Millisecond} {
		if got := exact.Delay(failures); got != want {
			t.Errorf("no jitter: Delay(%d) = %v, want %v", failures, got, want)
		}
	}
	// Values Validate refuses count as defaults, never as a hot loop.
	if got := (backoff.Config{Initial: -time.Second, Multiplier: 0.1, Jitter: -1}).Delay(3); got != 200*time.Millisecond {
		t.Errorf("refused values: Delay(3) = %v, want the default 200ms", got)
	}
	// The zero value: 50ms doubling up to 5s, ±20%.
	var zero backoff.Config
	if got := zero.Delay(1); got < 40*time.Millisecond || got > 60*time.Millisecond {
		t.Errorf("zero Config: Delay(1) = %v, want 50ms ±20%%", got)
	}
	if got := zero.Delay(100); got < 4*time.Second || got > 5*time.Second {
		t.Errorf("zero Config: Delay(100) = %v, want 4s to 5s (the cap, jitter below it)", got)
	}
}

func TestValidate(t *testing.T) {
	if err := (backoff.Config{Jitter: -1}).Validate(); err != nil {
		t.Errorf("no jitter: %v", err)
	}
	err := backoff.Config{Initial: -1, Max: time.Millisecond, Multiplier: 0.5, Jitter: 2}.Validate()
	for _, want := range []string{"Initial", "Multiplier", "Jitter"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v; want it to name %s", err, want)
		}
	}
	if err := (backoff.Config{Initial: time.Second, Max: time.Millisecond}).Validate(); err == nil || !strings.Contains(err.Error(), "Max") {
		t.Errorf("max below initial: %v", err)
	}
	if err := (backoff.Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

func TestWithDefaultsTwiceKeepsNoJitter(t *testing.T) {
	cfg := backoff.Config{Initial: 10 * time.Millisecond, Jitter: -1}.WithDefaults().WithDefaults()
	for range 20 {
		if got := cfg.Delay(1); got != 10*time.Millisecond {
			t.Fatalf("Delay(1) = %v after WithDefaults twice; want exactly 10ms (no jitter)", got)
		}
	}
}
