package bus

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchyard-go/switchyard/store"
)

// A leader whose reads are caught up asks a store that can be held back
// (store.Holder) what holds it, at most every holdCheckEvery; a hold
// whose first event has waited holdReportAfter shows in the status and the
// log. Younger ones are the ordinary transactions of a busy store.
const (
	holdCheckEvery  = time.Second
	holdReportAfter = time.Second
)

// checkHeld runs after each read that left the leader caught up, found
// being what it read: it asks the store what holds its reads back when
// the read found nothing, or when a hold is reported and may have ended.
func (l *leader) checkHeld(ctx context.Context, found int) {
	hr, ok := l.r.st.(store.Holder)
	if !ok {
		return
	}
	if found > 0 {
		l.r.lag.held.Store(0) // what it read is in flight: the lag counts from it
		if l.r.heldBy() == nil {
			return
		}
	}
	now := time.Now()
	if now.Sub(l.holdChecked) < holdCheckEvery {
		return
	}
	l.holdChecked = now
	h, held, err := hr.HeldBack(ctx, l.next)
	if err != nil {
		return // the next read says so, if the store is out of reach
	}
	l.r.setHold(ctx, h, held, now)
}

// setHold records what the store said holds the relay back: its lag
// counts from the first event held back, and once that has waited
// holdReportAfter the hold is logged and in Status.
func (r *Relay) setHold(ctx context.Context, h store.Hold, held bool, now time.Time) {
	var reported *store.Hold
	if held {
		r.lag.held.Store(h.Since.UnixNano())
		if now.Sub(h.Since) >= holdReportAfter {
			reported = &h
		}
	} else {
		r.lag.held.Store(0)
	}
	r.mu.Lock()
	was := r.hold
	r.hold = reported
	r.mu.Unlock()
	switch {
	case reported != nil && (was == nil || !sameHold(*was, h)):
		r.log.LogAttrs(ctx, slog.LevelWarn, "relay held back by a transaction still running in the store's database: events committed after it began wait until it ends",
			slog.Duration("behind", now.Sub(h.Since)), slog.String("by", h.String()))
	case reported == nil && was != nil:
		r.log.LogAttrs(ctx, slog.LevelInfo, "relay no longer held back", slog.String("was", was.String()))
	}
}

// sameHold reports whether a and b are the same transaction.
func sameHold(a, b store.Hold) bool {
	return a.PID == b.PID && a.Prepared == b.Prepared && a.Began.Equal(b.Began)
}

// heldBy is the hold reported, or nil.
func (r *Relay) heldBy() *store.Hold {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hold
}

// forgetHold drops the hold reported when leading ends.
func (r *Relay) forgetHold() {
	r.mu.Lock()
	r.hold = nil
	r.mu.Unlock()
}
