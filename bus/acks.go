package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// acks publishes a Conn's relay batches to JetStream and collects the
// acks itself. Every message's reply subject names its batch and index
// under one wildcard inbox, and an ack is read without reflection. It
// stands in for jetstream.PublishMsgAsync on the relay's hot path, whose
// per-message futures, bookkeeping and JSON decoding cost about as much as
// building the message.
//
// A batch to a stream that allows it goes as one JetStream fast batch
// (ADR-50, nats-server 2.14 and later) in its "fail on gap" mode: the
// server answers the whole batch with one PubAck that counts the messages
// it took, instead of one ack per message, and stores nothing of a batch
// after a message it refused. So a refused event is never overtaken by the
// events behind it.
type acks struct {
	nc     *nats.Conn
	prefix string // the connection's inbox: "_INBOX.<nuid>."
	token  string // unique to this collector: fast batch ids start with it
	sub    *nats.Subscription

	mu      sync.Mutex
	next    uint64
	batches map[uint64]*batchAcks
}

// errNoAck is the failure of a message whose ack did not come in time.
var errNoAck = errors.New("no ack from JetStream in time")

func newAcks(nc *nats.Conn) (*acks, error) {
	a := &acks{nc: nc, prefix: nc.NewInbox() + ".", token: nuid.Next(), batches: make(map[uint64]*batchAcks)}
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

	// A fast batch's reply subjects are fast + sequence + operation; the
	// server knows the batch by its id. Sequences count the messages sent
	// from 1, and seqs[s-1] is the index sequence s carried.
	fast string
	bid  string
	seqs []int
	last string // the subject of the last message sent, for the commit

	mu      sync.Mutex
	errs    []error // per index, once answered (nil: stored)
	got     []bool
	pending int   // published, not answered
	sealed  bool  // nothing more will be published
	failed  error // set by failAll: what the unanswered messages met
	closed  bool
	done    chan struct{} // closed when sealed and nothing is pending
}

// minFastBatch is the fewest messages sent as a fast batch: its commit is
// one more message, and the server answers its first message too.
const minFastBatch = 4

// begin starts a batch of up to n messages to the JetStream stream named
// stream, as a fast batch when fast is set (the stream allows them) and n
// is at least minFastBatch.
func (a *acks) begin(n int, stream string, fast bool) *batchAcks {
	a.mu.Lock()
	a.next++
	b := &batchAcks{a: a, id: a.next, stream: []byte(`"stream":` + strconv.Quote(stream)),
		errs: make([]error, n), got: make([]bool, n), done: make(chan struct{})}
	a.batches[b.id] = b
	a.mu.Unlock()
	b.prefix = a.prefix + strconv.FormatUint(b.id, 10) + "."
	if fast && n >= minFastBatch {
		// <inbox>.<id>.<batch id>.<most messages between flow acks>.fail.<seq>.<op>.$FI
		b.bid = a.token + strconv.FormatUint(b.id, 10)
		b.fast = b.prefix + b.bid + "." + strconv.Itoa(min(n, math.MaxUint16)) + ".fail."
		b.seqs = make([]int, 0, n)
	}
	return b
}

// The operations of a fast batch message, and its reply subjects' suffix.
const (
	fastStart  = ".0"
	fastAppend = ".1"
	fastCommit = ".3" // ends the batch; the message itself is not stored
	fastSuffix = ".$FI"
)

// publish sends m as message i of the batch.
func (b *batchAcks) publish(i int, m *nats.Msg) error {
	b.mu.Lock()
	b.pending++
	if b.fast != "" {
		b.seqs = append(b.seqs, i)
		op := fastAppend
		if len(b.seqs) == 1 {
			op = fastStart
		}
		m.Reply = b.fast + strconv.Itoa(len(b.seqs)) + op + fastSuffix
		b.last = m.Subject
	} else {
		m.Reply = b.prefix + strconv.Itoa(i)
	}
	b.mu.Unlock()
	if err := b.a.nc.PublishMsg(m); err != nil {
		b.answer(i, err) // not sent: nothing else will answer it
		return err
	}
	return nil
}

