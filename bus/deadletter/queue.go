package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/internal/backend"
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
	HeaderParkKey  = "Sw-Park-Key"      // the key its stream's later messages are parked under
)

// Errors of a Queue besides *bus.Error and *store.InvalidError.
var (
	// ErrNotFound: no record has the sequence asked for.
	ErrNotFound = errors.New("dead letter not found")
	// ErrParked: the sequence is a message parked behind a dead letter, or
	// a dead letter with messages parked behind it, which only Replay and
	// Discard of the dead letter end.
	ErrParked = errors.New("parked behind a dead letter")
	// ErrNoQueue: Open found no dead-letter stream for the context (no
	// group has run on it yet).
	ErrNoQueue = errors.New("no dead-letter queue")
)

// StreamName is the stream of the named context's dead letters,
// SW_<CONTEXT>_DLQ over swdlq.<context>.<group>.
func StreamName(contextName string) string { return bus.StreamName(contextName) + "_DLQ" }

func subject(contextName, group string) string { return "swdlq." + contextName + "." + group }

// Queue is one context's dead-letter stream: the messages its consumer
// groups gave up on, each with its original subject, headers and data, the
// error and the number of attempts, and the messages parked behind them.
// Nothing leaves it but by Replay, Discard or Delete (and Remove, which
// the replica carrying out a marker calls).
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

	// ParkKey is the key the later messages of its stream are parked
	// under (see Park), 0 when they are not parked; Parked counts them
	// (List fills it in). IsParked says the record is itself a message
	// parked behind the dead letter with ParkKey (as Parked lists them).
	ParkKey  uint64
	Parked   int
	IsParked bool

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

// Open returns the named context's queue as it stands, creating nothing:
// what an operator's tool calls. A context no group has run on yet has no
// queue: ErrNoQueue.
func Open(ctx context.Context, conn *bus.Conn, contextName string) (*Queue, error) {
	if err := store.CheckName("context", contextName); err != nil {
		return nil, err
	}
	js, err := conn.JetStream().Stream(ctx, StreamName(contextName))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("deadletter: context %s: %w", contextName, ErrNoQueue)
	}
	if err != nil {
		return nil, &bus.Error{Op: "open stream " + StreamName(contextName), URL: conn.Server(), Err: err}
	}
	return &Queue{conn: conn, contextName: contextName, js: js}, nil
}

// Record says why a message is dead-lettered.
type Record struct {
	Group    string // the consumer group that gives up
	Cause    error  // the last error
	Attempts int    // how often it was tried
	// ParkKey, when not 0, is the key the later messages of its stream are
	// parked under (Park) until it is replayed or discarded.
	ParkKey uint64
	// Replaces is the dead letter this one replaces (it failed again when
	// replayed), 0 for none.
	Replaces uint64
}

// Put stores d as given up by r.Group and waits for JetStream's ack.
// Putting the same delivery again (after a crash before it was settled)
// stores it once.
func (q *Queue) Put(ctx context.Context, d *consumer.Delivery, r Record) error {
	if err := store.CheckName("group", r.Group); err != nil {
		return err
	}
	msg := "(none)"
	if r.Cause != nil {
		msg = r.Cause.Error()
	}
	if len(msg) > 4096 {
		msg = msg[:4096] + "…"
	}
	id := "dead:" + r.Group + ":" + strconv.FormatUint(d.Seq, 10)
	if r.Replaces != 0 {
		id += ":" + strconv.FormatUint(r.Replaces, 10)
	}
	h := original(d, r.Group, id)
	h.Set(HeaderError, msg)
	h.Set(HeaderAttempts, strconv.Itoa(r.Attempts))
	if r.ParkKey != 0 {
		h.Set(HeaderParkKey, strconv.FormatUint(r.ParkKey, 10))
	}
	m := &nats.Msg{Subject: subject(q.contextName, r.Group), Header: h, Data: d.Data}
	if _, err := q.conn.JetStream().PublishMsg(ctx, m); err != nil {
		return &bus.Error{Op: "dead-letter message " + strconv.FormatUint(d.Seq, 10) + " of group " + r.Group, URL: q.conn.Server(), Err: err}
	}
	return nil
}

