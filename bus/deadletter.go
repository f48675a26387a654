package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/store"
)

// Dead-letter headers, added to the original message's own.
const (
	HeaderDeadGroup    = "Sw-Dead-Group"    // the consumer group that gave up
	HeaderDeadSubject  = "Sw-Dead-Subject"  // the subject it was delivered on
	HeaderDeadSeq      = "Sw-Dead-Seq"      // its sequence in the context's stream
	HeaderDeadError    = "Sw-Dead-Error"    // the last error
	HeaderDeadAttempts = "Sw-Dead-Attempts" // how often it was tried
	HeaderDeadAt       = "Sw-Dead-At"       // when it was dead-lettered (RFC 3339)
)

// ErrDeadLetterNotFound: no dead letter has the sequence asked for.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// DeadLetterStreamName is the stream of context's dead letters,
// SW_<CONTEXT>_DLQ over swdlq.<context>.<group>.
func DeadLetterStreamName(context string) string { return StreamName(context) + "_DLQ" }

func deadLetterSubject(context, group string) string { return "swdlq." + context + "." + group }

// DeadLetters is one context's dead-letter stream: the messages its consumer
// groups gave up on, each with its original subject, headers and data, the
// error and the number of attempts. Nothing leaves it but by Replay or
// Delete.
type DeadLetters struct {
	conn    *Conn
	context string
	js      jetstream.Stream
}

// DeadLetter is one message a consumer group gave up on.
type DeadLetter struct {
	Seq       uint64 // in the dead-letter stream
	Group     string
	Subject   string // where it was delivered
	StreamSeq uint64 // its sequence in the context's stream
	Error     string
	Attempts  int
	At        time.Time
	Header    nats.Header // the original headers (event metadata)
	Data      []byte

	// Event is the decoded event; DecodeErr says why there is none (a
	// refused, forged message).
	Event     store.Event
	DecodeErr error
}

// DeadLetters provisions context's dead-letter stream (same replicas and
// storage as its stream, no age limit) and returns it.
func (c *Conn) DeadLetters(ctx context.Context, context string) (*DeadLetters, error) {
	if err := store.CheckName("context", context); err != nil {
		return nil, err
	}
	c.mu.Lock()
	q, ok := c.dead[context]
	c.mu.Unlock()
	if ok {
		return q, nil
	}
	sc := c.cfg.streamConfig(context)
	cfg := jetstream.StreamConfig{
		Name:        DeadLetterStreamName(context),
		Description: "Switchyard dead letters of context " + context,
		Subjects:    []string{"swdlq." + context + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    sc.Replicas,
		Duplicates:  sc.Duplicates,
		Retention:   jetstream.LimitsPolicy,
	}
	if sc.Storage == "memory" {
		cfg.Storage = jetstream.MemoryStorage
	}
	js, err := c.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, &Error{Op: "provision stream " + cfg.Name, URL: c.url, Err: err}
	}
	q = &DeadLetters{conn: c, context: context, js: js}
	c.mu.Lock()
	if c.dead == nil {
		c.dead = make(map[string]*DeadLetters)
	}
	c.dead[context] = q
	c.mu.Unlock()
	return q, nil
}

// Put stores d as given up by group after attempts tries, because of
// cause, and waits for JetStream's ack. Putting the same delivery again
// (after a crash before it was settled) stores it once.
func (q *DeadLetters) Put(ctx context.Context, d *Delivery, group string, cause error, attempts int) error {
	if err := store.CheckGroupName(group); err != nil {
		return err
	}
	h := make(nats.Header, len(d.Header)+6)
	for k, v := range d.Header {
		if k != jetstream.MsgIDHeader && k != HeaderReplayGroup {
			h[k] = v
		}
	}
	msg := "(none)"
	if cause != nil {
		msg = cause.Error()
	}
	if len(msg) > 4096 {
		msg = msg[:4096] + "…"
	}
	h.Set(HeaderDeadGroup, group)
	h.Set(HeaderDeadSubject, d.Subject)
	h.Set(HeaderDeadSeq, strconv.FormatUint(d.Seq, 10))
	h.Set(HeaderDeadError, msg)
	h.Set(HeaderDeadAttempts, strconv.Itoa(attempts))
	h.Set(HeaderDeadAt, time.Now().UTC().Format(time.RFC3339Nano))
	h.Set(jetstream.MsgIDHeader, "dead:"+group+":"+strconv.FormatUint(d.Seq, 10))
	m := &nats.Msg{Subject: deadLetterSubject(q.context, group), Header: h, Data: d.Data}
	if _, err := q.conn.js.PublishMsg(ctx, m); err != nil {
		return &Error{Op: "dead-letter message " + strconv.FormatUint(d.Seq, 10) + " of group " + group, URL: q.conn.url, Err: err}
	}
	return nil
}

