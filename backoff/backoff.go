// Package backoff is the one shape of waiting between tries that
// Switchyard uses wherever it tries again after a failure — a relay after
// the database or NATS failed, a handler after an error: Initial, then
// Multiplier times longer after each failure in a row, up to Max, each
// wait spread by up to ±Jitter of itself at random so that replicas that
// failed together do not try again together.
//
//	cfg := backoff.Config{Max: time.Second} // the zero fields take their defaults
//	time.Sleep(cfg.Delay(failures))
//
// A Config is a plain value, safe to share.
package backoff

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Config shapes the waits. The zero value works: 50ms, doubling, up to 5s,
// ±20%. A field left zero, or set to a value Validate refuses, counts as
// its default.
type Config struct {
	// Initial is the wait after the first failure (default 50ms).
	Initial time.Duration
	// Max caps every wait, jitter included (default 5s, and never below
	// Initial).
	Max time.Duration
	// Multiplier is how much longer each wait is than the one before
	// (default 2; at least 1).
	Multiplier float64
	// Jitter spreads each wait by up to ±Jitter of itself (default 0.2; at
	// most 1; negative: no jitter).
	Jitter float64
}

// The defaults of Config's zero fields.
const (
	DefaultInitial    = 50 * time.Millisecond
	DefaultMax        = 5 * time.Second
	DefaultMultiplier = 2
	DefaultJitter     = 0.2
)

// WithDefaults returns c with its zero (or refused) fields set to their
// defaults; a negative Jitter stays none. Applying it twice changes
// nothing more.
func (c Config) WithDefaults() Config {
	if c.Initial <= 0 {
		c.Initial = DefaultInitial
	}
	if c.Max <= 0 {
		c.Max = max(DefaultMax, c.Initial)
	}
	c.Max = max(c.Max, c.Initial)
	if c.Multiplier < 1 {
		c.Multiplier = DefaultMultiplier
	}
	if c.Jitter == 0 || c.Jitter > 1 {
		c.Jitter = DefaultJitter
	}
	return c
}

// Validate reports every problem with c at once, each naming its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s %s", name, fmt.Sprintf(format, args...)))
	}
	if c.Initial < 0 {
		bad("Initial", "%v is negative", c.Initial)
	}
	if c.Max < 0 {
		bad("Max", "%v is negative", c.Max)
	}
	if c.Initial > 0 && c.Max > 0 && c.Max < c.Initial {
		bad("Max", "%v is shorter than Initial %v", c.Max, c.Initial)
	}
	if c.Multiplier != 0 && c.Multiplier < 1 {
		bad("Multiplier", "%v: want at least 1", c.Multiplier)
	}
	if c.Jitter > 1 {
		bad("Jitter", "%v: want at most 1 (negative: none)", c.Jitter)
	}
	return errors.Join(errs...)
}

// Delay is the wait after failures failures in a row (1 for the first):
// Initial × Multiplier^(failures-1), spread by Jitter, capped at Max.
func (c Config) Delay(failures int) time.Duration {
	c = c.WithDefaults()
	d := float64(c.Initial)
	for i := 1; i < failures && d < float64(c.Max); i++ {
		d *= c.Multiplier
	}
	if c.Jitter > 0 {
		d *= 1 - c.Jitter + 2*c.Jitter*rand.Float64()
	}
	return min(time.Duration(d), c.Max)
}
