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
// Batches to a stream that allows it go as a JetStream fast batch (ADR-50,
// nats-server 2.14 and later) in its "fail on gap" mode: a [run] of
// consecutive batches is one fast batch on the server, which answers with
// a flow ack every few hundred messages and one PubAck at the end instead
// of one ack per message, and which stores nothing of the run after a
// message it refused. So a refused event is never overtaken by the events
// sent behind it, in its batch or in the batches after it.
type acks struct {
	nc     *nats.Conn
	prefix string // the connection's inbox: "_INBOX.<nuid>."
	token  string // unique to this collector: fast batch ids start with it
	sub    *nats.Subscription

	mu      sync.Mutex
	next    uint64
	batches map[uint64]*batchAcks
	runs    map[uint64]*run
}

// errNoAck is the failure of a message whose ack did not come in time.
var errNoAck = errors.New("no ack from JetStream in time")

func newAcks(nc *nats.Conn) (*acks, error) {
	a := &acks{nc: nc, prefix: nc.NewInbox() + ".", token: nuid.Next(), batches: make(map[uint64]*batchAcks), runs: make(map[uint64]*run)}
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

	run *run // nil: one publish, and one ack, per message

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
// stream, sent one by one.
func (a *acks) begin(n int, stream string) *batchAcks {
	return a.add(n, []byte(`"stream":`+strconv.Quote(stream)), nil)
}

func (a *acks) add(n int, stream []byte, r *run) *batchAcks {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next++
	b := &batchAcks{a: a, id: a.next, stream: stream, run: r,
		errs: make([]error, n), got: make([]bool, n), done: make(chan struct{})}
	b.prefix = a.prefix + strconv.FormatUint(b.id, 10) + "."
	a.batches[b.id] = b
	return b
}

// minFastBatch is the fewest messages that start a run: its first message
// has an answer of its own, and a run may need one more message to end.
const minFastBatch = 4

// run is consecutive batches sent as one JetStream fast batch: message
// sequences count on from batch to batch. The server answers with flow
// acks (every message up to a sequence is stored) and, at the end, a
// PubAck counting the messages it took; after one it refused it drops the
// rest of the run and ends it.
type run struct {
	a      *acks
	id     uint64
	bid    string // the server's name for the batch
	reply  string // reply subjects: reply + sequence + operation + fastSuffix
	stream []byte

	mu     sync.Mutex
	sent   int    // the last sequence sent
	base   int    // sequences up to base are settled
	slots  []slot // sequence base+1 onwards: which message it carried
	subj   string // the subject of the last message sent
	closed bool   // ended, or ending: nothing more is sent
	last   int    // the sequence of the message that ends the run, once sent
	endSeq int    // the sequence of the end message, once sent
}

// slot is the message of a batch that a run's sequence carried.
type slot struct {
	b *batchAcks
	i int
}

// The operations of a fast batch message, and its reply subjects' suffix.
const (
	fastStart  = ".0"
	fastAppend = ".1"
	fastCommit = ".2" // the last message: stored, then the batch ends
	fastEnd    = ".3" // ends the batch; this message itself is not stored
	fastSuffix = ".$FI"
)

// newRun starts a run to the JetStream stream named stream. flow is the
// most messages the server may take between flow acks.
func (a *acks) newRun(stream string, flow int) *run {
	a.mu.Lock()
	a.next++
	r := &run{a: a, id: a.next, stream: []byte(`"stream":` + strconv.Quote(stream))}
	r.bid = a.token + strconv.FormatUint(r.id, 10)
	// <inbox>.<id>.<batch id>.<flow>.fail.<seq>.<op>.$FI
	r.reply = a.prefix + strconv.FormatUint(r.id, 10) + "." + r.bid + "." + strconv.Itoa(min(max(flow, 1), math.MaxUint16)) + ".fail."
	a.runs[r.id] = r
	a.mu.Unlock()
	return r
}

// begin starts a batch of up to n messages in the run.
func (r *run) begin(n int) *batchAcks { return r.a.add(n, r.stream, r) }

// next gives the message i of b the run's next sequence and returns its
// reply subject; commit makes it the run's last. It returns false when the
// run has ended (JetStream ended it after a message it refused): the
// message must not be sent, or it could be stored ahead of those the
// server dropped.
func (r *run) next(b *batchAcks, i int, subject string, commit bool) (reply string, seq int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return "", 0, false
	}
	r.sent++
	r.slots = append(r.slots, slot{b, i})
	r.subj = subject
	op := fastAppend
	switch {
	case commit:
		op, r.closed, r.last = fastCommit, true, r.sent
	case r.sent == 1:
		op = fastStart
	}
	return r.reply + strconv.Itoa(r.sent) + op + fastSuffix, r.sent, true
}

