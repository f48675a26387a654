package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/internal/instrument"
	"github.com/switchyard-go/switchyard/store"
	"go.opentelemetry.io/otel/trace"
)

// deliverBatch handles ds, consecutive deliveries of one partition in
// stream order (consumer.Group.RunBatch). Plain messages (see plain) are
// handled shard by shard, each shard's in one transaction of the group's
// store for it (see commit): a partition holds the streams of every shard,
// and streams never span two, so each stream keeps its order. Anything
// else (a hand-over, a marker, a refused or parked message, a shard the
// context lacks) is handled alone, in its place, as deliver does. It stops
// at the first group of messages it leaves unsettled; the consumer hands
// the rest again once the first unsettled one is settled.
func (gr *groupRun) deliverBatch(ctx context.Context, ds []*consumer.Delivery) {
	if gr.noBatch.Load() {
		gr.alone(ctx, ds)
		return
	}
	for len(ds) > 0 {
		n := 0
		for n < len(ds) && gr.plain(ds[n]) {
			n++
		}
		if n == 0 {
			if gr.deliver(ctx, ds[0]); !ds[0].Settled() {
				return
			}
			ds = ds[1:]
			continue
		}
		if gr.noBatch.Load() {
			gr.alone(ctx, ds)
			return
		}
		for _, run := range byShard(ds[:n]) {
			st, _ := gr.r.cfg.Stores.Store(gr.g.Context, run[0].Address.Shard) // plain: it has one
			if gr.commit(ctx, st, run); !run[len(run)-1].Settled() {
				return
			}
		}
		ds = ds[n:]
	}
}

// plain reports whether d can share a transaction: not a hand-over, a
// marker, a refused message or one of a parked stream, and of a shard the
// group's context has.
func (gr *groupRun) plain(d *consumer.Delivery) bool {
	if d.Handover || d.Err != nil {
		return false
	}
	if _, marker := deadletter.Marker(d.Header); marker {
		return false
	}
	if _, parked := gr.parking.behind(streamOf{d.Address.Shard, d.Event.Stream}); parked {
		return false
	}
	_, err := gr.r.cfg.Stores.Store(gr.g.Context, d.Address.Shard)
	return err == nil // else Shard refuses it, alone
}

// byShard groups ds by shard, in the order the shards first appear, each
// group in stream order.
func byShard(ds []*consumer.Delivery) [][]*consumer.Delivery {
	var out [][]*consumer.Delivery
	at := map[string]int{}
	for _, d := range ds {
		i, ok := at[d.Address.Shard]
		if !ok {
			i = len(out)
			at[d.Address.Shard] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], d)
	}
	return out
}

// attempted is one attempt at a message.
type attempted struct {
	d     *consumer.Delivery
	m     Message
	ctx   context.Context // with its consumer span
	span  trace.Span
	start time.Time
	dup   bool
	err   error
	after *afterCommit // what its handler asked to run once the batch commits
}

// batch is the transaction a run of messages shares: the store it is on,
// and which of the run's events the inbox recorded now (nil when the
// store keeps no inbox). Shard joins it instead of opening a transaction
// of its own, and Inbox reads it instead of recording each event.
type batch struct {
	st    store.Store
	first map[uuid.UUID]bool
}

type batchKey struct{}

// batchOf returns the batch of ctx when it is on st.
func batchOf(ctx context.Context, st store.Store) (*batch, bool) {
	b, ok := ctx.Value(batchKey{}).(*batch)
	return b, ok && b.st == st
}

// errRolledBack ends a batch's transaction when a message of it failed.
var errRolledBack = errors.New("handlers: a message of the batch failed")

// errNotBatchable is Shard meeting a batch on another store than the one
// it opens for the message: RouterConfig.Stores is not its registry.
var errNotBatchable = errors.New("handlers: RouterConfig.Stores is not the registry the chain's Shard uses: a batch's transaction is on another store")

// commit handles run in one transaction of st: the inbox records the
// whole run in one statement, then each message is tried in its consumer
// span, the chain's Shard joining the transaction. When all went through,
// the transaction commits and they are settled (acknowledged). When one
// fails, the transaction is rolled back, the ones before it are handled
// again in a transaction of their own (commit, again), and then the one
// that failed is settled by the failure policy, alone: tried again later,
// by itself, or dead-lettered; the ones after it stay unsettled. When the
// transaction itself fails (its commit, say, refused for what one handler
// did), no message is blamed for it: the store out of reach is waited for
// on the first message; anything else sends each message through a
// transaction of its own, where only its own error counts. What a
// handler did outside the store may so happen twice for the messages
// before a failure, as after any redelivery.
func (gr *groupRun) commit(ctx context.Context, st store.Store, run []*consumer.Delivery) {
	tried, failed, err := gr.try(ctx, st, run)
	switch {
	case errors.Is(err, errNotBatchable):
		gr.rolledBack(tried)
		gr.unbatch(ctx, err)
		gr.alone(ctx, run)
	case err != nil && (len(run) == 1 || IsUnavailable(err) || ctx.Err() != nil):
		if len(tried) == 0 {
			tried = []*attempted{gr.begin(ctx, gr.message(run[0]))}
			tried[0].d = run[0]
		}
		gr.finish(tried[0], gr.settle(tried[0].ctx, run[0], tried[0].m, false, err))
		gr.rolledBack(tried[1:])
	case err != nil:
		gr.rolledBack(tried)
		for k := range run {
			if gr.commit(ctx, st, run[k:k+1]); !run[k].Settled() {
				return
			}
		}
	case failed < 0:
		for _, a := range tried {
			a.after.run()
			gr.finish(a, gr.settle(a.ctx, a.d, a.m, a.dup, nil))
		}
	default:
		gr.retried(ctx, st, run, tried, failed)
	}
}

