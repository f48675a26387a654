package deadletter

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
)

// Headers of a marker: a message on a dead letter's original subject that
// asks its group's replica, in the partition's order, to replay it or to
// discard it.
const (
	HeaderReplayOf     = "Sw-Replay-Of"     // the dead letter's sequence in the queue
	HeaderReplayAction = "Sw-Replay-Action" // an Action
)

// Action is what a marker asks for.
type Action string

// The actions.
const (
	// ActionReplay: handle the dead letter, then the messages parked
	// behind it, in order.
	ActionReplay Action = "replay"
	// ActionRelease: drop the dead letter, handle the messages parked
	// behind it, in order.
	ActionRelease Action = "release"
	// ActionDrop: drop the dead letter and the messages parked behind it.
	ActionDrop Action = "drop"
)

// Followers says what Discard does with the messages parked behind a dead
// letter.
type Followers int

// What Discard does with the followers.
const (
	ReleaseFollowers Followers = iota // they are handled, in order
	DropFollowers                     // they are dropped too
)

// Replay asks the dead letter's group to handle it again and then the
// messages parked behind it, in order; the group's replica removes them as
// it goes. The request travels as a marker on the dead letter's original
// subject, so it is handled in its partition's order, after what is
// parked; the other groups pass it by. Replaying one twice has one effect.
// A dead letter that does not exist is ErrNotFound; a refused message,
// which would only be refused again, cannot be replayed.
func (q *Queue) Replay(ctx context.Context, seq uint64) error {
	dl, err := q.deadLetter(ctx, seq)
	if err != nil {
		return err
	}
	if dl.DecodeErr != nil {
		return fmt.Errorf("deadletter: dead letter %d of %s was refused (%w): discard it", seq, q.contextName, dl.DecodeErr)
	}
	return q.mark(ctx, dl, ActionReplay)
}

// Discard ends the dead letter seq: it is removed, and the messages
// parked behind it are handled in order or dropped, as followers says (by
// the group's replica, in the partition's order, as for Replay). A dead
// letter with nothing parked behind it is removed at once.
func (q *Queue) Discard(ctx context.Context, seq uint64, followers Followers) error {
	dl, err := q.deadLetter(ctx, seq)
	if err != nil {
		return err
	}
	if dl.ParkKey == 0 {
		return q.Remove(ctx, seq)
	}
	action := ActionRelease
	if followers == DropFollowers {
		action = ActionDrop
	}
	return q.mark(ctx, dl, action)
}

// deadLetter returns the dead letter seq: ErrParked for a message parked
// behind one.
func (q *Queue) deadLetter(ctx context.Context, seq uint64) (Letter, error) {
	dl, err := q.Get(ctx, seq)
	if err == nil && dl.IsParked {
		err = fmt.Errorf("deadletter: record %d of %s is a message parked behind dead letter with park key %d: %w: replay or discard that dead letter",
			seq, q.contextName, dl.ParkKey, ErrParked)
	}
	return dl, err
}

// mark publishes the marker asking dl's group for action; it carries
// dl's park key, so that the followers are found after dl is gone.
func (q *Queue) mark(ctx context.Context, dl Letter, action Action) error {
	h := make(nats.Header, len(dl.Header)+3)
	for k, v := range dl.Header {
		switch k {
		case HeaderGroup, HeaderSubject, HeaderSeq, HeaderError, HeaderAttempts, HeaderAt, jetstream.MsgIDHeader, consumer.HeaderPinID:
		default:
			h[k] = v
		}
	}
	h.Set(bus.HeaderReplayGroup, dl.Group)
	h.Set(HeaderReplayOf, strconv.FormatUint(dl.Seq, 10))
	h.Set(HeaderReplayAction, string(action))
	h.Set(jetstream.MsgIDHeader, string(action)+":"+q.contextName+":"+strconv.FormatUint(dl.Seq, 10))
	if _, err := q.conn.JetStream().PublishMsg(ctx, &nats.Msg{Subject: dl.Subject, Header: h, Data: dl.Data}); err != nil {
		return &bus.Error{Op: string(action) + " dead letter " + strconv.FormatUint(dl.Seq, 10) + " of " + q.contextName, URL: q.conn.Server(), Err: err}
	}
	return nil
}

// Request is what a marker asks of its group.
type Request struct {
	Seq     uint64 // the dead letter's sequence in the queue
	Action  Action
	ParkKey uint64 // what its stream's later messages are parked under (0: none)
}

// Marker reads a marker's request from a message's headers; ok is false
// when h is no marker.
func Marker(h nats.Header) (r Request, ok bool) {
	s := h.Get(HeaderReplayOf)
	if s == "" {
		return Request{}, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	action := Action(h.Get(HeaderReplayAction))
	switch action {
	case ActionReplay, ActionRelease, ActionDrop:
	default:
		return Request{}, false
	}
	key, _ := strconv.ParseUint(h.Get(HeaderParkKey), 10, 64)
	return Request{Seq: seq, Action: action, ParkKey: key}, err == nil
}
