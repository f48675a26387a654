package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/store"
)

// HeaderReplayGroup marks a dead letter replayed for one consumer group:
// the other groups consuming the stream pass it by.
const HeaderReplayGroup = "Sw-Replay-Group"

// priorityGroup is the JetStream priority group every Switchyard consumer
// pulls in; the server pins each partition's consumer to one client of it.
const priorityGroup = "sw"

// ConsumerConfig says what a consumer group receives.
type ConsumerConfig struct {
	// Context is the bounded context whose stream is consumed.
	Context string
	// Group names the consumer group: one durable JetStream consumer per
	// partition, sw_<group>_<partition>. Every replica of a group must
	// use the same configuration.
	Group string
	// Types are the event types to receive (nil: all of them).
	Types []string

	// AckWait is how long a delivery may go unacknowledged before JetStream
	// delivers it again (default 30s). While a handler runs, the consumer
	// tells JetStream it is in progress every AckWait/3, so a slow handler
	// is not redelivered under it. It is also how long a silent replica
	// keeps its partitions: JetStream unpins a client that has not pulled
	// for AckWait, and another replica takes over.
	AckWait time.Duration
	// DrainTimeout is how long in-flight work may go on after Run's ctx
	// ends before its own ctx is cancelled (default 30s).
	DrainTimeout time.Duration
	// MaxInFlight is how many deliveries of one partition this group may
	// hold unacknowledged at once (default 64): they are handled one at a
	// time, in stream order, while the next ones are already on their way.
	MaxInFlight int
	// Logger receives consumer errors (nil discards them).
	Logger *slog.Logger
}

func (c *ConsumerConfig) setDefaults() {
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// DefaultMaxInFlight is ConsumerConfig.MaxInFlight's default.
const DefaultMaxInFlight = 64

// Validate reports every problem with c, joined.
func (c ConsumerConfig) Validate() error {
	var errs []error
	if err := store.CheckName("context", c.Context); err != nil {
		errs = append(errs, err)
	}
	if err := store.CheckGroupName(c.Group); err != nil {
		errs = append(errs, err)
	}
	for _, t := range c.Types {
		if err := store.CheckType(t); err != nil {
			errs = append(errs, err)
		}
	}
	if c.AckWait < 0 || (c.AckWait > 0 && c.AckWait < time.Second) {
		errs = append(errs, fmt.Errorf("bus: AckWait %v: want at least 1s", c.AckWait))
	}
	if c.MaxInFlight < 0 || c.MaxInFlight > 10000 {
		errs = append(errs, fmt.Errorf("bus: MaxInFlight %d: want 1 to 10000 (0: default)", c.MaxInFlight))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("bus: DrainTimeout %v is negative", c.DrainTimeout))
	}
	return errors.Join(errs...)
}

// Delivery is one message handed to a consumer's fn. Ack or Term settles
// it; Nak asks for it again.
type Delivery struct {
	// Event is the decoded event, Address where its subject says it
	// belongs. When Err is set, Event is empty and nothing of the message
	// should be trusted.
	Event   store.Event
	Address Address
	// Err is why the message was refused: headers that disagree with the
	// subject (a forged shard, say) or that do not decode. Such a delivery
	// belongs in the dead letters, not in a handler.
	Err error

	Subject string
	Header  nats.Header
	Data    []byte
	// Seq is the message's sequence in the context's stream. Delivered
	// counts the times it has been handed to this group, 1 the first time:
	// JetStream's deliveries plus the retries asked for with Nak.
	Seq       uint64
	Delivered int

	msg   jetstream.Msg
	state settlement
	delay time.Duration
}

type settlement int

const (
	unsettled settlement = iota
	acked
	termed
	naked
)

// Ack settles d as handled.
func (d *Delivery) Ack() error {
	d.state = acked
	return d.msg.Ack()
}

// Term settles d as never to be delivered again, with reason.
func (d *Delivery) Term(reason string) error {
	d.state = termed
	return d.msg.TermWithReason(reason)
}

