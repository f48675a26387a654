package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
)

var tailCommand = &command{
	args: "<context...>", min: 1, max: -1,
	summary: "print the contexts' events as JSON lines as they are relayed, until interrupted (consumes nothing: no group, no ack)",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		all := fs.Bool("all", false, "start from the first event the stream holds, not the next one")
		n := fs.Int("n", 0, "stop after this many events (0: never)")
		return func(ctx context.Context, args []string) error { return c.tail(ctx, args, *all, *n) }
	},
}

// tailed is one event as tail prints it.
type tailed struct {
	Context  string               `json:"context"`
	Shard    string               `json:"shard"`
	Stream   string               `json:"stream"`
	Version  int64                `json:"version"`
	Type     string               `json:"type"`
	ID       string               `json:"id"`
	Data     json.RawMessage      `json:"data"`
	Metadata correlation.Metadata `json:"metadata"`
	Error    string               `json:"error,omitempty"` // a message that is no event (forged headers), with Subject
	Subject  string               `json:"subject,omitempty"`
}

// tail reads each context's stream with an ordered consumer of its own,
// which JetStream forgets when tail ends.
func (c *call) tail(ctx context.Context, contexts []string, all bool, n int) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range contexts {
		errs = append(errs, checkContext(cfg, name))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var need bus.Permissions
	for _, name := range contexts {
		need = need.Add(bus.TailPermissions(name))
	}
	conn, err := c.connect(ctx, cfg, 0, c.logger(), need)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	out := &lines{enc: json.NewEncoder(c.stdout), left: n, done: stop}
	policy := jetstream.DeliverNewPolicy
	if all {
		policy = jetstream.DeliverAllPolicy
	}
	for _, name := range contexts {
		oc, err := conn.JetStream().OrderedConsumer(ctx, bus.StreamName(name), jetstream.OrderedConsumerConfig{DeliverPolicy: policy})
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("context %s: no stream %s yet: nothing has run for it (run provisions it)", name, bus.StreamName(name))
		}
		if err != nil {
			return &bus.Error{Op: "tail " + bus.StreamName(name), URL: conn.Server(), Err: err}
		}
		cc, err := oc.Consume(out.print)
		if err != nil {
			return &bus.Error{Op: "tail " + bus.StreamName(name), URL: conn.Server(), Err: err}
		}
		defer func() {
			cc.Stop()
			<-cc.Closed() // no line is printed after tail returns
		}()
	}
	<-ctx.Done()
	out.mu.Lock()
	defer out.mu.Unlock()
	return out.err
}

// lines prints events as JSON lines, one writer at a time, and ends the
// tail after left of them (left 0: never) or at the first failed write.
type lines struct {
	mu   sync.Mutex
	enc  *json.Encoder
	left int
	done context.CancelFunc
	err  error
	over bool
}

func (l *lines) print(m jetstream.Msg) {
	if m.Headers().Get(bus.HeaderReplayGroup) != "" {
		return // a dead letter's replay marker, not an event
	}
	ev, a, err := bus.Decode(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.over {
		return
	}
	t := tailed{Subject: m.Subject()}
	if err != nil {
		t.Error = err.Error()
	} else {
		t = tailed{Context: a.Context, Shard: a.Shard, Stream: ev.Stream, Version: ev.Version,
			Type: ev.Type, ID: ev.ID.String(), Data: ev.Data, Metadata: ev.Metadata}
	}
	l.err = l.enc.Encode(t)
	if l.err != nil || l.left == 1 {
		l.over = true
		l.done()
	}
	l.left--
}
