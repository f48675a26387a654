package jspub

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Run is consecutive batches sent as one JetStream fast batch: message
// sequences count on from batch to batch. The server answers with flow
// acks (every message up to a sequence is stored) and, at the end, a
// PubAck counting the messages it took; after one it refused it drops the
// rest of the run and ends it.
type Run struct {
	p      *Publisher
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
	b *Batch
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

// Run starts a run to the JetStream stream named stream. flow is the most
// messages the server may take between flow acks.
func (p *Publisher) Run(stream string, flow int) *Run {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	r := &Run{p: p, id: p.next, stream: streamKeyOf(stream)}
	r.bid = p.token + strconv.FormatUint(r.id, 10)
	// <inbox>.<id>.<batch id>.<flow>.fail.<seq>.<op>.$FI
	r.reply = p.prefix + strconv.FormatUint(r.id, 10) + "." + r.bid + "." + strconv.Itoa(min(max(flow, 1), math.MaxUint16)) + ".fail."
	p.runs[r.id] = r
	return r
}

// runSeq reads the sequence out of the part of a run's reply subject after
// its id: <batch id>.<flow>.fail.<seq>.<op>.
func runSeq(s string) (int, error) {
	if j := strings.LastIndexByte(s, '.'); j >= 0 {
		s = s[:j]
	}
	return strconv.Atoi(s[strings.LastIndexByte(s, '.')+1:])
}

// Batch starts a batch of up to n messages in the run.
func (r *Run) Batch(n int) *Batch { return r.p.add(n, r.stream, r) }

// next gives the message i of b the run's next sequence and returns its
// reply subject; last makes it the run's last. It returns false when the
// run has ended (JetStream ended it after a message it refused): the
// message must not be sent, or it could be stored ahead of those the
// server dropped.
func (r *Run) next(b *Batch, i int, subject string, last bool) (reply string, seq int, ok bool) {
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
	case last:
		op, r.closed, r.last = fastCommit, true, r.sent
	case r.sent == 1:
		op = fastStart
	}
	return r.reply + strconv.Itoa(r.sent) + op + fastSuffix, r.sent, true
}

// Commit ends the run after the messages sent: the server answers once it
// stored them. The message that says so reaches plain subscribers of the
// subject (JetStream does not store it), so end a run on its last message
// when you can (Publish with last). Committing a run that ended already
// does nothing.
func (r *Run) Commit() {
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
func (r *Run) sendEnd(seq int) {
	r.mu.Lock()
	r.closed, r.endSeq = true, seq
	m := &nats.Msg{Subject: r.subj, Reply: r.reply + strconv.Itoa(seq) + fastEnd + fastSuffix}
	r.mu.Unlock()
	if err := r.p.nc.PublishMsg(m); err != nil {
		r.end(0, err)
	}
}

// abandon stops tracking the run: nothing more is sent, and answers that
// come later are dropped. Its batches' unanswered messages are left to
// their wait.
func (r *Run) abandon() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.p.mu.Lock()
	delete(r.p.runs, r.id)
	r.p.mu.Unlock()
}

// settle answers the messages of sequences base+1 to upTo: nil up to
// through, err after it.
func (r *Run) settle(through, upTo int, err error) {
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
func (r *Run) fail(seq int, err error) {
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
func (r *Run) refused(seq int, err error) {
	r.fail(seq, err)
	r.mu.Lock()
	end := seq == r.endSeq || seq > r.sent
	last := !end && seq == r.last && r.endSeq == 0
	r.mu.Unlock()
	switch {
	case end: // nothing more will come
		r.end(0, err)
	case seq == 1: // the server never began the batch: the rest is refused
		r.end(0, ErrBatchEnded)
	case last:
		r.sendEnd(seq)
	}
}

// end settles the run: the first count messages were taken, the others
// meet err unless they had an answer already.
func (r *Run) end(count int, err error) {
	r.mu.Lock()
	r.closed = true
	sent := r.sent
	r.mu.Unlock()
	r.settle(count, sent, err)
	r.abandon()
}

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
func (r *Run) answer(seq int, m *nats.Msg) {
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
	r.end(ack.Count, ErrBatchEnded)
}
