package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// acks publishes a Conn's relay batches to JetStream and collects the
// acks itself. Every message's reply subject names its batch and index
// under one wildcard inbox, and an ack is read without reflection. It
// stands in for jetstream.PublishMsgAsync on the relay's hot path, whose
// per-message futures, bookkeeping and JSON decoding cost about as much as
// building the message.
type acks struct {
	nc     *nats.Conn
	prefix string // the connection's inbox: "_INBOX.<nuid>."
	sub    *nats.Subscription

	mu      sync.Mutex
	next    uint64
	batches map[uint64]*batchAcks
}

// errNoAck is the failure of a message whose ack did not come in time.
var errNoAck = errors.New("no ack from JetStream in time")

func newAcks(nc *nats.Conn) (*acks, error) {
	a := &acks{nc: nc, prefix: nc.NewInbox() + ".", batches: make(map[uint64]*batchAcks)}
	sub, err := nc.Subscribe(a.prefix+">", a.receive)
	if err != nil {
		return nil, err
	}
	// A dropped ack would only cost a timeout and a publish again, but
	// there is no reason to drop any.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	a.sub = sub
	return a, nil
}

// batchAcks is one batch's acks, by index.
type batchAcks struct {
	a      *acks
	id     uint64
	prefix string // reply subjects: prefix + index
	stream []byte // `"stream":"<name>"`: what a PubAck of the stream carries

	mu      sync.Mutex
	errs    []error // per index, once answered (nil: stored)
	got     []bool
	pending int   // published, not answered
	sealed  bool  // nothing more will be published
	failed  error // set by failAll: what the unanswered messages met
	closed  bool
	done    chan struct{} // closed when sealed and nothing is pending
}

// begin starts a batch of up to n messages to the JetStream stream named
// stream.
func (a *acks) begin(n int, stream string) *batchAcks {
	a.mu.Lock()
	a.next++
	b := &batchAcks{a: a, id: a.next, stream: []byte(`"stream":` + strconv.Quote(stream)),
		errs: make([]error, n), got: make([]bool, n), done: make(chan struct{})}
	a.batches[b.id] = b
	a.mu.Unlock()
	b.prefix = a.prefix + strconv.FormatUint(b.id, 10) + "."
	return b
}

// publish sends m as message i of the batch.
func (b *batchAcks) publish(i int, m *nats.Msg) error {
	m.Reply = b.prefix + strconv.Itoa(i)
	b.mu.Lock()
	b.pending++
	b.mu.Unlock()
	if err := b.a.nc.PublishMsg(m); err != nil {
		b.answer(i, err) // not sent: nothing else will answer it
		return err
	}
	return nil
}

// seal says that nothing more of the batch will be published.
func (b *batchAcks) seal() {
	b.mu.Lock()
	b.sealed = true
	b.closeIfDone()
	b.mu.Unlock()
}

// answer records message i's outcome.
func (b *batchAcks) answer(i int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || i < 0 || i >= len(b.got) || b.got[i] {
		return // too late, not ours, or answered twice
	}
	b.got[i], b.errs[i] = true, err
	if b.pending > 0 {
		b.pending--
	}
	b.closeIfDone()
}

// fail gives up on the unanswered messages: err is what they met.
func (b *batchAcks) fail(err error) {
	b.mu.Lock()
	b.failed, b.pending = err, 0
	b.closeIfDone()
	b.mu.Unlock()
}

// closeIfDone closes done once the batch is sealed and nothing is
// pending; b.mu is held.
func (b *batchAcks) closeIfDone() {
	if b.sealed && b.pending == 0 && !b.closed {
		b.closed = true
		close(b.done)
	}
}

// wait waits for the batch's acks (seal it first), at most timeout, and
// returns each message's outcome: nil when JetStream stored it, errNoAck
// when no ack came, the connection's loss (failAll), or ctx's error when
// ctx ended first. Acks that come later are ignored.
func (b *batchAcks) wait(ctx context.Context, timeout time.Duration) []error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	late := errNoAck
	select {
	case <-b.done:
	case <-t.C:
	case <-ctx.Done():
		late = ctx.Err()
	}
	b.a.mu.Lock()
	delete(b.a.batches, b.id)
	b.a.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failed != nil {
		late = b.failed
	}
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	for i, got := range b.got {
		if !got {
			b.errs[i] = late
		}
	}
	return b.errs
}

// failAll gives up on every batch's unanswered messages: the connection
// that carried them is gone, and their acks with it.
func (a *acks) failAll(err error) {
	a.mu.Lock()
	open := make([]*batchAcks, 0, len(a.batches))
	for _, b := range a.batches {
		open = append(open, b)
	}
	a.mu.Unlock()
	for _, b := range open {
		b.fail(err)
	}
}

// receive handles an ack: its subject is the inbox, a batch id and an
// index.
func (a *acks) receive(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, a.prefix)
	if !ok {
		return
	}
	ids, idx, ok := strings.Cut(rest, ".")
	if !ok {
		return
	}
	id, err1 := strconv.ParseUint(ids, 10, 64)
	i, err2 := strconv.Atoi(idx)
	if err1 != nil || err2 != nil {
		return
	}
	a.mu.Lock()
	b := a.batches[id]
	a.mu.Unlock()
	if b != nil {
		b.answer(i, ackError(m, b.stream))
	}
}

var errorKey = []byte(`"error"`)

// ackError reads the answer to a publish: nil for a PubAck from the
// stream (streamKey is its `"stream":"<name>"`; a duplicate is a PubAck
// too), the API error it carries, no responders, or, for anything else
// (another responder on the subject), an error: only JetStream's word may
// move the checkpoint.
func ackError(m *nats.Msg, streamKey []byte) error {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return nats.ErrNoResponders
		}
		return jetstream.ErrInvalidJSAck
	}
	if !bytes.Contains(m.Data, errorKey) && bytes.Contains(m.Data, streamKey) {
		return nil // {"stream":"SW_...","seq":n} and maybe "duplicate":true
	}
	var resp struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return resp.Error
	}
	if want := `"stream":` + strconv.Quote(resp.Stream); resp.Stream == "" || !bytes.Equal([]byte(want), streamKey) {
		return jetstream.ErrInvalidJSAck
	}
	return nil
}
