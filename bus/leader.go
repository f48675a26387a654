package bus

import (
	"context"
	"errors"
	"time"

	"github.com/switchyard-go/switchyard/internal/jspub"
	"github.com/switchyard-go/switchyard/store"
)

// leader is one term of a relay's leadership of its store: it reads the
// log from where JetStream's acks have come (next), hands the batches to
// its pipeline to publish, and waits for commits when it has caught up.
// Only the goroutine running Relay.lead touches it.
type leader struct {
	r      *Relay
	lease  store.Lease
	stream *Stream
	local  <-chan struct{} // commits through this process's store
	wake   <-chan struct{} // wake-ups from other processes

	pipe     *pipeline
	feed     *feed          // reads running ahead, while a backlog drains
	next     store.Position // read from here
	failures failures

	idle    *time.Timer
	woken   bool          // the last wait ended with a commit's wake-up
	recheck time.Duration // the next empty read's wait, while reads a commit woke find nothing
	hold    holdWatch     // what holds its reads back
}

// lead relays while this process holds lease.
func (r *Relay) lead(ctx context.Context, lease store.Lease, stream *Stream, local, wake <-chan struct{}) {
	l := &leader{r: r, lease: lease, stream: stream, local: local, wake: wake}
	acked, ok := l.checkpoint(ctx)
	if !ok {
		return
	}
	l.next = acked
	l.pipe = newPipeline(r, stream, acked)
	l.idle = time.NewTimer(r.cfg.IdlePoll)
	r.conn.pace.leading.Add(1)
	defer r.conn.pace.leading.Add(-1)
	defer l.stop(ctx)
	for l.step(ctx) {
	}
}

// checkpoint reads where the last leader left off, trying until it can or
// leading ends.
func (l *leader) checkpoint(ctx context.Context) (store.Position, bool) {
	for {
		pos, err := l.r.st.Checkpoint(ctx, l.r.cfg.Name)
		if err == nil {
			return pos, true
		}
		l.r.fail(ctx, "cannot read the checkpoint", err)
		if !l.sleep(ctx, l.failures.next(l.r.cfg.Backoff)) {
			return store.Position{}, false
		}
	}
}

// stop ends the term: what is in flight is settled (as far as ctx lets
// it) and the checkpoint saved.
func (l *leader) stop(ctx context.Context) {
	l.settleAll(ctx)
	l.stopFeed()
	l.idle.Stop()
	l.pipe.close()
	l.r.lag.stop()
	l.r.reportHold(nil) // leading ended: nothing to report
}

// step reads and publishes one batch, and waits for commits once caught
// up; it reports whether to go on leading.
func (l *leader) step(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-l.lease.Lost():
		l.r.fail(ctx, "relay lease lost", errors.New("the connection holding the lease broke"))
		return false
	default:
	}
	// Never let published-but-unsaved progress age past half the
	// de-duplication window: a re-publish after a crash must still be
	// recognised as one.
	if l.pipe.unsavedFor() > l.stream.Duplicates/2 {
		l.settleAll(ctx)
		return l.sleep(ctx, l.failures.next(l.r.cfg.Backoff))
	}
	p, err := l.read(ctx)
	if err != nil {
		l.settleAll(ctx)
		if ctx.Err() == nil {
			l.r.fail(ctx, "cannot read the log", err)
		}
		return l.sleep(ctx, l.failures.next(l.r.cfg.Backoff))
	}
	n := len(p.batch)
	l.r.conn.pace.add(time.Now(), n)
	l.noteRead(ctx, n)
	if err := l.publish(ctx, p); err != nil {
		// After a refused event, quarantined, the rest goes out again at
		// once.
		return errors.Is(err, jspub.ErrBatchEnded) || l.sleep(ctx, l.failures.next(l.r.cfg.Backoff))
	}
	if l.failures > 0 && n > 0 {
		l.r.resumed(ctx)
		l.failures.reset()
	}
	if n == l.r.cfg.BatchSize {
		return true // more is waiting
	}
	return l.waitForCommits(ctx, n)
}

// read returns the next batch after l.next with its messages built: from
// the feed while a backlog drains, or read now.
func (l *leader) read(ctx context.Context) (*prepared, error) {
	if l.feed != nil {
		var p *prepared
		var err error
		if got, ok := <-l.feed.out; ok && got.after == l.next {
			p, err = got.p, got.err
		}
		if p == nil || len(p.batch) < l.r.cfg.BatchSize {
			l.stopFeed() // it read up to the end, or failed, or next moved back
		}
		if p != nil || err != nil {
			return p, err
		}
	}
	batch, err := l.r.st.ReadAll(ctx, l.next, l.r.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	if len(batch) == l.r.cfg.BatchSize {
		// More is waiting: read it while this batch goes out.
		l.feed = l.r.startFeed(ctx, l.stream, batch[len(batch)-1].Position)
	}
	return l.r.prepare(l.stream, batch), nil
}

// publish sends p and settles what is in flight as far as the pipeline's
// window needs: all of it when p is the last batch of a backlog. On a
// failure everything from the first event not acknowledged is read
// again.
func (l *leader) publish(ctx context.Context, p *prepared) error {
	final := len(p.batch) < l.r.cfg.BatchSize
	if len(p.batch) > 0 {
		l.next = p.batch[len(p.batch)-1].Position
	}
	keep := l.pipe.send(p, final)
	err := l.pipe.settle(ctx, keep)
	if err != nil {
		l.rewind()
	}
	return err
}

// settleAll ends the open run and settles everything in flight: a new run
// must not begin while batches of an old one are in flight, or JetStream
// could store the new run's events although it refused one of the old
// run's and dropped the rest.
func (l *leader) settleAll(ctx context.Context) {
	if l.pipe.stop(ctx) != nil {
		l.rewind()
	}
}

// rewind makes the next read start after what JetStream acknowledged.
func (l *leader) rewind() {
	l.next = l.pipe.acked
	l.stopFeed() // it reads on from where publishing no longer is
}

func (l *leader) stopFeed() {
	if l.feed != nil {
		l.feed.stop()
		l.feed = nil
	}
}

// waitForCommits waits, once caught up, for a commit here, a wake-up from
// another process or the idle poll; found is how many events the last read
// found. A read that a commit woke and that found nothing is made again
// soon, then less and less often (see the package doc on wake-ups). It
// reports whether to go on leading.
func (l *leader) waitForCommits(ctx context.Context, found int) bool {
	cfg := l.r.cfg
	switch {
	case found > 0:
		l.recheck = 0
	case l.woken:
		l.recheck = recheckAfter
	case l.recheck > 0:
		l.recheck = min(2*l.recheck, cfg.IdlePoll)
	}
	poll := cfg.IdlePoll
	if l.recheck > 0 && l.recheck < poll {
		poll = l.recheck
	}
	l.idle.Reset(poll) // a tick not received is dropped (Go 1.23 timers)
	l.woken = true
	l.r.lag.wait(time.Now(), true)
	defer func() { l.r.lag.wait(time.Now(), false) }()
	select {
	case <-ctx.Done():
		return false
	case <-l.lease.Lost():
	case <-l.local:
	case <-l.wake:
	case <-l.idle.C:
		l.woken = false
	}
	if gather := l.r.conn.pace.gather(time.Now(), found); gather > 0 {
		return l.sleep(ctx, gather)
	}
	return true
}

// sleep waits d, or until ctx is done or the lease is lost; it reports
// whether to go on leading.
func (l *leader) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-l.lease.Lost():
		return false
	case <-t.C:
		return true
	}
}
