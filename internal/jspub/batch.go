package jspub

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Batch is up to n messages published without waiting, answered by index.
// Publish them, Seal the batch, then Wait for the answers.
type Batch struct {
	p      *Publisher
	id     uint64
	prefix string // reply subjects: prefix + index
	stream []byte // what a PubAck of the stream carries

	run *Run // nil: one publish, and one ack, per message

	mu      sync.Mutex
	errs    []error // per index, once answered (nil: stored)
	got     []bool
	pending int   // published, not answered
	sealed  bool  // nothing more will be published
	failed  error // set by fail: what the unanswered messages met
	closed  bool
	done    chan struct{} // closed when sealed and nothing is pending
}

// Batch starts a batch of up to n messages to the JetStream stream named
// stream, each answered by its own PubAck.
func (p *Publisher) Batch(n int, stream string) *Batch {
	return p.add(n, streamKeyOf(stream), nil)
}

// Publish sends m as message i of the batch. In a run, last makes it the
// run's last message (the server stores it, then ends the run); outside a
// run last means nothing. Publish sets m.Reply. An error is the
// connection refusing m (it is answered with it), and the batch should
// end here; in a run, the run ends in m's place.
func (b *Batch) Publish(i int, m *nats.Msg, last bool) error {
	b.mu.Lock()
	b.pending++
	b.mu.Unlock()
	seq := 0
	if b.run != nil {
		var reply string
		var ok bool
		if reply, seq, ok = b.run.next(b, i, m.Subject, last); !ok {
			b.answer(i, ErrBatchEnded)
			return nil
		}
		m.Reply = reply
	} else {
		m.Reply = b.prefix + strconv.Itoa(i)
	}
	if err := b.p.nc.PublishMsg(m); err != nil {
		b.answer(i, err) // not sent: nothing else will answer it
		if b.run != nil {
			// The run ends in its place, after what was sent before it.
			b.run.sendEnd(seq)
		}
		return err
	}
	return nil
}

// Seal says that nothing more of the batch will be published.
func (b *Batch) Seal() {
	b.mu.Lock()
	b.sealed = true
	b.closeIfDone()
	b.mu.Unlock()
}

// answer records message i's outcome.
func (b *Batch) answer(i int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || i < 0 || i >= len(b.got) || b.got[i] {
		return // too late, not ours, or answered twice
	}
	b.got[i], b.errs[i] = true, err
	if b.pending > 0 {
		b.pending--
	}
	b.closeIfDone()
}

// fail gives up on the unanswered messages: err is what they met.
func (b *Batch) fail(err error) {
	b.mu.Lock()
	b.failed, b.pending = err, 0
	b.closeIfDone()
	b.mu.Unlock()
}

// closeIfDone closes done once the batch is sealed and nothing is
// pending; b.mu is held.
func (b *Batch) closeIfDone() {
	if b.sealed && b.pending == 0 && !b.closed {
		b.closed = true
		close(b.done)
	}
}

// Wait waits for the batch's answers (Seal it first), at most timeout, and
// returns each message's outcome by index: nil when JetStream stored it,
// ErrNoAck when no answer came (for an index never published, too), the
// error FailAll gave, or ctx's error when ctx ended first. Answers that
// come later are ignored. In a run whose answers stopped coming, the
// run's other batches are answered at once with the same error.
func (b *Batch) Wait(ctx context.Context, timeout time.Duration) []error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	late := ErrNoAck
	answered := false
	select {
	case <-b.done:
		answered = true
	case <-t.C:
	case <-ctx.Done():
		late = ctx.Err()
	}
	if !answered && b.run != nil {
		defer b.run.end(0, late)
	}
	b.p.forget(b)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failed != nil {
		late = b.failed
	}
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	for i, got := range b.got {
		if !got {
			b.errs[i] = late
		}
	}
	return b.errs
}
