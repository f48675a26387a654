package consumer

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
)

// partition is one partition's deliveries in this process.
type partition struct {
	g     *Group
	jc    jetstream.Consumer
	index int
	name  string
	wake  chan struct{}

	mu    sync.Mutex
	held  []*held // received, not yet handled, in stream order
	hand  []*held // being handled: a batch, in stream order
	gen   uint64  // counts releases: a batch taken before one is not given back after it
	last  uint64  // consumer sequence of the last delivery received
	gaps  uint64  // deliveries that went elsewhere since we last looked
	sure  bool    // every unacknowledged delivery is held here
	fresh bool    // sure since the last gap: the next delivery is a hand-over
	pinID string  // the pin our deliveries came with

	// Only Run's goroutine touches these.
	cc      jetstream.ConsumeContext // pulling, when not nil
	resting time.Time                // given up until then
}

// pull starts pulling the partition's deliveries, if it is not already.
func (pt *partition) pull(ctx context.Context) error {
	if pt.cc != nil {
		return nil
	}
	g := pt.g
	cc, err := pt.jc.Consume(pt.receive,
		jetstream.PullPriorityGroup(priorityGroup),
		// Pull requests expire well within the pin's TTL, so a live
		// client keeps its pin while idle.
		jetstream.PullExpiry(max(g.cfg.AckWait/3, time.Second)),
		jetstream.PullMaxMessages(g.cfg.MaxInFlight),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) || ctx.Err() == nil {
				g.cfg.Logger.WarnContext(ctx, "consumer: pulling failed", "consumer", pt.name, "error", err)
			}
		}))
	if err != nil {
		return &bus.Error{Op: "consume " + pt.name, URL: g.conn.Server(), Err: err}
	}
	pt.cc = cc
	return nil
}

// stopPulling stops pulling: it asks JetStream for nothing more and, with
// wait, waits until what JetStream sent is received.
func (pt *partition) stopPulling(wait bool) {
	if pt.cc == nil {
		return
	}
	pt.cc.Drain()
	if wait {
		<-pt.cc.Closed()
		pt.cc = nil
	}
}

// release gives the partition up, once no longer pulling: the deliveries
// received and not started go back to JetStream, in stream order, and the
// pin, if this process holds it, is given up so that another replica takes
// the partition over at once. The delivery being handled, if any, is
// finished and settled here; the next replica waits for it.
//
// The server pins a pull request before it delivers anything, and the pin
// id only comes with a delivery: a replica that stops before anything
// reached it does not know its pin. A pin that nothing is out under
// (abandoned) is then given up too; were it a live replica's, that replica
// is pinned again with its next pull.
func (pt *partition) release(ctx context.Context) {
	pt.mu.Lock()
	rest, id := pt.held, pt.pinID
	pt.held, pt.sure, pt.pinID = nil, false, ""
	pt.gen++
	pt.mu.Unlock()
	for _, h := range rest {
		_ = h.m.Nak()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := pt.jc.Info(ctx)
	if err != nil {
		return
	}
	// A pin nothing is out under may be this process's, which never learned
	// its id; given up while another replica is pinned, it goes to that
	// replica's next pull again.
	if pinned := PinnedTo(info); pinned != "" && (pinned == id || id == "" && info.NumAckPending == 0) {
		_ = pt.g.stream.JetStream().UnpinConsumer(ctx, pt.name, priorityGroup)
	}
}

// PinnedTo is the client a partition's durable consumer (info) pins its
// deliveries to; "" when none.
func PinnedTo(info *jetstream.ConsumerInfo) string {
	for _, g := range info.PriorityGroups {
		if g.Group == priorityGroup {
			return g.PinnedClientID
		}
	}
	return ""
}

// owns reports whether the partition's deliveries are pinned to this
// process.
func (pt *partition) owns(info *jetstream.ConsumerInfo) bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.pinID != "" && PinnedTo(info) == pt.pinID
}

// held is a delivery received and not yet settled.
type held struct {
	m         jetstream.Msg
	seq       uint64
	delivered int
	stored    time.Time // when JetStream stored it
}

