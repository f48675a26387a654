package consumer

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
)

// priorityGroup is the JetStream priority group every Switchyard consumer
// pulls in; the server pins each partition's consumer to one client of it.
const priorityGroup = "sw"

// HeaderPinID is the pin JetStream puts on a delivery of a pinned
// consumer: the server's, for that delivery only, so a message stored
// again (a dead letter) must not keep it.
const HeaderPinID = "Nats-Pin-Id"

// Group is a consumer group's share of its source context's stream in this
// process. Build it with Provision and start it with Run.
type Group struct {
	conn   *bus.Conn
	cfg    Config
	stream *bus.Stream
	cons   []jetstream.Consumer
	turns  *turns // nil: Config.Turns is 0

	owned atomic.Pointer[[]int] // partitions pinned here, as of the last balance
	mu    sync.Mutex
	parts []*partition // while Run runs
}

// DurableName is the durable JetStream consumer of group on partition p.
func DurableName(group string, p int) string {
	return "sw_" + group + "_" + strconv.Itoa(p)
}

// ParseDurable takes a DurableName apart; ok is false for a name
// DurableName does not make.
func ParseDurable(name string) (group string, partition int, ok bool) {
	rest, ok := strings.CutPrefix(name, "sw_")
	i := strings.LastIndexByte(rest, '_')
	if !ok || i <= 0 {
		return "", 0, false
	}
	p, err := strconv.Atoi(rest[i+1:])
	return rest[:i], p, err == nil && p >= 0
}

// Provision provisions the group's durable consumers on the source
// context's stream, one per partition, creating or updating them, and
// returns the group's share for this process. Each pins its deliveries to
// one client of the group and lets it hold MaxInFlight of them
// unacknowledged (see the package doc).
func Provision(ctx context.Context, conn *bus.Conn, cfg Config) (*Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	st, err := conn.ProvisionStream(ctx, cfg.Source)
	if err != nil {
		return nil, err
	}
	g := &Group{conn: conn, cfg: cfg, stream: st, turns: newTurns(cfg)}
	for p := range st.Partitions {
		var filters []string
		for _, t := range cfg.Types {
			filters = append(filters, bus.PartitionFilter(cfg.Source, p, t))
		}
		if len(filters) == 0 {
			filters = []string{bus.PartitionFilter(cfg.Source, p, "")}
		}
		jc, err := st.JetStream().CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:        DurableName(cfg.Group, p),
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
			return nil, &bus.Error{Op: "provision consumer " + DurableName(cfg.Group, p) + " on " + st.Name, URL: conn.Server(), Err: err}
		}
		g.cons = append(g.cons, jc)
	}
	return g, nil
}

// Partitions is the number of partitions, and so of JetStream consumers.
func (g *Group) Partitions() int { return len(g.cons) }

// Owned is how many partitions JetStream pins to this process, as Run
// last found when it shared them out (every AckWait/3). A partition counts
// once a delivery showed its pin here: one idle since this process began
// does not.
func (g *Group) Owned() int { return len(g.OwnedPartitions()) }

// OwnedPartitions lists the partitions Owned counts, in ascending order.
func (g *Group) OwnedPartitions() []int {
	if p := g.owned.Load(); p != nil {
		return *p
	}
	return nil
}

// Oldest reports when the oldest message this process holds and has not
// settled was stored, over every partition; ok is false when it holds
// none. A partition's oldest unsettled message is the one it works on, or
// the next it holds (up to MaxInFlight arrive ahead): while a backlog
// drains, that is the backlog's oldest.
func (g *Group) Oldest() (t time.Time, ok bool) {
	g.mu.Lock()
	parts := g.parts
	g.mu.Unlock()
	for _, pt := range parts {
		if o, held := pt.oldest(); held && (!ok || o.Before(t)) {
			t, ok = o, true
		}
	}
	return t, ok
}

// Run pulls from every partition and calls fn for each delivery until ctx
// ends; fn settles the delivery. Per partition, fn sees one delivery at a
// time, in stream order, and the next only once the one before is acked or
// terminated. The package doc says how order survives a change of hands,
// how replicas share the partitions, and how Run drains when ctx ends: it
// returns once every fn has returned. Run with ctx already done starts
// nothing and returns nil.
func (g *Group) Run(ctx context.Context, fn func(ctx context.Context, d *Delivery)) error {
	return g.RunBatch(ctx, func(ctx context.Context, ds []*Delivery) {
		for _, d := range ds {
			if fn(ctx, d); !d.Settled() {
				if d.state == unsettled {
					d.RetryAfter(time.Second) // as documented for Run
				}
				return
			}
		}
	})
}

// RunBatch is Run handing fn up to Config.MaxBatch consecutive deliveries
// of a partition at once, in stream order: those held when fn is free.
// fn settles what it can, in each stream's order. The one it asks to try
// again (RetryAfter) is tried alone, as Run tries it, and the others it
// leaves unsettled are handed again, in stream order, once that one is
// settled (at once when none is to be tried again). fn may so settle the
// deliveries of other streams that come after one it cannot handle yet,
// never a later one of the same stream.
func (g *Group) RunBatch(ctx context.Context, fn func(ctx context.Context, ds []*Delivery)) error {
	if ctx.Err() != nil {
		// Pulling now would only strand what JetStream sends meanwhile.
		return nil
	}
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	taking, stopTaking := context.WithCancel(ctx)
	defer stopTaking()
	parts := make([]*partition, len(g.cons))
	for p, jc := range g.cons {
		parts[p] = &partition{g: g, jc: jc, index: p, name: DurableName(g.cfg.Group, p), wake: make(chan struct{}, 1)}
	}
	g.mu.Lock()
	g.parts = parts
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.parts = nil
		g.mu.Unlock()
		g.owned.Store(nil)
	}()
	var workers sync.WaitGroup
	for _, pt := range parts {
		workers.Go(func() { pt.work(taking, work, fn) })
	}
	tick := g.cfg.AckWait / 3
	go heartbeat(work, parts, tick)

	m := g.join(ctx)
	drain := func() {
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
			drain()
			return err
		}
	}
	balance := time.NewTicker(tick)
	defer balance.Stop()
	for {
		select {
		case <-ctx.Done():
			timer := time.AfterFunc(g.cfg.DrainTimeout, cancelWork)
			defer timer.Stop()
			drain()
			return nil
		case <-balance.C:
			bctx, cancel := context.WithTimeout(ctx, tick)
			g.balance(bctx, parts, m)
			cancel()
		}
	}
}

// heartbeat tells JetStream every tick, until ctx ends, that the
// deliveries held here are in progress.
func heartbeat(ctx context.Context, parts []*partition, tick time.Duration) {
	beat := time.NewTicker(tick)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			for _, pt := range parts {
				pt.ping()
			}
		}
	}
}
