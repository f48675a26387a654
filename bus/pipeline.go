package bus

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/internal/jspub"
	"github.com/switchyard-go/switchyard/store"
	"go.opentelemetry.io/otel/trace"
)

// maxFlights is how many batches may await their acks at once.
const maxFlights = 4

// pipeline is the publishing side of a leader: the batches sent and not
// yet settled, oldest first, the fast batch (run) they go out in while one
// is open, and how far JetStream has acknowledged the log.
type pipeline struct {
	r      *Relay
	stream *Stream
	sv     *saver
	acked  store.Position // everything up to here is acknowledged (or quarantined)

	flights []*flight
	run     *jspub.Run // nil: no run open
	// window is how many batches may await their acks: maxFlights, fewer
	// when that many would be over maxPending messages, but always two
	// (one is sent while the one before is settled).
	window int
}

func newPipeline(r *Relay, stream *Stream, acked store.Position) *pipeline {
	return &pipeline{r: r, stream: stream, sv: newSaver(r, acked), acked: acked,
		window: max(2, min(maxFlights, maxPending/r.cfg.BatchSize))}
}

// flight is a batch sent to JetStream, its acks outstanding.
type flight struct {
	*prepared
	acks   *jspub.Batch // nil: nothing was sent
	issued int          // events handled before issuing stopped
	err    error        // why issuing stopped early
	span   trace.Span   // publishing it
}

// prepared is a batch read from the log with its messages built.
type prepared struct {
	batch []store.Event
	msgs  []*nats.Msg
	sizes []int
	limit int // the largest message the stream takes
}

// prepare builds the messages of batch.
func (r *Relay) prepare(stream *Stream, batch []store.Event) *prepared {
	p := &prepared{batch: batch, msgs: make([]*nats.Msg, len(batch)), sizes: make([]int, len(batch))}
	p.limit, _ = r.conn.msgLimit(stream)
	contextName, shard := r.st.Context(), r.st.Shard()
	for i := range batch {
		p.msgs[i], p.sizes[i] = message(&batch[i], contextName, shard, stream.Partitions)
		// The message has them now: a backlog in flight is thousands of
		// maps for the garbage collector to scan.
		batch[i].Data, batch[i].Metadata = nil, nil
	}
	return p
}

// send publishes p without waiting for its acks — in the open run, or in
// a new one when the stream takes fast batches and p has two events or
// more — and returns how many batches may stay in flight: none once p is
// the last of a backlog (final), could not be sent whole, or is a lone
// event sent on its own (settled before anything follows it, nothing can
// overtake it; and alone it goes faster than in a fast batch).
func (pl *pipeline) send(p *prepared, final bool) (keep int) {
	failed, lone := false, false
	if len(p.batch) > 0 {
		batched := pl.stream.batched.Load()
		if pl.run == nil && batched && len(p.batch) > 1 {
			pl.run = pl.r.conn.publisher().Run(pl.stream.Name, pl.r.cfg.BatchSize)
		}
		lone = pl.run == nil && batched
		f := pl.issue(p, final)
		pl.flights = append(pl.flights, f)
		pl.r.lag.oldest.CompareAndSwap(0, p.batch[0].RecordedAt.UnixNano())
		failed = f.err != nil
	}
	if final || failed || lone {
		pl.endRun() // final: its last event ended it already, unless not sent
		return 0
	}
	return pl.window - 1
}

// issue sends p, in the open run if there is one; final makes p the run's
// last batch. The connection does not reconnect until the flight is
// settled: a batch's messages all travel on one connection.
func (pl *pipeline) issue(p *prepared, final bool) *flight {
	f := &flight{prepared: p, span: pl.r.tel.startBatch(p)}
	conn := pl.r.conn
	if !conn.begin() {
		f.err = &Error{Op: "publish", URL: conn.url, Err: ErrUnavailable}
		return f
	}
	if pl.run != nil {
		f.acks = pl.run.Batch(len(p.msgs))
	} else {
		f.acks = conn.publisher().Batch(len(p.msgs), pl.stream.Name)
	}
	defer f.acks.Seal()
	last := -1 // the last message sent: the run ends on it when final
	if pl.run != nil && final {
		for i := len(p.msgs) - 1; i >= 0 && last < 0; i-- {
			if p.sizes[i] <= p.limit {
				last = i
			}
		}
	}
	for i, m := range p.msgs {
		if p.sizes[i] > p.limit {
			f.issued = i + 1 // quarantined by settle; not sent
			continue
		}
		if err := f.acks.Publish(i, m, i == last); err != nil {
			f.err = err
			break
		}
		// Sent: the connection has its bytes, and nothing reads the
		// message again.
		release(m)
		p.msgs[i] = nil
		f.issued = i + 1
	}
	return f
}

// endRun ends the open run after what was sent: its last batch's acks
// come with the end.
func (pl *pipeline) endRun() {
	if pl.run != nil {
		pl.run.Commit()
		pl.run = nil
	}
}