// receive takes a delivery from JetStream; it must not block.
func (pt *partition) receive(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		pt.g.cfg.Logger.Error("consumer: delivery without metadata; leaving it for redelivery", "consumer", pt.name, "subject", m.Subject(), "error", err)
		return
	}
	h := &held{m: m, seq: md.Sequence.Stream, delivered: int(md.NumDelivered), stored: md.Timestamp}
	pt.mu.Lock()
	if md.Sequence.Consumer != pt.last+1 {
		// A delivery went to another client, or this is our first: until
		// we know that nothing earlier is held elsewhere, we wait.
		pt.sure = false
		pt.gaps++
	}
	pt.last = md.Sequence.Consumer
	if ids := m.Headers().Values(HeaderPinID); len(ids) > 0 && ids[len(ids)-1] != "" {
		pt.pinID = ids[len(ids)-1] // the server's own comes last
	}
	i, found := slices.BinarySearchFunc(pt.held, h.seq, func(x *held, seq uint64) int { return cmp.Compare(x.seq, seq) })
	if found {
		pt.held[i] = h // delivered again while held: ack through the latest
	} else {
		pt.held = slices.Insert(pt.held, i, h)
	}
	pt.mu.Unlock()
	select {
	case pt.wake <- struct{}{}:
	default:
	}
}

// work hands the partition's deliveries to fn, in batches, until ctx
// ends.
func (pt *partition) work(ctx, work context.Context, fn func(context.Context, []*Delivery)) {
	for {
		hs, gen, turn := pt.next(ctx)
		if hs == nil {
			return
		}
		pt.handle(ctx, work, hs, gen, turn, fn)
	}
}

// next waits for the partition's next deliveries in stream order, once it
// is sure nothing earlier is held elsewhere, and for a turn (Config.Turns),
// and takes up to a batch of them (Config.MaxBatch, MaxBatchBytes); nil
// once ctx ends. gen is the releases counted when they were taken; turn
// reports that the batch holds a turn, for handle to give back.
func (pt *partition) next(ctx context.Context) (hs []*held, gen uint64, turn bool) {
	waited := false
	defer func() {
		if turn && hs == nil {
			pt.g.turns.give()
		}
	}()
	for ctx.Err() == nil {
		pt.mu.Lock()
		n, sure := len(pt.held), pt.sure
		if n > 0 && sure && !waited && pt.g.turns != nil {
			pt.mu.Unlock()
			turn, waited = pt.g.turns.take(ctx), true // what arrives meanwhile joins the batch
			continue
		}
		if n > 0 && sure {
			k, size := 1, len(pt.held[0].m.Data())
			for ; k < min(n, pt.g.cfg.MaxBatch); k++ {
				if size += len(pt.held[k].m.Data()); size > pt.g.cfg.MaxBatchBytes {
					break
				}
			}
			hs = slices.Clone(pt.held[:k])
			pt.held = pt.held[k:]
			pt.hand, gen = hs, pt.gen
			pt.mu.Unlock()
			return hs, gen, turn
		}
		pt.mu.Unlock()
		if turn { // not held while waiting for something else
			pt.g.turns.give()
		}
		turn, waited = false, false
		if n > 0 {
			pt.makeSure(ctx)
			continue
		}
		select {
		case <-pt.wake:
		case <-ctx.Done():
		}
	}
	return nil, 0, turn
}

// makeSure waits until JetStream counts no unacknowledged delivery of the
// partition beyond those held here: the ones another client held have come
// back, or it acked them. It runs between deliveries, with none in hand.
//
// What is held is counted before asking: all of it is still unacknowledged
// when JetStream answers, so a count no larger than it leaves no room for
// deliveries held elsewhere (counted after, it would include deliveries
// that arrived meanwhile and hide as many held elsewhere).
func (pt *partition) makeSure(ctx context.Context) {
	wait, waited := 10*time.Millisecond, false
	for ctx.Err() == nil {
		pt.mu.Lock()
		gaps, mine := pt.gaps, len(pt.held)
		pt.mu.Unlock()
		info, err := pt.jc.Info(ctx)
		if err == nil {
			pt.mu.Lock()
			if pt.gaps == gaps && info.NumAckPending <= mine {
				if waited {
					pt.g.cfg.Logger.DebugContext(ctx, "consumer: deliveries held elsewhere are back", "consumer", pt.name, "held", mine)
				}
				pt.sure, pt.fresh = true, true
				pt.mu.Unlock()
				return
			}
			pt.mu.Unlock()
			if !waited {
				pt.g.cfg.Logger.DebugContext(ctx, "consumer: partition came from elsewhere; waiting for the deliveries held there", "consumer", pt.name, "unacknowledged", info.NumAckPending, "held", mine)
			}
		} else if ctx.Err() == nil {
			pt.g.cfg.Logger.WarnContext(ctx, "consumer: cannot read consumer info", "consumer", pt.name, "error", err)
		}
		waited = true
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(2*wait, time.Second)
	}
}