// seal says that nothing more of the batch will be published. A fast
// batch is committed: the server answers it once it stored what came.
func (b *batchAcks) seal() {
	b.mu.Lock()
	b.sealed = true
	b.closeIfDone()
	commit := b.fast != "" && len(b.seqs) > 0 && !b.closed
	m := &nats.Msg{Subject: b.last, Reply: b.fast + strconv.Itoa(len(b.seqs)+1) + fastCommit + fastSuffix}
	b.mu.Unlock()
	if commit {
		if err := b.a.nc.PublishMsg(m); err != nil {
			b.fail(err)
		}
	}
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
	fast := false
	if idx, fast = strings.CutSuffix(idx, fastSuffix); fast {
		// <batch id>.<flow>.fail.<seq>.<op>: idx becomes <seq>
		if j := strings.LastIndexByte(idx, '.'); j >= 0 {
			idx = idx[:j]
		}
		idx = idx[strings.LastIndexByte(idx, '.')+1:]
	}
	id, err1 := strconv.ParseUint(ids, 10, 64)
	i, err2 := strconv.Atoi(idx)
	if err1 != nil || err2 != nil {
		return
	}
	a.mu.Lock()
	b := a.batches[id]
	a.mu.Unlock()
	switch {
	case b == nil:
	case fast:
		b.answerFast(i, m)
	default:
		b.answer(i, ackError(m, b.stream))
	}
}

// errBatchEnded is the failure of a fast batch's messages that came after
// the last one the server took: it ended the batch there (it refused the
// next one) and dropped them.
var errBatchEnded = errors.New("JetStream ended the batch before this message")

var (
	flowAck = []byte(`{"type":"ack"`)
	flowGap = []byte(`{"type":"gap"`)
	flowErr = []byte(`{"type":"err"`)
)

// answerFast handles the server's word on the fast batch message of
// sequence seq. Flow acks and gap reports only say how far the server got:
// what settles the messages is an error naming one of them, and the
// PubAck that ends the batch. That PubAck must name the stream and the
// batch, and counts the messages taken (stored, or known duplicates); the
// rest were dropped.
func (b *batchAcks) answerFast(seq int, m *nats.Msg) {
	d := m.Data
	switch {
	case bytes.HasPrefix(d, flowAck), bytes.HasPrefix(d, flowGap):
		return
	case bytes.HasPrefix(d, flowErr):
		var e struct {
			Seq   int                 `json:"seq"`
			Error *jetstream.APIError `json:"error"`
		}
		if json.Unmarshal(d, &e) != nil || e.Error == nil {
			return
		}
		b.answerSeq(e.Seq, e.Error)
		return
	}
	err := ackError(m, b.stream)
	if err != nil {
		if !b.answerSeq(seq, err) {
			b.end(0, err) // the commit failed: nothing more will come
		}
		return
	}
	var ack struct {
		Batch string `json:"batch"`
		Count int    `json:"count"`
	}
	if json.Unmarshal(d, &ack) != nil || ack.Batch != b.bid {
		b.answerSeq(seq, jetstream.ErrInvalidJSAck)
		return
	}
	b.end(ack.Count, errBatchEnded)
}

// answerSeq records the outcome of the message of sequence seq; false when
// seq is none of the batch's messages (the commit).
func (b *batchAcks) answerSeq(seq int, err error) bool {
	b.mu.Lock()
	i := -1
	if seq >= 1 && seq <= len(b.seqs) {
		i = b.seqs[seq-1]
	}
	b.mu.Unlock()
	if i < 0 {
		return false
	}
	b.answer(i, err)
	return true
}

// end settles a fast batch the server ended: the first count messages
// were taken, the others meet err unless they had an answer already.
func (b *batchAcks) end(count int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for s, i := range b.seqs {
		if b.got[i] {
			continue
		}
		b.got[i] = true
		if s >= count {
			b.errs[i] = err
		}
		if b.pending > 0 {
			b.pending--
		}
	}
	b.closeIfDone()
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
