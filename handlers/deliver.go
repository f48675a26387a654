package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/bus/deadletter"
)

// groupRun is one group's handling in this process: its chain, the
// failure policy, and the streams whose later messages it parks. Its
// consumer calls deliver for one delivery of a partition at a time.
type groupRun struct {
	r        *Router
	g        *Group
	k        *consumer.Group
	q        *deadletter.Queue
	h        Handler
	log      *slog.Logger
	attempts int // tries before a message is dead-lettered
	parking  *parking
	blocked  *blocks
}

// verdict is what the failure policy makes of an attempt.
type verdict int

const (
	handled  verdict = iota // acknowledge it
	draining                // ctx ended: the delivery goes back to JetStream
	waiting                 // infrastructure out of reach: try again, not counted
	retrying                // a failure that counts: try again after a backoff
	givingUp                // dead-letter it
)

// judge applies the failure policy (see the package doc) to err, the
// outcome of attempt attempt.
func (gr *groupRun) judge(ctx context.Context, err error, attempt int) verdict {
	switch {
	case err == nil:
		return handled
	case ctx.Err() != nil:
		return draining
	case IsPermanent(err):
		return givingUp
	case IsUnavailable(err):
		return waiting
	case attempt >= gr.attempts:
		return givingUp
	}
	return retrying
}

// deliver handles d: a marker is resolved, a refused message
// dead-lettered, a message of a stream with a dead letter parked behind
// it, and any other tried and settled by the failure policy.
func (gr *groupRun) deliver(ctx context.Context, d *consumer.Delivery) {
	if d.Handover && !gr.reload(ctx, d) {
		return
	}
	if req, ok := deadletter.Marker(d.Header); ok {
		gr.resolve(ctx, d, req)
		return
	}
	if d.Err != nil {
		err := &SecurityError{Subject: d.Subject, Reason: "headers disagree with the subject or do not decode", Err: d.Err}
		gr.giveUp(ctx, d, err, deadletter.Record{Group: gr.g.Name, Cause: err, Attempts: d.Attempt})
		return
	}
	if key, ok := gr.parking.behind(streamOf{d.Address.Shard, d.Event.Stream}); ok {
		gr.park(ctx, d, key)
		return
	}
	err := gr.run(ctx, gr.message(d))
	switch gr.judge(ctx, err, d.Attempt) {
	case handled:
		gr.blocked.clear(d.Partition)
		_ = d.Ack()
	case waiting:
		gr.wait(ctx, d, err)
	case retrying:
		gr.retry(ctx, d, err)
	case givingUp:
		rec := deadletter.Record{Group: gr.g.Name, Cause: err, Attempts: d.Attempt}
		if !gr.g.SkipPastDeadLetters { // the later messages of its stream wait behind it
			rec.ParkKey = d.Seq
		}
		gr.giveUp(ctx, d, err, rec)
	}
}

// message is the Message of d for the group's handlers.
func (gr *groupRun) message(d *consumer.Delivery) Message {
	m := Message{
		Event:     d.Event,
		Source:    d.Address.Context,
		Shard:     d.Address.Shard,
		Partition: d.Address.Partition,
		Group:     gr.g.Name,
		Context:   gr.g.Context,
		Attempt:   max(d.Attempt, 1),
		Subject:   d.Subject,
		Seq:       d.Seq,
	}
	if m.Source == "" {
		m.Source = gr.g.source()
	}
	return m
}

// run runs the chain once, turning a panic that escaped it into an error.
func (gr *groupRun) run(ctx context.Context, m Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handlers: panic outside Recover: %v", v)
		}
	}()
	return gr.h(ctx, m)
}

// retry tries d again after a backoff: a failure that counts.
func (gr *groupRun) retry(ctx context.Context, d *consumer.Delivery, err error) {
	delay := gr.r.cfg.Backoff.Delay(d.Attempt)
	gr.log.WarnContext(ctx, "handlers: message failed; trying again", "subject", d.Subject, "seq", d.Seq, "event_id", d.Event.ID,
		"attempt", d.Attempt, "max_attempts", gr.attempts, "retry_in", delay, "error", err)
	d.Attempt++
	d.RetryAfter(delay)
}

// wait tries d again after a backoff without counting an attempt: what
// failed is the infrastructure (the shard's database, NATS), which
// retrying the message cannot change. Every wait is logged, and the
// partition shows as blocked in the router's status until a message of it
// goes through.
func (gr *groupRun) wait(ctx context.Context, d *consumer.Delivery, err error) {
	waits := gr.blocked.set(d.Partition, err)
	delay := gr.r.cfg.Backoff.Delay(waits)
	gr.log.WarnContext(ctx, "handlers: infrastructure unavailable; partition blocked, trying again", "subject", d.Subject, "seq", d.Seq,
		"partition", d.Partition, "waits", waits, "retry_in", delay, "error", err)
	d.RetryAfter(delay)
}

// giveUp dead-letters d with rec, and with rec.ParkKey parks the later
// messages of its stream behind it. When the dead letter cannot be stored,
// d waits and is tried again.
func (gr *groupRun) giveUp(ctx context.Context, d *consumer.Delivery, cause error, rec deadletter.Record) {
	if err := gr.q.Put(ctx, d, rec); err != nil {
		gr.wait(ctx, d, fmt.Errorf("cannot dead-letter: %w (after: %v)", err, cause))
		return
	}
	if rec.ParkKey != 0 {
		gr.parking.block(streamOf{d.Address.Shard, d.Event.Stream}, rec.ParkKey)
	}
	gr.blocked.clear(d.Partition)
	gr.log.ErrorContext(ctx, "handlers: message dead-lettered", "subject", d.Subject, "seq", d.Seq, "event_id", d.Event.ID,
		"stream", d.Event.Stream, "attempts", rec.Attempts, "parks_followers", rec.ParkKey != 0, "error", cause)
	_ = d.Term(cause.Error())
}

// park parks d behind the dead letter of its stream, whose park key is
// key.
func (gr *groupRun) park(ctx context.Context, d *consumer.Delivery, key uint64) {
	if d.Seq == key { // the dead letter itself, delivered again after a crash
		_ = d.Term("dead-lettered already")
		return
	}
	if err := gr.q.Park(ctx, d, gr.g.Name, key); err != nil {
		gr.wait(ctx, d, fmt.Errorf("cannot park: %w", err))
		return
	}
	gr.blocked.clear(d.Partition)
	gr.log.InfoContext(ctx, "handlers: message parked behind its stream's dead letter", "subject", d.Subject, "seq", d.Seq,
		"stream", d.Event.Stream, "stream_version", d.Event.Version, "dead_letter_seq", key)
	_ = d.Term("parked behind the dead letter of stream " + strconv.Quote(d.Event.Stream))
}

// reload learns, on a hand-over, which streams of d's partition have a
// dead letter: the replica before may have dead-lettered some. It reports
// false when d must wait.
func (gr *groupRun) reload(ctx context.Context, d *consumer.Delivery) bool {
	blocking, err := gr.q.Blocking(ctx, gr.g.Name)
	if err != nil {
		gr.wait(ctx, d, fmt.Errorf("cannot list the dead letters: %w", err))
		return false
	}
	gr.parking.reload(d.Partition, blocking)
	d.Handover = false
	return true
}