// List returns up to limit dead letters of group ("" for every group) with
// a sequence of at least from, oldest first.
func (q *DeadLetters) List(ctx context.Context, group string, from uint64, limit int) ([]DeadLetter, error) {
	filter := "swdlq." + q.context + ".>"
	if group != "" {
		if err := store.CheckGroupName(group); err != nil {
			return nil, err
		}
		filter = deadLetterSubject(q.context, group)
	}
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	var out []DeadLetter
	for seq := max(from, 1); len(out) < limit; {
		raw, err := q.js.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, &Error{Op: "list dead letters of " + q.context, URL: q.conn.url, Err: err}
		}
		out = append(out, parseDeadLetter(raw))
		seq = raw.Sequence + 1
	}
	return out, nil
}

// Get returns the dead letter with sequence seq; ErrDeadLetterNotFound when
// there is none.
func (q *DeadLetters) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	raw, err := q.js.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("bus: dead letter %d of %s: %w", seq, q.context, ErrDeadLetterNotFound)
	}
	if err != nil {
		return DeadLetter{}, &Error{Op: "read dead letter " + strconv.FormatUint(seq, 10) + " of " + q.context, URL: q.conn.url, Err: err}
	}
	return parseDeadLetter(raw), nil
}

// Replay publishes dead letter seq again on its original subject, for its
// group only (other groups pass it by), and then deletes it. It lands at the
// end of its partition, after the events that overtook it while it was dead.
func (q *DeadLetters) Replay(ctx context.Context, seq uint64) error {
	dl, err := q.Get(ctx, seq)
	if err != nil {
		return err
	}
	h := make(nats.Header, len(dl.Header))
	for k, v := range dl.Header {
		switch k {
		case HeaderDeadGroup, HeaderDeadSubject, HeaderDeadSeq, HeaderDeadError, HeaderDeadAttempts, HeaderDeadAt, jetstream.MsgIDHeader:
		default:
			h[k] = v
		}
	}
	h.Set(HeaderReplayGroup, dl.Group)
	h.Set(jetstream.MsgIDHeader, "replay:"+q.context+":"+strconv.FormatUint(seq, 10))
	if _, err := q.conn.js.PublishMsg(ctx, &nats.Msg{Subject: dl.Subject, Header: h, Data: dl.Data}); err != nil {
		return &Error{Op: "replay dead letter " + strconv.FormatUint(seq, 10) + " of " + q.context, URL: q.conn.url, Err: err}
	}
	return q.Delete(ctx, seq)
}

// Delete removes dead letter seq for good.
func (q *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	err := q.js.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("bus: dead letter %d of %s: %w", seq, q.context, ErrDeadLetterNotFound)
	}
	if err != nil {
		return &Error{Op: "delete dead letter " + strconv.FormatUint(seq, 10) + " of " + q.context, URL: q.conn.url, Err: err}
	}
	return nil
}

func parseDeadLetter(raw *jetstream.RawStreamMsg) DeadLetter {
	h := raw.Header
	dl := DeadLetter{
		Seq:     raw.Sequence,
		Group:   h.Get(HeaderDeadGroup),
		Subject: h.Get(HeaderDeadSubject),
		Error:   h.Get(HeaderDeadError),
		Header:  h,
		Data:    raw.Data,
	}
	dl.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderDeadSeq), 10, 64)
	dl.Attempts, _ = strconv.Atoi(h.Get(HeaderDeadAttempts))
	dl.At, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderDeadAt))
	dl.Event, _, dl.DecodeErr = Decode(&nats.Msg{Subject: dl.Subject, Header: h, Data: raw.Data})
	return dl
}
