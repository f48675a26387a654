package consumer

import (
	"context"
	"time"
)

// turns lets Config.Turns partitions of a group hand deliveries to the
// function at once; the others wait for a turn, at most Config.TurnWait.
// A nil *turns never makes anyone wait.
type turns struct {
	slots chan struct{}
	wait  time.Duration
}

func newTurns(cfg Config) *turns {
	if cfg.Turns <= 0 {
		return nil
	}
	return &turns{slots: make(chan struct{}, cfg.Turns), wait: cfg.TurnWait}
}

// take waits for a turn, at most t.wait or until ctx ends, and reports
// whether it got one: without, the caller goes on all the same.
func (t *turns) take(ctx context.Context) bool {
	select {
	case t.slots <- struct{}{}:
		return true
	default:
	}
	timer := time.NewTimer(t.wait)
	defer timer.Stop()
	select {
	case t.slots <- struct{}{}:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	return false
}

// give ends a turn take returned.
func (t *turns) give() {
	<-t.slots
}