// Nak asks for d again after delay. The consumer keeps it, and hands it to
// fn again once delay has passed, holding back its partition's later
// deliveries meanwhile; if the consumer drains first, it hands d back to
// JetStream for the replica that takes the partition over. A delivery fn
// leaves unsettled is treated as Nak(time.Second).
func (d *Delivery) Nak(delay time.Duration) error {
	d.state, d.delay = naked, max(delay, 0)
	return nil
}

// Consumer is a consumer group's share of one context's stream in this
// process. Build it with Conn.Consumer and start it with Run.
type Consumer struct {
	conn   *Conn
	cfg    ConsumerConfig
	stream *Stream
	cons   []jetstream.Consumer
}

// ConsumerName is the durable JetStream consumer of group on partition p.
func ConsumerName(group string, p int) string {
	return "sw_" + group + "_" + strconv.Itoa(p)
}

// Consumer provisions group's durable consumers on cfg.Context's stream,
// one per partition, creating or updating them, and returns the group's
// consumer for this process.
//
// Each partition's consumer pins its deliveries to one client of the group
// (a JetStream priority group with a pinned client) and lets it hold
// MaxInFlight of them unacknowledged. Run hands them to fn one at a time,
// in stream order, so one stream's events are handled strictly in order,
// by one replica at a time, while the partitions proceed in parallel. A
// replica that stops pulling is unpinned after AckWait and another takes
// over; the deliveries it held are redelivered after AckWait, and the new
// replica handles them before anything later (see Run).
func (c *Conn) Consumer(ctx context.Context, cfg ConsumerConfig) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	st, err := c.Stream(ctx, cfg.Context)
	if err != nil {
		return nil, err
	}
	k := &Consumer{conn: c, cfg: cfg, stream: st}
	for p := range st.Partitions {
		filters := []string{"sw." + cfg.Context + ".*." + strconv.Itoa(p) + ".>"}
		if len(cfg.Types) > 0 {
			filters = filters[:0]
			for _, t := range cfg.Types {
				filters = append(filters, Subject(cfg.Context, "*", p, t))
			}
		}
		jc, err := st.js.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:        ConsumerName(cfg.Group, p),
			Description:    "Switchyard group " + cfg.Group + ", partition " + strconv.Itoa(p),
			FilterSubjects: filters,
			DeliverPolicy:  jetstream.DeliverAllPolicy,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        cfg.AckWait,
			MaxDeliver:     -1,
			MaxAckPending:  cfg.MaxInFlight,
			MaxWaiting:     512,
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PriorityGroups: []string{priorityGroup},
			PinnedTTL:      cfg.AckWait,
		})
		if err != nil {
			return nil, &Error{Op: "provision consumer " + ConsumerName(cfg.Group, p) + " on " + st.Name, URL: c.url, Err: err}
		}
		k.cons = append(k.cons, jc)
	}
	return k, nil
}

// Partitions is the number of partitions, and so of JetStream consumers.
func (k *Consumer) Partitions() int { return len(k.cons) }

