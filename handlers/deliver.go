package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/internal/instrument"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
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
	spanOpts []trace.SpanStartOption // of its consumer spans
	noBatch  atomic.Bool             // batches turned out not to fit the chain (see unbatch)
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

// deliver handles d: a marker is resolved; a message is tried in its
// consumer span (see traced): refused, it is dead-lettered; of a stream
// with a dead letter, parked behind it; otherwise tried and settled by the
// failure policy.
func (gr *groupRun) deliver(ctx context.Context, d *consumer.Delivery) {
	if d.Handover && !gr.reload(ctx, d) {
		return
	}
	if req, ok := deadletter.Marker(d.Header); ok {
		gr.resolve(ctx, d, req)
		return
	}
	m := gr.message(d)
	gr.traced(ctx, m, func(ctx context.Context) string { return gr.handle(ctx, d, m) })
}

// traced runs step, one attempt at m, in m's consumer span, and records
// the outcome step returns on the span and in the handling duration.
func (gr *groupRun) traced(ctx context.Context, m Message, step func(ctx context.Context) string) {
	a := gr.begin(ctx, m)
	gr.finish(a, step(a.ctx))
}

// handle tries d, or dead-letters or parks it without trying, and returns
// the outcome.
func (gr *groupRun) handle(ctx context.Context, d *consumer.Delivery, m Message) string {
	if d.Err != nil {
		err := &SecurityError{Subject: d.Subject, Reason: "headers disagree with the subject or do not decode", Err: d.Err}
		return gr.giveUp(ctx, d, err, deadletter.Record{Group: gr.g.Name, Cause: err, Attempts: d.Attempt})
	}
	if key, ok := gr.parking.behind(streamOf{d.Address.Shard, d.Event.Stream}); ok {
		return gr.park(ctx, d, key)
	}
	dup, err := gr.run(ctx, m)
	return gr.settle(ctx, d, m, dup, err)
}

// settle settles d after an attempt at it, m, ended with err (dup: the
// inbox skipped it), as the failure policy says, and returns the outcome.
func (gr *groupRun) settle(ctx context.Context, d *consumer.Delivery, m Message, dup bool, err error) string {
	switch gr.judge(ctx, err, d.Attempt) {
	case handled:
		gr.blocked.clear(d.Partition)
		_ = d.Ack()
		return gr.handled(ctx, m, dup)
	case waiting:
		return gr.wait(ctx, d, err)
	case retrying:
		return gr.retry(ctx, d, err)
	case givingUp:
		rec := deadletter.Record{Group: gr.g.Name, Cause: err, Attempts: d.Attempt}
		if !gr.g.SkipPastDeadLetters { // the later messages of its stream wait behind it
			rec.ParkKey = d.Seq
		}
		return gr.giveUp(ctx, d, err, rec)
	}
	fail(trace.SpanFromContext(ctx), err)
	return outcomeDraining
}

// handled returns the outcome of an attempt at m that went through: dup
// when the inbox skipped it.
func (gr *groupRun) handled(ctx context.Context, m Message, dup bool) string {
	if !dup {
		return outcomeHandled
	}
	gr.r.tel.duplicates.Add(ctx, 1, gr.r.tel.set(m.Group, "", "", "").add...)
	return outcomeDuplicate
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

// run runs the chain once, turning a panic that escaped it into an error;
// dup reports that the Inbox skipped the message as handled already.
func (gr *groupRun) run(ctx context.Context, m Message) (dup bool, err error) {
	a := &attempt{group: m.Group, event: m.Event.ID}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handlers: panic outside Recover: %v", v)
		}
		dup = a.duplicate && err == nil
	}()
	return false, gr.h(context.WithValue(ctx, attemptKey{}, a), m)
}

// retry tries d again after a backoff: a failure that counts.
func (gr *groupRun) retry(ctx context.Context, d *consumer.Delivery, err error) string {
	delay := gr.r.cfg.Backoff.Delay(d.Attempt)
	gr.log.WarnContext(ctx, "handlers: message failed; trying again", "subject", d.Subject, "seq", d.Seq, "event_id", d.Event.ID,
		"attempt", d.Attempt, "max_attempts", gr.attempts, "retry_in", delay, "error", err)
	gr.note(ctx, d, err, outcomeRetry, attribute.Int("switchyard.attempt", d.Attempt), attribute.String("switchyard.retry_in", delay.String()))
	gr.r.tel.retries.Add(ctx, 1, gr.r.tel.set(gr.g.Name, d.Event.Type, instrument.Reason, "failure").add...)
	d.Attempt++
	d.RetryAfter(delay)
	return outcomeRetry
}