// handle runs fn on the batch hs until fn has settled it: the one fn asks
// to retry is tried alone, after the delay it asked for, until it is
// settled — or handed back to JetStream if ctx ends meanwhile — and the
// others it left unsettled go back to be handed again, in stream order,
// after it. With none to retry, what fn left unsettled is handed again at
// once, unless fn settled nothing: then the first is tried again after a
// second, as one Run's function left unsettled. A turn the batch holds
// is given back once fn first returns: a retry waits without one.
func (pt *partition) handle(ctx, work context.Context, hs []*held, gen uint64, turn bool, fn func(context.Context, []*Delivery)) {
	defer func() {
		if turn {
			pt.g.turns.give()
		}
		pt.mu.Lock()
		pt.hand = nil
		pt.mu.Unlock()
	}()
	ds := pt.deliveries(hs)
	for len(ds) > 0 {
		for _, d := range ds {
			d.state = unsettled
		}
		fn(work, ds)
		if turn {
			pt.g.turns.give()
			turn = false
		}
		i := slices.IndexFunc(ds, func(d *Delivery) bool { return d.state == retrying })
		if i < 0 && slices.ContainsFunc(ds, (*Delivery).Settled) {
			pt.giveBack(ds, gen) // what fn did not get to: handed again at once
			return
		}
		if i < 0 {
			i = slices.IndexFunc(ds, func(d *Delivery) bool { return !d.Settled() })
		}
		if i < 0 {
			return
		}
		d := ds[i]
		pt.giveBack(slices.Delete(slices.Clone(ds), i, i+1), gen)
		pt.mu.Lock()
		pt.hand = []*held{d.held} // the rest is settled or given back
		pt.mu.Unlock()
		delay := d.delay
		if d.state == unsettled {
			delay = time.Second
		}
		if ctx.Err() != nil {
			_ = d.msg.Nak()
			return
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			_ = d.msg.Nak()
			return
		}
		ds = ds[i : i+1]
	}
}

// deliveries makes the batch hs into deliveries, leaving out (and
// acknowledging) the markers of other groups' replays.
func (pt *partition) deliveries(hs []*held) []*Delivery {
	ds := make([]*Delivery, 0, len(hs))
	for _, h := range hs {
		m := h.m
		d := &Delivery{Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Seq: h.seq, Partition: pt.index,
			Delivered: h.delivered, Attempt: h.delivered, msg: m, held: h}
		if g := d.Header.Get(bus.HeaderReplayGroup); g != "" && g != pt.g.cfg.Group {
			_ = m.Ack() // another group's replay: the next delivery may be the hand-over
			continue
		}
		d.Event, d.Address, d.Err = bus.Decode(&nats.Msg{Subject: d.Subject, Header: d.Header, Data: d.Data})
		ds = append(ds, d)
	}
	if len(ds) > 0 {
		pt.mu.Lock()
		ds[0].Handover, pt.fresh = pt.fresh, false
		pt.mu.Unlock()
	}
	return ds
}

// giveBack returns the deliveries of a batch that fn left unsettled, but
// for the one tried alone, to be handed again in stream order —
// unless the partition was released since the batch was taken (gen): then
// they go back to JetStream, as release sent the rest.
func (pt *partition) giveBack(ds []*Delivery, gen uint64) {
	var nak []jetstream.Msg
	pt.mu.Lock()
	for _, d := range ds {
		if d.Settled() {
			continue
		}
		if pt.gen != gen {
			nak = append(nak, d.msg)
			continue
		}
		if d.Handover {
			pt.fresh = true // it was not handled: the next delivery is the hand-over still
		}
		i, found := slices.BinarySearchFunc(pt.held, d.Seq, func(x *held, seq uint64) int { return cmp.Compare(x.seq, seq) })
		if !found { // else delivered again meanwhile: the newer stays
			pt.held = slices.Insert(pt.held, i, d.held)
		}
	}
	pt.mu.Unlock()
	for _, m := range nak {
		_ = m.Nak()
	}
}

// oldest reports when the oldest message the partition holds here and has
// not settled was stored: the one in hand, or else the first held.
func (pt *partition) oldest() (time.Time, bool) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	switch {
	case len(pt.hand) > 0:
		return pt.hand[0].stored, true
	case len(pt.held) > 0:
		return pt.held[0].stored, true
	}
	return time.Time{}, false
}

// ping tells JetStream that the deliveries held here are in progress.
func (pt *partition) ping() {
	pt.mu.Lock()
	ms := make([]jetstream.Msg, 0, len(pt.held)+len(pt.hand))
	for _, h := range pt.hand {
		ms = append(ms, h.m)
	}
	for _, h := range pt.held {
		ms = append(ms, h.m)
	}
	pt.mu.Unlock()
	for _, m := range ms {
		_ = m.InProgress()
	}
}