// commit ends the run after the messages sent: the server answers once it
// stored them. The message that says so reaches plain subscribers of the
// subject (JetStream does not store it), so a run ends on its last event
// when it can (next with commit).
func (r *run) commit() {
	r.mu.Lock()
	if r.closed { // ended on its last message, or abandoned
		r.mu.Unlock()
		return
	}
	r.closed = true
	sent := r.sent
	r.mu.Unlock()
	if sent == 0 {
		r.abandon()
		return
	}
	r.sendEnd(sent + 1)
}

// sendEnd sends the message that ends the run, as sequence seq.
func (r *run) sendEnd(seq int) {
	r.mu.Lock()
	r.closed, r.endSeq = true, seq
	m := &nats.Msg{Subject: r.subj, Reply: r.reply + strconv.Itoa(seq) + fastEnd + fastSuffix}
	r.mu.Unlock()
	if err := r.a.nc.PublishMsg(m); err != nil {
		r.end(0, err)
	}
}

// abandon stops tracking the run: nothing more is sent, and answers that
// come later are dropped. Its batches' unanswered messages are left to
// their wait.
func (r *run) abandon() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.a.mu.Lock()
	delete(r.a.runs, r.id)
	r.a.mu.Unlock()
}

// settle answers the messages of sequences base+1 to upTo: nil up to
// through, err after it.
func (r *run) settle(through, upTo int, err error) {
	r.mu.Lock()
	upTo = min(upTo, r.sent)
	var done []slot
	if upTo > r.base {
		done = r.slots[:upTo-r.base]
		r.slots = r.slots[upTo-r.base:]
		r.base = upTo
	}
	first := r.base - len(done) + 1
	r.mu.Unlock()
	for k, sl := range done {
		if first+k <= through {
			sl.b.answer(sl.i, nil)
		} else {
			sl.b.answer(sl.i, err)
		}
	}
}

// fail answers the message of sequence seq with err.
func (r *run) fail(seq int, err error) {
	r.mu.Lock()
	var sl slot
	ok := seq > r.base && seq <= r.sent
	if ok {
		sl = r.slots[seq-r.base-1]
	}
	r.mu.Unlock()
	if ok {
		sl.b.answer(sl.i, err)
	}
}

// refused handles JetStream's refusal of the message of sequence seq. A
// refusal of the end message ends the run. The server refuses a message
// over its limits before the batch sees it: the next message then reports
// the gap and ends the batch, but the last one has no next, so it is
// followed by an end message in its place; and after the first one there
// is no batch, so the rest of the run is over.
func (r *run) refused(seq int, err error) {
	r.fail(seq, err)
	r.mu.Lock()
	end := seq == r.endSeq || seq > r.sent
	last := !end && seq == r.last && r.endSeq == 0
	r.mu.Unlock()
	switch {
	case end: // nothing more will come
		r.end(0, err)
	case seq == 1: // the server never began the batch: the rest is refused
		r.end(0, errBatchEnded)
	case last:
		r.sendEnd(seq)
	}
}

// end settles the run: the first count messages were taken, the others
// meet err unless they had an answer already.
func (r *run) end(count int, err error) {
	r.mu.Lock()
	r.closed = true
	sent := r.sent
	r.mu.Unlock()
	r.settle(count, sent, err)
	r.abandon()
}

