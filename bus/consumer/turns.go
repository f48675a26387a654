package consumer

import (
	"context"
	"time"
)

// turns are a group's Config.Turns turns: a partition about to hand
// deliveries to the function waits for one, at most Config.TurnWait, and
// then goes on with or without it. A nil *turns never makes anyone wait.
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
