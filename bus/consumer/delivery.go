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
	// Partition is the partition whose consumer delivered it (Address says
	// the same, when the subject parses).
	Partition int
	// Seq is the message's sequence in the context's stream. Delivered
	// counts JetStream's deliveries of it to this group, 1 the first time
	// (a delivery to a replica that died counts too).
	Seq       uint64
	Delivered int
	// Attempt is the caller's, to count tries with across RetryAfter: Run
	// sets it to Delivered and does not change it after.
	Attempt int
	// Handover marks the first delivery of its partition that this process
	// handles after the partition came from elsewhere (or at start): what
	// the replica before decided about earlier messages is settled in
	// JetStream, but not known here. Run sets it and does not change it
	// after.
	Handover bool

	msg   jetstream.Msg
	held  *held
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

// Settled reports whether d was acked or terminated.
func (d *Delivery) Settled() bool { return d.state == acked || d.state == termed }

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