// original is d's headers for keeping in the queue: the message's own,
// with where it came from, when, and msgID for JetStream's
// de-duplication.
func original(d *consumer.Delivery, group, msgID string) nats.Header {
	h := make(nats.Header, len(d.Header)+8)
	for k, v := range d.Header {
		switch k {
		case jetstream.MsgIDHeader, bus.HeaderReplayGroup, HeaderReplayOf, HeaderReplayAction, consumer.HeaderPinID:
		default:
			h[k] = v
		}
	}
	h.Set(HeaderGroup, group)
	h.Set(HeaderSubject, d.Subject)
	h.Set(HeaderSeq, strconv.FormatUint(d.Seq, 10))
	h.Set(HeaderAt, time.Now().UTC().Format(time.RFC3339Nano))
	h.Set(jetstream.MsgIDHeader, msgID)
	return h
}

// List returns up to limit dead letters of group ("" for every group) with
// a sequence of at least from, oldest first, each with the count of the
// messages parked behind it.
func (q *Queue) List(ctx context.Context, group string, from uint64, limit int) ([]Letter, error) {
	filter, parked := "swdlq."+q.contextName+".*", "swdlq."+q.contextName+".*.*"
	if group != "" {
		if err := store.CheckName("group", group); err != nil {
			return nil, err
		}
		filter, parked = subject(q.contextName, group), subject(q.contextName, group)+".*"
	}
	out, err := q.scan(ctx, filter, from, limit)
	if err != nil || len(out) == 0 {
		return out, err
	}
	counts, err := q.counts(ctx, parked)
	if err != nil {
		return out, err
	}
	for i, dl := range out {
		if dl.ParkKey != 0 {
			out[i].Parked = int(counts[parkSubject(q.contextName, dl.Group, dl.ParkKey)])
		}
	}
	return out, nil
}

// scan returns up to limit messages on filter from sequence from on.
func (q *Queue) scan(ctx context.Context, filter string, from uint64, limit int) ([]Letter, error) {
	if err := backend.CheckLimit(limit); err != nil {
		return nil, err
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

// counts counts the messages on each subject filter matches.
// Count is how many messages one group has in the queue: dead letters,
// and messages parked behind them.
type Count struct {
	Dead, Parked int
}

// Counts returns every group's Count, by group, from the stream's subject
// counts: one request, whatever the size of the queue.
func (q *Queue) Counts(ctx context.Context) (map[string]Count, error) {
	subjects, err := q.counts(ctx, "swdlq."+q.contextName+".>")
	if err != nil {
		return nil, err
	}
	out := map[string]Count{}
	prefix := "swdlq." + q.contextName + "."
	for subj, n := range subjects {
		group, _, parked := strings.Cut(strings.TrimPrefix(subj, prefix), ".")
		c := out[group]
		if parked {
			c.Parked += int(n)
		} else {
			c.Dead += int(n)
		}
		out[group] = c
	}
	return out, nil
}

func (q *Queue) counts(ctx context.Context, filter string) (map[string]uint64, error) {
	info, err := q.js.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, &bus.Error{Op: "count the dead letters of " + q.contextName, URL: q.conn.Server(), Err: err}
	}
	return info.State.Subjects, nil
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

// Delete removes dead letter seq for good. A dead letter that parks its
// stream's later messages, and a message parked behind one, are ErrParked:
// Discard the dead letter, and its group's replica releases or drops them
// in order.
func (q *Queue) Delete(ctx context.Context, seq uint64) error {
	dl, err := q.Get(ctx, seq)
	if err != nil {
		return err
	}
	if dl.ParkKey != 0 {
		return fmt.Errorf("deadletter: record %d of %s: %w: discard its dead letter", seq, q.contextName, ErrParked)
	}
	return q.Remove(ctx, seq)
}

// Remove removes record seq without the checks of Delete: what the
// replica carrying out a marker calls as it goes. Applications call
// Replay, Discard or Delete.
func (q *Queue) Remove(ctx context.Context, seq uint64) error {
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
	dl.ParkKey, _ = strconv.ParseUint(h.Get(HeaderParkKey), 10, 64)
	dl.IsParked = strings.Count(raw.Subject, ".") > 2 // swdlq.<context>.<group>.<park key>
	dl.Attempts, _ = strconv.Atoi(h.Get(HeaderAttempts))
	dl.At, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderAt))
	dl.Event, _, dl.DecodeErr = bus.Decode(&nats.Msg{Subject: dl.Subject, Header: h, Data: raw.Data})
	return dl
}