// wait tries d again after a backoff without counting an attempt: what
// failed is the infrastructure (the shard's database, NATS), which
// retrying the message cannot change. Every wait is logged, and the
// partition shows as blocked in the router's status until a message of it
// goes through.
func (gr *groupRun) wait(ctx context.Context, d *consumer.Delivery, err error) string {
	waits := gr.blocked.set(d.Partition, err)
	delay := gr.r.cfg.Backoff.Delay(waits)
	gr.log.WarnContext(ctx, "handlers: infrastructure unavailable; partition blocked, trying again", "subject", d.Subject, "seq", d.Seq,
		"partition", d.Partition, "waits", waits, "retry_in", delay, "error", err)
	gr.note(ctx, d, err, outcomeWait, attribute.Int("switchyard.waits", waits), attribute.String("switchyard.retry_in", delay.String()))
	gr.r.tel.retries.Add(ctx, 1, gr.r.tel.set(gr.g.Name, d.Event.Type, instrument.Reason, "unavailable").add...)
	d.RetryAfter(delay)
	return outcomeWait
}

// note records on the attempt's span that it failed with err and what
// comes of it.
func (gr *groupRun) note(ctx context.Context, d *consumer.Delivery, err error, what string, attrs ...attribute.KeyValue) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	fail(span, err)
	span.AddEvent(what, trace.WithAttributes(append(attrs, attribute.Int64("switchyard.seq", int64(d.Seq)))...))
}

// giveUp dead-letters d with rec, and with rec.ParkKey parks the later
// messages of its stream behind it. When the dead letter cannot be stored,
// d waits and is tried again.
func (gr *groupRun) giveUp(ctx context.Context, d *consumer.Delivery, cause error, rec deadletter.Record) string {
	if err := gr.q.Put(ctx, d, rec); err != nil {
		return gr.wait(ctx, d, fmt.Errorf("cannot dead-letter: %w (after: %v)", err, cause))
	}
	if rec.ParkKey != 0 {
		gr.parking.block(streamOf{d.Address.Shard, d.Event.Stream}, rec.ParkKey)
	}
	gr.blocked.clear(d.Partition)
	gr.deadLettered(ctx, d, cause, rec)
	_ = d.Term(cause.Error())
	return outcomeDeadLetter
}

// deadLettered logs, counts and notes on the span that d was dead-lettered
// with rec.
func (gr *groupRun) deadLettered(ctx context.Context, d *consumer.Delivery, cause error, rec deadletter.Record) {
	gr.log.ErrorContext(ctx, "handlers: message dead-lettered", "subject", d.Subject, "seq", d.Seq, "event_id", d.Event.ID,
		"stream", d.Event.Stream, "attempts", rec.Attempts, "parks_followers", rec.ParkKey != 0, "replaces", rec.Replaces, "error", cause)
	gr.note(ctx, d, cause, outcomeDeadLetter, attribute.Int("switchyard.attempts", rec.Attempts), attribute.Bool("switchyard.parks_followers", rec.ParkKey != 0))
	gr.r.tel.deadLetters.Add(ctx, 1, gr.r.tel.set(gr.g.Name, d.Event.Type, "", "").add...)
}

// park parks d behind the dead letter of its stream, whose park key is
// key.
func (gr *groupRun) park(ctx context.Context, d *consumer.Delivery, key uint64) string {
	if d.Seq == key { // the dead letter itself, delivered again after a crash
		_ = d.Term("dead-lettered already")
		return outcomeDeadLetter
	}
	if err := gr.q.Park(ctx, d, gr.g.Name, key); err != nil {
		return gr.wait(ctx, d, fmt.Errorf("cannot park: %w", err))
	}
	gr.blocked.clear(d.Partition)
	gr.log.InfoContext(ctx, "handlers: message parked behind its stream's dead letter", "subject", d.Subject, "seq", d.Seq,
		"stream", d.Event.Stream, "stream_version", d.Event.Version, "dead_letter_seq", key)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(outcomeParked, trace.WithAttributes(attribute.Int64("switchyard.dead_letter_seq", int64(key))))
	}
	gr.r.tel.parked.Add(ctx, 1, gr.r.tel.set(gr.g.Name, "", "", "").add...)
	_ = d.Term("parked behind the dead letter of stream " + strconv.Quote(d.Event.Stream))
	return outcomeParked
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
