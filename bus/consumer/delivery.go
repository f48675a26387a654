package consumer

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/store"
)

// Delivery is one message handed to Run's function. Ack or Term settles
// it; RetryAfter asks for it again.
type Delivery struct {
	// Event is the decoded event, Address where its subject says it
	// belongs. When Err is set, Event is empty and nothing of the message
	// should be trusted.
	Event   store.Event
	Address bus.Address
	// Err is why the message was refused: headers that disagree with the
	// subject (a forged shard, say) or that do not decode. Such a delivery
	// belongs in the dead letters, not in a handler.
	Err error

	Subject string
	Header  nats.Header
	Data    []byte
	// Seq is the message's sequence in the context's stream. Delivered
	// counts the times it has been handed to this group, 1 the first time:
	// JetStream's deliveries plus the retries asked for with RetryAfter.
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
	retrying
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

// RetryAfter asks for d again after delay: Run keeps it, and hands it to
// its function again once delay has passed, holding back its partition's
// later deliveries meanwhile; if Run drains first, it hands d back to
// JetStream for the replica that takes the partition over. A delivery the
// function leaves unsettled is treated as RetryAfter(time.Second).
func (d *Delivery) RetryAfter(delay time.Duration) {
	d.state, d.delay = retrying, max(delay, 0)
}