// publish sends m as message i of the batch; commit makes it the last of
// the batch's run.
func (b *batchAcks) publish(i int, m *nats.Msg, commit bool) error {
	b.mu.Lock()
	b.pending++
	b.mu.Unlock()
	seq := 0
	if b.run != nil {
		var reply string
		var ok bool
		if reply, seq, ok = b.run.next(b, i, m.Subject, commit); !ok {
			b.answer(i, errBatchEnded)
			return nil
		}
		m.Reply = reply
	} else {
		m.Reply = b.prefix + strconv.Itoa(i)
	}
	if err := b.a.nc.PublishMsg(m); err != nil {
		b.answer(i, err) // not sent: nothing else will answer it
		if b.run != nil {
			// The run ends in its place, after what was sent before it.
			b.run.sendEnd(seq)
		}
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
	answered := false
	select {
	case <-b.done:
		answered = true
	case <-t.C:
	case <-ctx.Done():
		late = ctx.Err()
	}
	if !answered && b.run != nil {
		// The run's answers stopped coming: its other batches need not
		// wait as long.
		defer b.run.end(0, late)
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
	runs := make([]*run, 0, len(a.runs))
	for _, r := range a.runs {
		runs = append(runs, r)
	}
	a.mu.Unlock()
	for _, r := range runs {
		r.end(0, err) // nothing more goes into them
	}
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
	if idx, fast := strings.CutSuffix(idx, fastSuffix); fast {
		// <batch id>.<flow>.fail.<seq>.<op>: idx becomes <seq>
		if j := strings.LastIndexByte(idx, '.'); j >= 0 {
			idx = idx[:j]
		}
		seq, err2 := strconv.Atoi(idx[strings.LastIndexByte(idx, '.')+1:])
		if err1 != nil || err2 != nil {
			return
		}
		a.mu.Lock()
		r := a.runs[id]
		a.mu.Unlock()
		if r != nil {
			r.answer(seq, m)
		}
		return
	}
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

// errBatchEnded is the failure of a run's messages that came after the
// last one the server took: it ended the run there (it refused the next
// one) and dropped them.
var errBatchEnded = errors.New("JetStream ended the batch before this message")

var (
	flowAck = []byte(`{"type":"ack"`)
	flowGap = []byte(`{"type":"gap"`)
	flowErr = []byte(`{"type":"err"`)
)

// answer handles the server's word on the run's message of sequence seq.
// A flow ack settles every message up to its sequence; a gap report says
// the run ended (the PubAck that follows counts what was taken); an error
// naming a message fails it; and the PubAck, which must name the stream
// and the batch, ends the run: the messages it counts were taken (stored,
// or known duplicates), the rest dropped.
func (r *run) answer(seq int, m *nats.Msg) {
	d := m.Data
	switch {
	case bytes.HasPrefix(d, flowAck):
		var ack struct {
			Seq int `json:"seq"`
		}
		if json.Unmarshal(d, &ack) == nil {
			r.settle(ack.Seq, ack.Seq, nil)
		}
		return
	case bytes.HasPrefix(d, flowGap):
		return
	case bytes.HasPrefix(d, flowErr):
		var e struct {
			Seq   int                 `json:"seq"`
			Error *jetstream.APIError `json:"error"`
		}
		if json.Unmarshal(d, &e) == nil && e.Error != nil {
			r.fail(e.Seq, e.Error)
		}
		return
	}
	if err := ackError(m, r.stream); err != nil {
		r.refused(seq, err)
		return
	}
	var ack struct {
		Batch string `json:"batch"`
		Count int    `json:"count"`
	}
	if json.Unmarshal(d, &ack) != nil || ack.Batch != r.bid {
		r.fail(seq, jetstream.ErrInvalidJSAck)
		return
	}
	r.end(ack.Count, errBatchEnded)
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