// Run pulls from every partition and calls fn for each delivery until ctx
// ends; fn settles the delivery. Per partition, fn sees one delivery at a
// time, in stream order, and the next only once the one before is acked or
// terminated.
//
// Order survives a change of hands. When a partition's deliveries reach
// this process after going elsewhere (it just started, or took the
// partition over), Run handles nothing of it until every delivery
// JetStream counts as unacknowledged is in this process's hands: what a
// dead replica held comes back after AckWait, what a draining one holds it
// settles or hands back, and then everything is handled in stream order.
//
// Replicas share the partitions fairly: each pulls partitions it does not
// own only while it owns fewer than its share, and gives up those beyond
// its share that other replicas have room for (see MembersBucket).
//
// When ctx ends, Run stops pulling and gives up its pins, so other replicas
// take the partitions over at once; it lets the deliveries being handled
// finish (their ctx is cancelled DrainTimeout after ctx ends), hands the
// ones not started back to JetStream, and returns once every fn has
// returned.
func (k *Consumer) Run(ctx context.Context, fn func(ctx context.Context, d *Delivery)) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	taking, stopTaking := context.WithCancel(ctx)
	defer stopTaking()
	parts := make([]*partition, len(k.cons))
	for p, jc := range k.cons {
		parts[p] = &partition{k: k, jc: jc, name: ConsumerName(k.cfg.Group, p), wake: make(chan struct{}, 1)}
	}
	var workers sync.WaitGroup
	for _, pt := range parts {
		workers.Go(func() { pt.work(taking, work, fn) })
	}

	// One heartbeat for all partitions: every AckWait/3 it tells JetStream
	// that the deliveries held here are in progress.
	tick := k.cfg.AckWait / 3
	beat := time.NewTicker(tick)
	defer beat.Stop()
	go func() {
		for {
			select {
			case <-work.Done():
				return
			case <-beat.C:
				for _, pt := range parts {
					pt.ping()
				}
			}
		}
	}()

	m := k.join(ctx)
	finish := func() {
		stopTaking()
		for _, pt := range parts {
			pt.stopPulling(false)
		}
		for _, pt := range parts {
			pt.stopPulling(true)
			pt.release(work)
		}
		m.leave(work)
		workers.Wait()
	}
	for _, pt := range parts {
		if err := pt.pull(ctx); err != nil {
			finish()
			return err
		}
	}
	balance := time.NewTicker(tick)
	defer balance.Stop()
	for {
		select {
		case <-ctx.Done():
			timer := time.AfterFunc(k.cfg.DrainTimeout, cancelWork)
			defer timer.Stop()
			finish()
			return nil
		case <-balance.C:
			bctx, cancel := context.WithTimeout(ctx, tick)
			k.balance(bctx, parts, m)
			cancel()
		}
	}
}

