package bus

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchyard-go/switchyard/store"
)

// A leader whose read found nothing asks a store that can be held back
// (store.Holder) what holds it, at most every holdCheckEvery: a commit
// that does not wake it (the application's own transaction) is held back
// just the same. A transaction seen holding it for holdReportAfter (the
// relay's clock, across checks) is logged and in Status; shorter ones are
// the ordinary transactions of a busy store.
const (
	holdCheckEvery  = time.Second
	holdReportAfter = time.Second
)

// holdWatch is what the leader saw holding its reads back.
type holdWatch struct {
	checked time.Time  // when it last asked
	seen    store.Hold // the transaction holding them, while since is set
	since   time.Time  // when it first saw it; zero: nothing seen
}

// noteRead runs after each read, found being what it returned. A read
// that found events ends any hold (it would have found none while held);
// one that found nothing may ask the store what holds it.
func (l *leader) noteRead(ctx context.Context, found int) {
	hr, ok := l.r.st.(store.Holder)
	if !ok {
		return
	}
	now := time.Now()
	if found > 0 {
		l.r.lag.held.Store(0) // what it read is in flight: the lag counts from it
		if !l.hold.since.IsZero() {
			l.released(ctx)
		}
		return
	}
	if now.Sub(l.hold.checked) < holdCheckEvery {
		return
	}
	l.hold.checked = now
	h, held, err := hr.HeldBack(ctx, l.next)
	switch {
	case err != nil:
		return // the next read says so, if the store is out of reach
	case !held:
		l.r.lag.held.Store(0)
		l.released(ctx)
		return
	}
	l.r.lag.held.Store(h.Since.UnixNano())
	if l.hold.since.IsZero() || !sameHold(l.hold.seen, h) {
		l.released(ctx)
		l.hold.seen, l.hold.since = h, now
		return
	}
	if now.Sub(l.hold.since) < holdReportAfter {
		return
	}
	if _, isNew := l.r.reportHold(&h); isNew {
		l.r.log.LogAttrs(ctx, slog.LevelWarn, "relay held back by a transaction still running: events committed after it began wait until it ends",
			slog.Duration("behind", now.Sub(h.Since)), slog.String("by", h.String()), slog.String("statement", h.Query))
	}
}

// released forgets the transaction seen holding the reads back, saying
// so when it was reported.
func (l *leader) released(ctx context.Context) {
	if was, _ := l.r.reportHold(nil); was != nil {
		l.r.log.LogAttrs(ctx, slog.LevelInfo, "relay no longer held back", slog.String("was", was.String()))
	}
	l.hold.seen, l.hold.since = store.Hold{}, time.Time{}
}

// reportHold sets the hold Status reports (nil: none) and returns the one
// it reported before; it reports true for a hold newly reported.
func (r *Relay) reportHold(h *store.Hold) (was *store.Hold, isNew bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	was, r.hold = r.hold, h
	return was, h != nil && was == nil
}

// sameHold reports whether a and b are the same transaction.
func sameHold(a, b store.Hold) bool { return a.Transaction == b.Transaction }
