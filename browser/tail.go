package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

// tail streams a context's events as server-sent events, from the last
// TailBacklog on, through an ordered consumer that JetStream forgets when
// the page goes.
func (b *Browser) tail(w http.ResponseWriter, r *http.Request) {
	name, err := b.checkContext(r)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	ctx := r.Context()
	cons, err := b.tailConsumer(ctx, name)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	fmt.Fprint(w, ": tailing "+name+"\n\n")
	if rc.Flush() != nil {
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
		return
	}
	defer cc.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-msgs:
			if m.Headers().Get(bus.HeaderReplayGroup) != "" {
				continue // a dead letter's replay marker, not an event
			}
			line, _ := json.Marshal(toTailed(m))
			fmt.Fprintf(w, "data: %s\n\n", line)
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// tailConsumer makes an ordered consumer of the context's stream that
// starts TailBacklog messages before its end.
func (b *Browser) tailConsumer(ctx context.Context, name string) (jetstream.Consumer, error) {
	js := b.cfg.Conn.JetStream()
	s, err := js.Stream(ctx, bus.StreamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, notFound("context %s has no stream yet: nothing has been relayed", name)
	}
	if err != nil {
		return nil, err
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if last := s.CachedInfo().State.LastSeq; last > TailBacklog {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last - TailBacklog + 1}
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
