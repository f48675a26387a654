package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

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
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("bus: DrainTimeout %v is negative", c.DrainTimeout))
	}
	return errors.Join(errs...)
}

// Delivery is one message handed to a consumer. Exactly one of Ack, Nak or
// Term settles it; one left unsettled is delivered again after AckWait.
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
	// Seq is the message's sequence in the context's stream; Delivered
	// counts its deliveries to this group, 1 the first time.
	Seq       uint64
	Delivered int

	msg jetstream.Msg
}

// Ack settles d as handled.
func (d *Delivery) Ack() error { return d.msg.Ack() }

// Nak asks JetStream to deliver d again after delay.
func (d *Delivery) Nak(delay time.Duration) error { return d.msg.NakWithDelay(delay) }

// Term settles d as never to be delivered again, with reason.
func (d *Delivery) Term(reason string) error { return d.msg.TermWithReason(reason) }

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
// Each partition's consumer lets one message be unacknowledged at a time
// and pins its deliveries to one client of the group (a JetStream priority
// group with a pinned client): one stream's events are handled strictly in
// order, by one replica at a time, while the partitions proceed in
// parallel. A replica that stops pulling is unpinned after AckWait and
// another takes over; the delivery it held is redelivered after AckWait.
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
			MaxAckPending:  1,
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

// Run pulls from every partition and calls fn for each delivery, one at a
// time per partition, until ctx ends; fn settles the delivery. Then it
// stops pulling, lets the deliveries in hand finish (their ctx is cancelled
// DrainTimeout after ctx ends) and returns once every fn has returned.
func (k *Consumer) Run(ctx context.Context, fn func(ctx context.Context, d *Delivery)) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	// Pull requests expire well within the pin's TTL, so a live client
	// keeps its pin while idle.
	expiry := max(k.cfg.AckWait/3, time.Second)
	// One heartbeat for all partitions: every AckWait/3 it tells JetStream
	// that the deliveries being handled are in progress.
	handling := make([]inHand, len(k.cons))
	beat := time.NewTicker(k.cfg.AckWait / 3)
	beatDone := make(chan struct{})
	defer func() { beat.Stop(); close(beatDone) }()
	go func() {
		for {
			select {
			case <-beatDone:
				return
			case <-beat.C:
				for i := range handling {
					handling[i].ping()
				}
			}
		}
	}()
	var ccs []jetstream.ConsumeContext
	stopAll := func() {
		for _, cc := range ccs {
			cc.Drain()
		}
		for _, cc := range ccs {
			<-cc.Closed()
		}
	}
	for p, jc := range k.cons {
		cc, err := jc.Consume(func(m jetstream.Msg) { k.deliver(work, m, fn, &handling[p]) },
			jetstream.PullPriorityGroup(priorityGroup),
			jetstream.PullExpiry(expiry),
			jetstream.PullMaxMessages(16),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if !errors.Is(err, jetstream.ErrNoHeartbeat) || ctx.Err() == nil {
					k.cfg.Logger.WarnContext(ctx, "bus: consumer", "consumer", ConsumerName(k.cfg.Group, p), "error", err)
				}
			}))
		if err != nil {
			stopAll()
			return &Error{Op: "consume " + ConsumerName(k.cfg.Group, p), URL: k.conn.url, Err: err}
		}
		ccs = append(ccs, cc)
	}
	<-ctx.Done()
	timer := time.AfterFunc(k.cfg.DrainTimeout, cancelWork)
	defer timer.Stop()
	stopAll()
	return nil
}

// deliver decodes m and runs fn on it, in hand for the heartbeat while it
// lasts.
func (k *Consumer) deliver(ctx context.Context, m jetstream.Msg, fn func(ctx context.Context, d *Delivery), hand *inHand) {
	d := &Delivery{Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), msg: m}
	if md, err := m.Metadata(); err == nil {
		d.Seq, d.Delivered = md.Sequence.Stream, int(md.NumDelivered)
	}
	if g := d.Header.Get(HeaderReplayGroup); g != "" && g != k.cfg.Group {
		_ = m.Ack() // another group's replay
		return
	}
	d.Event, d.Address, d.Err = Decode(&nats.Msg{Subject: d.Subject, Header: d.Header, Data: d.Data})
	hand.set(m)
	defer hand.set(nil)
	fn(ctx, d)
}

// inHand is the delivery a partition is handling, if any.
type inHand struct {
	mu sync.Mutex
	m  jetstream.Msg
}

func (h *inHand) set(m jetstream.Msg) {
	h.mu.Lock()
	h.m = m
	h.mu.Unlock()
}

// ping tells JetStream the delivery in hand is in progress.
func (h *inHand) ping() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m != nil {
		_ = h.m.InProgress()
	}
}
