package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
)

// TailBacklog is how many of a context's latest events the live tail
// starts with.
const TailBacklog = 20

func (b *Browser) tailPage(w http.ResponseWriter, r *http.Request) {
	name, err := b.checkContext(r)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	b.render(w, r, http.StatusOK, "tail", "Live tail of "+name, name)
}

// tailed is one event as the live tail sends it.
type tailed struct {
	Context     string    `json:"context"`
	Shard       string    `json:"shard"`
	Stream      string    `json:"stream"`
	Version     int64     `json:"version"`
	Type        string    `json:"type"`
	ID          string    `json:"id"`
	RecordedAt  time.Time `json:"recorded_at"`
	Correlation string    `json:"correlation_id"`
	Error       string    `json:"error,omitempty"`
}

// Heartbeat is how often an idle live tail sends a comment, so that
// proxies keep the connection and a client that went away is noticed.
const Heartbeat = 15 * time.Second

// tail streams a context's events as server-sent events, each with its
// sequence in the context's stream as its id: from the last TailBacklog
// on, or after Last-Event-ID when the client reconnects. An ordered
// consumer reads them, which JetStream forgets when the page goes. It ends
// with the client, the consumer, or Close.
func (b *Browser) tail(w http.ResponseWriter, r *http.Request) {
	name, err := b.checkContext(r)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	ctx := r.Context()
	after, _ := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	cons, err := b.tailConsumer(ctx, name, after)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	msgs := make(chan jetstream.Msg, 64)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	})
	if err != nil {
		b.fail(w, r, &bus.Error{Op: "tail " + bus.StreamName(name), URL: b.cfg.Conn.Server(), Err: err})
		return
	}
	defer cc.Stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	b.send(w, msgs, ctx.Done(), cc.Closed())
}

// send writes msgs as events until one of the ends comes.
func (b *Browser) send(w http.ResponseWriter, msgs <-chan jetstream.Msg, gone, closed <-chan struct{}) {
	rc := http.NewResponseController(w)
	beat := time.NewTicker(Heartbeat)
	defer beat.Stop()
	fmt.Fprint(w, ": tailing\n\n")
	for rc.Flush() == nil {
		select {
		case <-gone:
			return
		case <-closed:
			return
		case <-b.done:
			return
		case <-beat.C:
			fmt.Fprint(w, ": still here\n\n")
		case m := <-msgs:
			if m.Headers().Get(bus.HeaderReplayGroup) != "" {
				continue // a dead letter's replay marker, not an event
			}
			line, _ := json.Marshal(toTailed(m))
			meta, _ := m.Metadata()
			if meta != nil {
				fmt.Fprintf(w, "id: %d\n", meta.Sequence.Stream)
			}
			fmt.Fprintf(w, "data: %s\n\n", line)
		}
	}
}

// tailConsumer makes an ordered consumer of the context's stream that
// starts after the sequence after, or, for 0, TailBacklog messages before
// its end.
func (b *Browser) tailConsumer(ctx context.Context, name string, after uint64) (jetstream.Consumer, error) {
	js := b.cfg.Conn.JetStream()
	s, err := js.Stream(ctx, bus.StreamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, notFound("context %s has no stream yet: nothing has been relayed", name)
	}
	if err != nil {
		return nil, &bus.Error{Op: "tail " + bus.StreamName(name), URL: b.cfg.Conn.Server(), Err: err}
	}
	start := after + 1
	if last := s.CachedInfo().State.LastSeq; after == 0 && last > TailBacklog {
		start = last - TailBacklog + 1
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if start > 1 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start}
	}
	return js.OrderedConsumer(ctx, bus.StreamName(name), cfg)
}

func toTailed(m jetstream.Msg) tailed {
	ev, a, err := bus.Decode(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		return tailed{Stream: m.Subject(), Error: err.Error()}
	}
	return tailed{Context: a.Context, Shard: a.Shard, Stream: ev.Stream, Version: ev.Version, Type: ev.Type,
		ID: ev.ID.String(), RecordedAt: ev.RecordedAt, Correlation: ev.Metadata.Get(correlation.CorrelationID)}
}
