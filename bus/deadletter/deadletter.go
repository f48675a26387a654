package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/store"
)

// Headers of a dead letter, added to the original message's own.
const (
	HeaderGroup    = "Sw-Dead-Group"    // the consumer group that gave up
	HeaderSubject  = "Sw-Dead-Subject"  // the subject it was delivered on
	HeaderSeq      = "Sw-Dead-Seq"      // its sequence in the context's stream
	HeaderError    = "Sw-Dead-Error"    // the last error
	HeaderAttempts = "Sw-Dead-Attempts" // how often it was tried
	HeaderAt       = "Sw-Dead-At"       // when it was dead-lettered (RFC 3339)
)

// ErrNotFound: no dead letter has the sequence asked for.
var ErrNotFound = errors.New("dead letter not found")

// StreamName is the stream of the named context's dead letters,
// SW_<CONTEXT>_DLQ over swdlq.<context>.<group>.
func StreamName(contextName string) string { return bus.StreamName(contextName) + "_DLQ" }

func subject(contextName, group string) string { return "swdlq." + contextName + "." + group }

// Queue is one context's dead-letter stream: the messages its consumer
// groups gave up on, each with its original subject, headers and data, the
// error and the number of attempts. Nothing leaves it but by Replay or
// Delete.
type Queue struct {
	conn        *bus.Conn
	contextName string
	js          jetstream.Stream
}

// Letter is one message a consumer group gave up on.
type Letter struct {
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

// Provision provisions the dead-letter stream of the named context (the
// replicas and storage of its event stream, no age limit) and returns it.
// It is idempotent and safe to call from many processes at once.
func Provision(ctx context.Context, conn *bus.Conn, contextName string) (*Queue, error) {
	if err := store.CheckName("context", contextName); err != nil {
		return nil, err
	}
	cfg := conn.StreamConfig(contextName).JetStream(StreamName(contextName),
		"Switchyard dead letters of context "+contextName, "swdlq."+contextName+".>")
	js, err := conn.JetStream().CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, &bus.Error{Op: "provision stream " + cfg.Name, URL: conn.Server(), Err: err}
	}
	return &Queue{conn: conn, contextName: contextName, js: js}, nil
}

// Put stores d as given up by group after attempts tries, because of
// cause, and waits for JetStream's ack. Putting the same delivery again
// (after a crash before it was settled) stores it once.
func (q *Queue) Put(ctx context.Context, d *consumer.Delivery, group string, cause error, attempts int) error {
	if err := store.CheckName("group", group); err != nil {
		return err
	}
	h := make(nats.Header, len(d.Header)+6)
	for k, v := range d.Header {
		if k != jetstream.MsgIDHeader && k != bus.HeaderReplayGroup {
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
	h.Set(HeaderGroup, group)
	h.Set(HeaderSubject, d.Subject)
	h.Set(HeaderSeq, strconv.FormatUint(d.Seq, 10))
	h.Set(HeaderError, msg)
	h.Set(HeaderAttempts, strconv.Itoa(attempts))
	h.Set(HeaderAt, time.Now().UTC().Format(time.RFC3339Nano))
	h.Set(jetstream.MsgIDHeader, "dead:"+group+":"+strconv.FormatUint(d.Seq, 10))
	m := &nats.Msg{Subject: subject(q.contextName, group), Header: h, Data: d.Data}
	if _, err := q.conn.JetStream().PublishMsg(ctx, m); err != nil {
		return &bus.Error{Op: "dead-letter message " + strconv.FormatUint(d.Seq, 10) + " of group " + group, URL: q.conn.Server(), Err: err}
	}
	return nil
}

// List returns up to limit dead letters of group ("" for every group) with
// a sequence of at least from, oldest first.
func (q *Queue) List(ctx context.Context, group string, from uint64, limit int) ([]Letter, error) {
	filter := "swdlq." + q.contextName + ".>"
	if group != "" {
		if err := store.CheckName("group", group); err != nil {
			return nil, err
		}
		filter = subject(q.contextName, group)
	}
	if limit < 1 || limit > store.MaxReadLimit {
		return nil, &store.InvalidError{Field: "limit", Value: strconv.Itoa(limit), Reason: "want 1 to " + strconv.Itoa(store.MaxReadLimit)}
	}
	var out []Letter
	for seq := max(from, 1); len(out) < limit; {
		raw, err := q.js.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, &bus.Error{Op: "list dead letters of " + q.contextName, URL: q.conn.Server(), Err: err}
		}
		out = append(out, parse(raw))
		seq = raw.Sequence + 1
	}
	return out, nil
}

// Get returns the dead letter with sequence seq; ErrNotFound when
// there is none.
func (q *Queue) Get(ctx context.Context, seq uint64) (Letter, error) {
	raw, err := q.js.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Letter{}, fmt.Errorf("deadletter: dead letter %d of %s: %w", seq, q.contextName, ErrNotFound)
	}
	if err != nil {
		return Letter{}, &bus.Error{Op: "read dead letter " + strconv.FormatUint(seq, 10) + " of " + q.contextName, URL: q.conn.Server(), Err: err}
	}
	return parse(raw), nil
}

// Replay publishes dead letter seq again on its original subject, for its
// group only (other groups pass it by), and then deletes it. It lands at the
// end of its partition, after the events that overtook it while it was dead.
func (q *Queue) Replay(ctx context.Context, seq uint64) error {
	dl, err := q.Get(ctx, seq)
	if err != nil {
		return err
	}
	h := make(nats.Header, len(dl.Header))
	for k, v := range dl.Header {
		switch k {
		case HeaderGroup, HeaderSubject, HeaderSeq, HeaderError, HeaderAttempts, HeaderAt, jetstream.MsgIDHeader:
		default:
			h[k] = v
		}
	}
	h.Set(bus.HeaderReplayGroup, dl.Group)
	h.Set(jetstream.MsgIDHeader, "replay:"+q.contextName+":"+strconv.FormatUint(seq, 10))
	if _, err := q.conn.JetStream().PublishMsg(ctx, &nats.Msg{Subject: dl.Subject, Header: h, Data: dl.Data}); err != nil {
		return &bus.Error{Op: "replay dead letter " + strconv.FormatUint(seq, 10) + " of " + q.contextName, URL: q.conn.Server(), Err: err}
	}
	return q.Delete(ctx, seq)
}

// Delete removes dead letter seq for good.
func (q *Queue) Delete(ctx context.Context, seq uint64) error {
	err := q.js.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		// The server answers a deletion of a missing message with a
		// failed deletion (10057): ask whether it is there.
		if _, gerr := q.js.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			err = jetstream.ErrMsgNotFound
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("deadletter: dead letter %d of %s: %w", seq, q.contextName, ErrNotFound)
	}
	if err != nil {
		return &bus.Error{Op: "delete dead letter " + strconv.FormatUint(seq, 10) + " of " + q.contextName, URL: q.conn.Server(), Err: err}
	}
	return nil
}

func parse(raw *jetstream.RawStreamMsg) Letter {
	h := raw.Header
	dl := Letter{
		Seq:     raw.Sequence,
		Group:   h.Get(HeaderGroup),
		Subject: h.Get(HeaderSubject),
		Error:   h.Get(HeaderError),
		Header:  h,
		Data:    raw.Data,
	}
	dl.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderSeq), 10, 64)
	dl.Attempts, _ = strconv.Atoi(h.Get(HeaderAttempts))
	dl.At, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderAt))
	dl.Event, _, dl.DecodeErr = bus.Decode(&nats.Msg{Subject: dl.Subject, Header: h, Data: raw.Data})
	return dl
}