// settle settles the batches in flight, oldest first, until keep are
// left, moving acked on and saving it. After a failure the run ends and
// the rest are discarded: everything from the first event not
// acknowledged goes out again. It returns the failure; one that is
// jspub.ErrBatchEnded means JetStream refused an event (now quarantined)
// and dropped the ones sent behind it.
func (pl *pipeline) settle(ctx context.Context, keep int) error {
	for len(pl.flights) > keep {
		f := pl.flights[0]
		pl.flights = pl.flights[1:]
		n, quarantined, err := pl.settleFlight(ctx, f)
		if n > 0 {
			pl.acked = f.batch[n-1].Position
			pl.sv.save(pl.acked, quarantined)
		}
		pl.lagFrom(f, n)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, jspub.ErrBatchEnded) {
				pl.r.fail(ctx, "publish failed; publishing again from the first event not acknowledged", err)
			}
			pl.endRun()
			for _, f := range pl.flights {
				pl.discard(ctx, f)
			}
			pl.flights = nil
			return err
		}
	}
	return nil
}

// lagFrom notes the oldest event not acknowledged once n events of f,
// the oldest flight, are: f's next, or the next flight's first, or none.
func (pl *pipeline) lagFrom(f *flight, n int) {
	var t int64
	switch {
	case n < len(f.batch):
		t = f.batch[n].RecordedAt.UnixNano()
	case len(pl.flights) > 0:
		t = pl.flights[0].batch[0].RecordedAt.UnixNano()
	}
	pl.r.lag.oldest.Store(t)
}

// stop ends the open run and settles everything in flight.
func (pl *pipeline) stop(ctx context.Context) error {
	pl.endRun()
	return pl.settle(ctx, 0)
}

// close saves what is left to save.
func (pl *pipeline) close() { pl.sv.close() }

// unsavedFor is how long acknowledged progress has waited to be saved.
func (pl *pipeline) unsavedFor() time.Duration { return pl.sv.unsavedFor() }

// wait waits for f's acks: each message's outcome, nil when none was sent.
func (pl *pipeline) wait(ctx context.Context, f *flight) []error {
	if f.acks == nil {
		return nil
	}
	return f.acks.Wait(ctx, pl.r.conn.cfg.AckTimeout)
}

// discard waits for f's acks and ignores them: f goes out again.
func (pl *pipeline) discard(ctx context.Context, f *flight) {
	defer pl.r.conn.end()
	pl.wait(ctx, f)
	endBatch(f.span, 0, 0, errDiscarded)
}

// errDiscarded ends the span of a batch discarded after a failure before
// it: its events go out again.
var errDiscarded = errors.New("discarded after an earlier batch failed; published again")

// settleFlight waits for f's acks. n is how many events, from the start,
// are done (acknowledged, or quarantined); the caller goes on after them,
// so a failure means publishing again from the first event not
// acknowledged, in order. Messages after a failed one may have been
// stored too: JetStream drops their re-publish as duplicates.
func (pl *pipeline) settleFlight(ctx context.Context, f *flight) (n int, quarantined []store.Quarantined, err error) {
	defer pl.r.conn.end()
	outcome := pl.wait(ctx, f)
	done := f.issued
	var ackErr error
	var bad []tooLarge
	for i := 0; i < f.issued; i++ {
		if f.sizes[i] > f.limit {
			bad = append(bad, tooLarge{i, "message of " + strconv.Itoa(f.sizes[i]) + " bytes is over the limit of " + strconv.Itoa(f.limit) + " bytes"})
			continue
		}
		if err := outcome[i]; err != nil {
			if jspub.IsTooLarge(err) {
				bad = append(bad, tooLarge{i, err.Error()})
				continue
			}
			done, ackErr = i, err
			break
		}
	}
	if f.err != nil && done == f.issued {
		// Issuing stopped at the event after the last one issued.
		ackErr = f.err
	}
	quarantined = pl.quarantine(ctx, f, done, bad)
	if apiErr := (*jetstream.APIError)(nil); errors.As(ackErr, &apiErr) && apiErr.ErrorCode == jspub.ErrCodeBatchDisabled {
		// The stream was changed to refuse fast batches: publish one by one.
		pl.stream.batched.Store(false)
	}
	if ackErr != nil {
		err = &Error{Op: "publish", URL: pl.r.conn.url, Err: ackErr}
	}
	endBatch(f.span, done, len(quarantined), err)
	return done, quarantined, err
}

// tooLarge is an event of a flight JetStream cannot take, and why.
type tooLarge struct {
	i      int
	reason string
}

// quarantine sets aside the events of f JetStream cannot take, all among
// the first done, and counts the others of those as published.
func (pl *pipeline) quarantine(ctx context.Context, f *flight, done int, bad []tooLarge) []store.Quarantined {
	var out []store.Quarantined
	start := 0
	now := time.Now().UTC()
	for _, b := range bad {
		i, ev := b.i, f.batch[b.i]
		out = append(out, store.Quarantined{EventID: ev.ID, Type: ev.Type, Stream: ev.Stream, Version: ev.Version,
			Position: ev.Position, Size: f.sizes[i], Reason: b.reason, At: now})
		pl.r.log.LogAttrs(ctx, slog.LevelError, "event quarantined: JetStream cannot take it; the events behind it go on",
			slog.String("event_id", ev.ID.String()), slog.String("event_type", ev.Type), slog.String("stream", ev.Stream),
			slog.Int64("stream_version", ev.Version), slog.String("position", ev.Position.String()),
			slog.Int("size", f.sizes[i]), slog.String("reason", b.reason))
		pl.r.acked(f.batch[start:i])
		start = i + 1
	}
	pl.r.acked(f.batch[start:done])
	pl.r.quarantined.Add(uint64(len(out)))
	if len(out) > 0 {
		pl.r.tel.quarantined.Add(ctx, int64(len(out)), pl.r.tel.add...)
	}
	return out
}
