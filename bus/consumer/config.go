package consumer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/store"
)

// Config says what a consumer group receives.
type Config struct {
	// Source is the bounded context whose stream is consumed.
	Source string
	// Group names the consumer group: one durable JetStream consumer per
	// partition (see DurableName). Every replica of a group must use the
	// same configuration.
	Group string
	// Types are the event types to receive (nil: all of them).
	Types []string

	// AckWait is how long a delivery may go unacknowledged before JetStream
	// delivers it again (default 30s). While a delivery is being handled,
	// Run tells JetStream it is in progress every AckWait/3, so a slow
	// handler is not redelivered under it. It is also how long a silent
	// replica keeps its partitions (see the package doc).
	AckWait time.Duration
	// DrainTimeout is how long in-flight work may go on after Run's ctx
	// ends before its own ctx is cancelled (default 30s).
	DrainTimeout time.Duration
	// MaxInFlight is how many deliveries of one partition this group may
	// hold unacknowledged at once (default DefaultMaxInFlight): they are
	// handled one at a time, in stream order, while the next ones are
	// already on their way.
	MaxInFlight int
	// MaxBatch is how many consecutive deliveries of one partition RunBatch
	// hands its function at once (default 1), MaxBatchBytes how many bytes
	// of data they may hold together (default 1 MiB; a delivery larger on
	// its own goes alone). A batch is what is held when the function is
	// free: nothing waits for a batch to fill.
	MaxBatch      int
	MaxBatchBytes int
	// Turns is how many partitions may run the function at once before
	// the others wait (0: none waits). A partition with deliveries waits
	// for a turn, at most TurnWait (default DefaultTurnWait), and then
	// takes what it holds, turn or not: with MaxBatch above 1, the
	// deliveries that arrived meanwhile join its batch. Under load a group so runs fewer, larger
	// batches (fewer transactions, when each batch is one); when fewer
	// than Turns partitions are busy, nothing waits. A turn ends when the
	// function returns; a delivery waiting to be tried again holds none,
	// and a function that hangs delays the others' batches by TurnWait,
	// never stops them.
	Turns    int
	TurnWait time.Duration
	// Logger receives consumer errors (nil discards them).
	Logger *slog.Logger
}

// DefaultMaxInFlight is Config.MaxInFlight's default.
const DefaultMaxInFlight = 64

// DefaultTurnWait is Config.TurnWait's default: a few of a loaded
// database's transactions.
const DefaultTurnWait = 100 * time.Millisecond

func (c *Config) setDefaults() {
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 1 << 20
	}
	if c.TurnWait == 0 {
		c.TurnWait = DefaultTurnWait
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem with c at once, each a *bus.ConfigError.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, err error) {
		errs = append(errs, &bus.ConfigError{Path: "consumer.Config." + field, Err: err})
	}
	if err := store.CheckName("context", c.Source); err != nil {
		bad("Source", err)
	}
	if err := store.CheckName("group", c.Group); err != nil {
		bad("Group", err)
	}
	for _, t := range c.Types {
		if err := store.CheckType(t); err != nil {
			bad("Types", err)
		}
	}
	if c.AckWait < 0 || (c.AckWait > 0 && c.AckWait < time.Second) {
		bad("AckWait", fmt.Errorf("%v: want at least 1s", c.AckWait))
	}
	if c.MaxInFlight < 0 || c.MaxInFlight > 10000 {
		bad("MaxInFlight", fmt.Errorf("%d: want 1 to 10000 (0: default)", c.MaxInFlight))
	}
	if c.MaxBatch < 0 || c.MaxBatch > 10000 {
		bad("MaxBatch", fmt.Errorf("%d: want 1 to 10000 (0: default)", c.MaxBatch))
	}
	if c.MaxBatchBytes < 0 {
		bad("MaxBatchBytes", fmt.Errorf("%d is negative", c.MaxBatchBytes))
	}
	if c.Turns < 0 {
		bad("Turns", fmt.Errorf("%d is negative", c.Turns))
	}
	if c.TurnWait < 0 {
		bad("TurnWait", fmt.Errorf("%v is negative", c.TurnWait))
	}
	if c.DrainTimeout < 0 {
		bad("DrainTimeout", fmt.Errorf("%v is negative", c.DrainTimeout))
	}
	return errors.Join(errs...)
}