// retried settles the message of run that failed, tried[failed], once the
// ones before it are handled again: by the failure policy, with its own
// error — unless they did not all go through, or its stream is parked now
// (one before it was dead-lettered): then it waits, to be handed again.
func (gr *groupRun) retried(ctx context.Context, st store.Store, run []*consumer.Delivery, tried []*attempted, failed int) {
	gr.rolledBack(tried[:failed])
	if failed > 0 {
		gr.commit(ctx, st, run[:failed])
	}
	a := tried[failed]
	_, parked := gr.parking.behind(streamOf{a.d.Address.Shard, a.d.Event.Stream})
	if failed > 0 && (!run[failed-1].Settled() || parked) {
		fail(a.span, a.err)
		gr.rolledBack([]*attempted{a})
		return
	}
	gr.finish(a, gr.settle(a.ctx, a.d, a.m, false, a.err))
}

// unbatch stops batching for the group, once: the chain's Shard uses
// another registry than RouterConfig.Stores, so a batch's transaction is
// on a store it does not use.
func (gr *groupRun) unbatch(ctx context.Context, why error) {
	if gr.noBatch.CompareAndSwap(false, true) {
		gr.log.WarnContext(ctx, "handlers: group handled one message at a time from now on", "error", why)
	}
}

// alone handles ds one at a time, as deliver does, up to the first it
// leaves unsettled.
func (gr *groupRun) alone(ctx context.Context, ds []*consumer.Delivery) {
	for _, d := range ds {
		if gr.deliver(ctx, d); !d.Settled() {
			return
		}
	}
}

// try runs run in one transaction of st, up to the first message that
// fails (failed, -1 for none), which rolls it back. err is the
// transaction's own failure: nothing committed.
func (gr *groupRun) try(ctx context.Context, st store.Store, run []*consumer.Delivery) (tried []*attempted, failed int, err error) {
	failed = -1
	err = st.Transact(ctx, func(txctx context.Context) error {
		b := &batch{st: st}
		if in, ok := st.(store.Inbox); ok {
			ids := make([]uuid.UUID, len(run))
			for i, d := range run {
				ids[i] = d.Event.ID
			}
			first, err := in.MarkAllHandled(txctx, gr.g.Name, ids)
			if err != nil {
				return err
			}
			b.first = make(map[uuid.UUID]bool, len(ids))
			for i, id := range ids {
				b.first[id] = b.first[id] || first[i]
			}
		}
		txctx = context.WithValue(txctx, batchKey{}, b)
		for i, d := range run {
			a := gr.begin(txctx, gr.message(d))
			a.d = d
			var actx context.Context
			actx, a.after = withAfterCommit(a.ctx)
			a.dup, a.err = gr.run(actx, a.m)
			tried = append(tried, a)
			if errors.Is(a.err, errNotBatchable) {
				return a.err
			}
			if a.err != nil {
				failed = i
				return errRolledBack
			}
		}
		return nil
	})
	if failed >= 0 {
		err = nil
	}
	return tried, failed, err
}

// rolledBack ends the spans of attempts whose transaction was rolled back
// though they went through: they are handled again.
func (gr *groupRun) rolledBack(as []*attempted) {
	for _, a := range as {
		if a.span.IsRecording() {
			a.span.AddEvent("rolled back with its batch")
		}
		gr.finish(a, outcomeRetry)
	}
}

// begin starts an attempt at m in its consumer span, a child of the trace
// context m's event carries.
func (gr *groupRun) begin(ctx context.Context, m Message) *attempted {
	a := &attempted{m: m, start: time.Now()}
	a.ctx, a.span = startProcess(ctx, gr.r.tel.tracer, gr.spanOpts, m)
	return a
}

// finish ends a's span with its outcome and records its duration.
func (gr *groupRun) finish(a *attempted, outcome string) {
	tel := gr.r.tel
	if a.span.IsRecording() {
		a.span.SetAttributes(instrument.Outcome.String(outcome))
	}
	a.span.End()
	tel.duration.Record(a.ctx, time.Since(a.start).Seconds(), tel.set(a.m.Group, a.m.Event.Type, instrument.Outcome, outcome).record...)
}
