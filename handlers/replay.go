package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"go.opentelemetry.io/otel/trace"
)

// resolve carries out what marker d asks of dead letter seq: replay it
// and then the messages parked behind it, release those, or drop them
// all. It runs in the partition's order, so nothing of the stream comes
// between. A failure that should be tried again leaves the marker to come
// back (RetryAfter); what was handled is gone from the queue by then, so
// the next try goes on where this one stopped.
func (gr *groupRun) resolve(ctx context.Context, d *consumer.Delivery, req deadletter.Request) {
	seq, action, key := req.Seq, req.Action, req.ParkKey
	dl, err := gr.q.Get(ctx, seq)
	switch {
	case errors.Is(err, deadletter.ErrNotFound):
		// Handled, discarded, or resolved by an earlier try of this
		// marker: go on with what is parked. Unless the dead letter failed
		// again when replayed and one in its place stands for the stream:
		// then this marker is stale.
		if stale, err := gr.replaced(ctx, key); err != nil || stale {
			gr.ackStale(ctx, d, seq, err)
			return
		}
	case err != nil:
		gr.wait(ctx, d, fmt.Errorf("cannot read dead letter %d: %w", seq, err))
		return
	case action == deadletter.ActionReplay:
		if !gr.again(ctx, d, dl, key) {
			return
		}
	default:
		if err := gr.q.Remove(ctx, seq); err != nil && !errors.Is(err, deadletter.ErrNotFound) {
			gr.wait(ctx, d, err)
			return
		}
	}
	if key != 0 && !gr.followers(ctx, d, key, action) {
		return
	}
	gr.blocked.clear(d.Partition)
	gr.log.InfoContext(ctx, "handlers: dead letter resolved", "action", action, "dead_letter_seq", seq, "stream", d.Event.Stream)
	_ = d.Ack()
}

// replaced reports whether a dead letter of the group parks its stream
// under key: one that took the place of a dead letter that failed again.
func (gr *groupRun) replaced(ctx context.Context, key uint64) (bool, error) {
	if key == 0 {
		return false, nil
	}
	blocking, err := gr.q.Blocking(ctx, gr.g.Name)
	return slices.ContainsFunc(blocking, func(dl deadletter.Letter) bool { return dl.ParkKey == key }), err
}

// ackStale settles marker d, whose dead letter seq was replaced, or waits
// when that could not be told (err).
func (gr *groupRun) ackStale(ctx context.Context, d *consumer.Delivery, seq uint64, err error) {
	if err != nil {
		gr.wait(ctx, d, fmt.Errorf("cannot list the dead letters: %w", err))
		return
	}
	gr.log.InfoContext(ctx, "handlers: marker of a dead letter replaced since; nothing to do", "dead_letter_seq", seq, "stream", d.Event.Stream)
	_ = d.Ack()
}

// followers handles (release, replay) or drops the messages parked under
// key, in order, and then lets the stream's messages through again. It
// reports whether all of them are done with.
func (gr *groupRun) followers(ctx context.Context, d *consumer.Delivery, key uint64, action deadletter.Action) bool {
	if action == deadletter.ActionDrop {
		if err := gr.q.Drop(ctx, gr.g.Name, key); err != nil {
			gr.wait(ctx, d, err)
			return false
		}
		return gr.done(ctx, d, key)
	}
	for {
		page, err := gr.q.Parked(ctx, gr.g.Name, key, 0, 100)
		if err != nil {
			gr.wait(ctx, d, err)
			return false
		}
		if len(page) == 0 {
			return gr.done(ctx, d, key)
		}
		for _, p := range page {
			if !gr.again(ctx, d, p, key) {
				return false
			}
		}
	}
}

// done lets the stream of marker d through again once nothing is parked
// under key: a dead letter left with the key (it replaced one, and a crash
// kept its predecessor too) stands for nothing now and goes.
func (gr *groupRun) done(ctx context.Context, d *consumer.Delivery, key uint64) bool {
	blocking, err := gr.q.Blocking(ctx, gr.g.Name)
	if err != nil {
		gr.wait(ctx, d, fmt.Errorf("cannot list the dead letters: %w", err))
		return false
	}
	for _, dl := range blocking {
		if dl.ParkKey != key {
			continue
		}
		if err := gr.q.Remove(ctx, dl.Seq); err != nil && !errors.Is(err, deadletter.ErrNotFound) {
			gr.wait(ctx, d, err)
			return false
		}
	}
	gr.parking.unblock(streamOf{d.Address.Shard, d.Event.Stream}, key)
	return true
}

// again handles rec — the dead letter, or a message parked behind it —
// once more for marker d, in its own consumer span. Handled, it is removed
// from the queue, and the next message's tries start over; failing for
// good, it is dead-lettered anew in rec's place, with the messages parked
// under key behind it. It reports whether to go on with the next message.
func (gr *groupRun) again(ctx context.Context, d *consumer.Delivery, rec deadletter.Letter, key uint64) (goOn bool) {
	addr, _ := bus.ParseSubject(rec.Subject) // the relay's subject: the letter decoded
	orig := &consumer.Delivery{Event: rec.Event, Address: addr, Subject: rec.Subject, Header: rec.Header, Data: rec.Data,
		Seq: rec.StreamSeq, Attempt: d.Attempt}
	m := gr.message(orig)
	gr.traced(ctx, m, func(ctx context.Context) string {
		var outcome string
		goOn, outcome = gr.replay(ctx, d, orig, m, rec.Seq, key)
		return outcome
	})
	return goOn
}

// replay tries orig, dead letter or parked record seq, once for marker d,
// and settles it by the failure policy.
func (gr *groupRun) replay(ctx context.Context, d, orig *consumer.Delivery, m Message, seq, key uint64) (bool, string) {
	dup, err := gr.run(ctx, m)
	switch gr.judge(ctx, err, d.Attempt) {
	case handled:
		if derr := gr.q.Remove(ctx, seq); derr != nil && !errors.Is(derr, deadletter.ErrNotFound) {
			return false, gr.wait(ctx, d, derr) // its effects are in: the inbox skips them next time
		}
		d.Attempt = 1
		return true, gr.handled(ctx, m, dup)
	case waiting:
		return false, gr.wait(ctx, d, err)
	case retrying:
		return false, gr.retry(ctx, d, err)
	case givingUp:
		return false, gr.redeadLetter(ctx, d, orig, err, key, seq)
	}
	fail(trace.SpanFromContext(ctx), err)
	return false, outcomeDraining
}

// redeadLetter dead-letters orig, which failed again while marker d
// resolved its dead letter, in place of record seq (the old dead letter,
// or orig parked): the messages parked under key stay behind it, and the
// marker is done.
func (gr *groupRun) redeadLetter(ctx context.Context, d, orig *consumer.Delivery, cause error, key, seq uint64) string {
	rec := deadletter.Record{Group: gr.g.Name, Cause: cause, Attempts: d.Attempt, ParkKey: key, Replaces: seq}
	if err := gr.q.Put(ctx, orig, rec); err != nil {
		return gr.wait(ctx, d, fmt.Errorf("cannot dead-letter: %w (after: %v)", err, cause))
	}
	if err := gr.q.Remove(ctx, seq); err != nil && !errors.Is(err, deadletter.ErrNotFound) {
		return gr.wait(ctx, d, err)
	}
	if key != 0 {
		gr.parking.block(streamOf{orig.Address.Shard, orig.Event.Stream}, key)
	}
	gr.deadLettered(ctx, orig, cause, rec)
	_ = d.Ack()
	return outcomeDeadLetter
}
