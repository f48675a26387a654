package jspub

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Errors a message's outcome can be, besides the server's own
// (*jetstream.APIError) and nats.ErrNoResponders.
var (
	// ErrNoAck: no answer from JetStream came in time.
	ErrNoAck = errors.New("no ack from JetStream in time")
	// ErrBatchEnded: the message came after the last one of its run the
	// server took; it ended the run there (it refused the next one) and
	// dropped the rest.
	ErrBatchEnded = errors.New("JetStream ended the batch before this message")
)

// ErrCodeBatchDisabled is JetStream's error code for a fast batch sent to
// a stream that does not allow them.
const ErrCodeBatchDisabled jetstream.ErrorCode = 10205

// Publisher sends batches over one connection and collects their answers.
type Publisher struct {
	nc     *nats.Conn
	prefix string // the connection's inbox: "_INBOX.<nuid>."
	token  string // unique to this publisher: fast batch ids start with it
	sub    *nats.Subscription

	mu      sync.Mutex
	next    uint64
	batches map[uint64]*Batch
	runs    map[uint64]*Run
}

// New subscribes to the answers on nc and returns the publisher. Call
// FailAll when nc loses its connection, and Close when done.
func New(nc *nats.Conn) (*Publisher, error) {
	p := &Publisher{nc: nc, prefix: nc.NewInbox() + ".", token: nuid.Next(),
		batches: make(map[uint64]*Batch), runs: make(map[uint64]*Run)}
	sub, err := nc.Subscribe(p.prefix+">", p.receive)
	if err != nil {
		return nil, err
	}
	// A dropped answer would only cost a timeout and a publish again, but
	// there is no reason to drop any.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		sub.Unsubscribe() //nolint:errcheck // failing anyway
		return nil, err
	}
	p.sub = sub
	return p, nil
}

// Close stops receiving answers; batches still waiting get none.
func (p *Publisher) Close() error {
	err := p.sub.Unsubscribe()
	if errors.Is(err, nats.ErrConnectionClosed) {
		return nil
	}
	return err
}

// Open counts the batches and runs awaiting answers.
func (p *Publisher) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.batches) + len(p.runs)
}

// FailAll gives up on every batch's unanswered messages, which meet err:
// the connection that carried them is gone, and their answers with it.
func (p *Publisher) FailAll(err error) {
	p.mu.Lock()
	open := make([]*Batch, 0, len(p.batches))
	for _, b := range p.batches {
		open = append(open, b)
	}
	runs := make([]*Run, 0, len(p.runs))
	for _, r := range p.runs {
		runs = append(runs, r)
	}
	p.mu.Unlock()
	for _, r := range runs {
		r.end(0, err) // nothing more goes into them
	}
	for _, b := range open {
		b.fail(err)
	}
}

func (p *Publisher) add(n int, stream []byte, r *Run) *Batch {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	b := &Batch{p: p, id: p.next, stream: stream, run: r,
		errs: make([]error, n), got: make([]bool, n), done: make(chan struct{})}
	b.prefix = p.prefix + strconv.FormatUint(b.id, 10) + "."
	p.batches[b.id] = b
	return b
}

func (p *Publisher) forget(b *Batch) {
	p.mu.Lock()
	delete(p.batches, b.id)
	p.mu.Unlock()
}

// receive handles an answer: its subject is the inbox, a batch or run id
// and an index (a run's carries the fast batch's own tokens too).
func (p *Publisher) receive(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, p.prefix)
	if !ok {
		return
	}
	ids, idx, ok := strings.Cut(rest, ".")
	if !ok {
		return
	}
	id, err1 := strconv.ParseUint(ids, 10, 64)
	if idx, fast := strings.CutSuffix(idx, fastSuffix); fast {
		seq, err2 := runSeq(idx)
		if err1 != nil || err2 != nil {
			return
		}
		p.mu.Lock()
		r := p.runs[id]
		p.mu.Unlock()
		if r != nil {
			r.answer(seq, m)
		}
		return
	}
	i, err2 := strconv.Atoi(idx)
	if err1 != nil || err2 != nil {
		return
	}
	p.mu.Lock()
	b := p.batches[id]
	p.mu.Unlock()
	if b != nil {
		b.answer(i, ackError(m, b.stream))
	}
}

var errorKey = []byte(`"error"`)

// ackError reads the answer to a publish: nil for a PubAck from the
// stream (streamKey is its `"stream":"<name>"`; a duplicate is a PubAck
// too), the API error it carries, no responders, or, for anything else
// (another responder on the subject), an error: only JetStream's word
// counts.
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
	if want := streamKeyOf(resp.Stream); resp.Stream == "" || !bytes.Equal(want, streamKey) {
		return jetstream.ErrInvalidJSAck
	}
	return nil
}

// streamKeyOf is what a PubAck of stream carries: `"stream":"<name>"`.
func streamKeyOf(stream string) []byte { return []byte(`"stream":` + strconv.Quote(stream)) }

// IsTooLarge reports JetStream, or the connection, refusing a message for
// its size.
func IsTooLarge(err error) bool {
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) && jsErr.APIError() != nil {
		return jsErr.APIError().ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
	}
	return errors.Is(err, nats.ErrMaxPayload)
}