// partition is one partition's deliveries in this process.
type partition struct {
	k    *Consumer
	jc   jetstream.Consumer
	name string
	wake chan struct{}

	mu    sync.Mutex
	held  []*held // received, not yet handled, in stream order
	hand  *held   // being handled
	last  uint64  // consumer sequence of the last delivery received
	gaps  uint64  // deliveries that went elsewhere since we last looked
	sure  bool    // every unacknowledged delivery is held here
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
	k := pt.k
	cc, err := pt.jc.Consume(pt.receive,
		jetstream.PullPriorityGroup(priorityGroup),
		// Pull requests expire well within the pin's TTL, so a live
		// client keeps its pin while idle.
		jetstream.PullExpiry(max(k.cfg.AckWait/3, time.Second)),
		jetstream.PullMaxMessages(k.cfg.MaxInFlight),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) || ctx.Err() == nil {
				k.cfg.Logger.WarnContext(ctx, "bus: consumer", "consumer", pt.name, "error", err)
			}
		}))
	if err != nil {
		return &Error{Op: "consume " + pt.name, URL: k.conn.url, Err: err}
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
func (pt *partition) release(ctx context.Context) {
	pt.mu.Lock()
	rest, id := pt.held, pt.pinID
	pt.held, pt.sure, pt.pinID = nil, false, ""
	pt.mu.Unlock()
	for _, h := range rest {
		_ = h.m.Nak()
	}
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if info, err := pt.jc.Info(ctx); err == nil && pinnedTo(info) == id {
		_ = pt.k.stream.js.UnpinConsumer(ctx, pt.name, priorityGroup)
	}
}

// pinnedTo is the client the consumer's deliveries are pinned to.
func pinnedTo(info *jetstream.ConsumerInfo) string {
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
	return pt.pinID != "" && pinnedTo(info) == pt.pinID
}

// held is a delivery received and not yet settled.
type held struct {
	m         jetstream.Msg
	seq       uint64
	delivered int
}

// receive takes a delivery from JetStream; it must not block.
func (pt *partition) receive(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		pt.k.cfg.Logger.Error("bus: delivery without metadata; leaving it for redelivery", "consumer", pt.name, "subject", m.Subject(), "error", err)
		return
	}
	h := &held{m: m, seq: md.Sequence.Stream, delivered: int(md.NumDelivered)}
	pt.mu.Lock()
	if md.Sequence.Consumer != pt.last+1 {
		// A delivery went to another client, or this is our first: until
		// we know that nothing earlier is held elsewhere, we wait.
		pt.sure = false
		pt.gaps++
	}
	pt.last = md.Sequence.Consumer
	if id := m.Headers().Get("Nats-Pin-Id"); id != "" {
		pt.pinID = id
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

// work hands the partition's deliveries to fn until ctx ends.
func (pt *partition) work(ctx, work context.Context, fn func(context.Context, *Delivery)) {
	for {
		h := pt.next(ctx)
		if h == nil {
			return
		}
		pt.handle(ctx, work, h, fn)
	}
}

// next waits for the partition's next delivery in stream order, once it is
// sure nothing earlier is held elsewhere; nil once ctx ends.
func (pt *partition) next(ctx context.Context) *held {
	for ctx.Err() == nil {
		pt.mu.Lock()
		n, sure := len(pt.held), pt.sure
		if n > 0 && sure {
			h := pt.held[0]
			pt.held = pt.held[1:]
			pt.hand = h
			pt.mu.Unlock()
			return h
		}
		pt.mu.Unlock()
		if n > 0 {
			pt.makeSure(ctx)
			continue
		}
		select {
		case <-pt.wake:
		case <-ctx.Done():
		}
	}
	return nil
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
					pt.k.cfg.Logger.DebugContext(ctx, "bus: deliveries held elsewhere are back", "consumer", pt.name, "held", mine)
				}
				pt.sure = true
				pt.mu.Unlock()
				return
			}
			pt.mu.Unlock()
			if !waited {
				pt.k.cfg.Logger.DebugContext(ctx, "bus: partition came from elsewhere; waiting for the deliveries held there", "consumer", pt.name, "unacknowledged", info.NumAckPending, "held", mine)
			}
		} else if ctx.Err() == nil {
			pt.k.cfg.Logger.WarnContext(ctx, "bus: consumer info", "consumer", pt.name, "error", err)
		}
		waited = true
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(2*wait, time.Second)
	}
}

// handle runs fn on h until it is settled, or hands it back to JetStream
// if ctx ends while it waits to be retried.
func (pt *partition) handle(ctx, work context.Context, h *held, fn func(context.Context, *Delivery)) {
	defer func() {
		pt.mu.Lock()
		pt.hand = nil
		pt.mu.Unlock()
	}()
	m := h.m
	d := &Delivery{Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Seq: h.seq, Delivered: h.delivered, msg: m}
	if g := d.Header.Get(HeaderReplayGroup); g != "" && g != pt.k.cfg.Group {
		_ = m.Ack() // another group's replay
		return
	}
	d.Event, d.Address, d.Err = Decode(&nats.Msg{Subject: d.Subject, Header: d.Header, Data: d.Data})
	for {
		d.state = unsettled
		fn(work, d)
		delay := d.delay
		switch d.state {
		case acked, termed:
			return
		case unsettled:
			delay = time.Second
		}
		if ctx.Err() != nil {
			_ = m.Nak()
			return
		}
		select {
		case <-time.After(delay):
			d.Delivered++
		case <-ctx.Done():
			_ = m.Nak()
			return
		}
	}
}

// ping tells JetStream that the deliveries held here are in progress.
func (pt *partition) ping() {
	pt.mu.Lock()
	ms := make([]jetstream.Msg, 0, len(pt.held)+1)
	if pt.hand != nil {
		ms = append(ms, pt.hand.m)
	}
	for _, h := range pt.held {
		ms = append(ms, h.m)
	}
	pt.mu.Unlock()
	for _, m := range ms {
		_ = m.InProgress()
	}
}
