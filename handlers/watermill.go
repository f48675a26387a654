package handlers

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/envelope"
	"github.com/switchyard-go/switchyard/store"
)

// Watermill lets a watermill message.HandlerMiddleware sit in a Switchyard
// chain (see the package doc on what it sees and what reaches the rest of
// the chain):
//
//	h := handlers.Chain(handle,
//		handlers.Recover(),
//		handlers.Watermill(middleware.Timeout(5*time.Second)),
//		handlers.Correlate(),
//	)
//
// The middleware's error is the chain's. A nil mw fails every message with
// a permanent error.
func Watermill(mw message.HandlerMiddleware) Middleware {
	return func(next Handler) Handler {
		if mw == nil {
			return failing(errors.New("handlers: Watermill: nil message.HandlerMiddleware"))
		}
		wrapped := mw(func(msg *message.Message) ([]*message.Message, error) {
			m, ok := msg.Context().Value(watermillKey{}).(Message)
			if !ok {
				return nil, Permanent(fmt.Errorf("handlers: Watermill: message %q reached the chain without its context: the watermill middleware must pass on msg.Context()", msg.UUID))
			}
			return nil, next(msg.Context(), m)
		})
		if wrapped == nil {
			return failing(errors.New("handlers: Watermill: the message.HandlerMiddleware returned a nil handler"))
		}
		return func(ctx context.Context, m Message) error {
			wm := message.NewMessageWithContext(context.WithValue(ctx, watermillKey{}, m), m.Event.ID.String(), message.Payload(m.Event.Data))
			for k, v := range m.Event.Metadata {
				wm.Metadata[k] = v
			}
			_, err := wrapped(wm)
			return err
		}
	}
}

// watermillKey carries, in the watermill message's context, the Message
// Watermill passes on.
type watermillKey struct{}

// failing is a Handler that fails every message with err, permanently.
func failing(err error) Handler {
	return func(context.Context, Message) error { return Permanent(err) }
}

// WatermillHandler runs h, a Switchyard handler with its chain, under a
// watermill message.Router (see the package doc for how a watermill
// message becomes a Message); group names the group, groupContext the
// bounded context whose store Shard opens:
//
//	h := handlers.Chain(charge, handlers.Recover(), handlers.Correlate())
//	fn, err := handlers.WatermillHandler(h, "billing-charges", "billing")
//	router.AddConsumerHandler("billing-charges", "visits", sub, fn)
//
// A message whose well-known keys are missing or do not parse fails with
// a permanent *store.InvalidError naming the key: give the router a poison
// queue for those, middleware.PoisonQueueWithFilter(pub, topic,
// handlers.IsPermanent). h is called concurrently when the router runs
// handlers concurrently. The error reports every problem of the arguments
// at once.
func WatermillHandler(h Handler, group, groupContext string) (message.NoPublishHandlerFunc, error) {
	var errs []error
	if h == nil {
		errs = append(errs, errors.New("handlers: WatermillHandler: nil handler"))
	}
	if err := store.CheckName("group", group); err != nil {
		errs = append(errs, fmt.Errorf("handlers: WatermillHandler: %w", err))
	}
	if err := store.CheckName("context", groupContext); err != nil {
		errs = append(errs, fmt.Errorf("handlers: WatermillHandler: group %q: %w", group, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return func(msg *message.Message) error {
		ev, err := watermillEvent(msg)
		if err != nil {
			return Permanent(fmt.Errorf("handlers: watermill message %q: %w", msg.UUID, err))
		}
		m := Message{
			Event:   ev,
			Source:  ev.Metadata.Get(correlation.Context),
			Shard:   ev.Metadata.Get(correlation.Shard),
			Group:   group,
			Context: groupContext,
			Attempt: 1,
		}
		return h(msg.Context(), m)
	}, nil
}

// watermillEvent rebuilds the event a watermill message carries, checking
// its well-known keys as bus.Decode checks headers.
func watermillEvent(msg *message.Message) (store.Event, error) {
	md := make(correlation.Metadata, len(msg.Metadata)+1)
	for k, v := range msg.Metadata {
		md[k] = v
	}
	get := func(k correlation.Key) string { return md[string(k)] }
	if get(correlation.EventID) == "" {
		id, err := uuid.Parse(msg.UUID)
		if err != nil {
			return store.Event{}, &store.InvalidError{Field: "metadata " + string(correlation.EventID), Reason: "missing, and the message UUID " + strconv.Quote(msg.UUID) + " is not a UUID"}
		}
		md.Set(correlation.EventID, id.String()) // so that Correlate makes it the causation
	}
	ev, err := envelope.Parse(get, "metadata")
	if err != nil {
		return store.Event{}, err
	}
	ev.Type, ev.Data, ev.Metadata = get(correlation.EventType), []byte(msg.Payload), md
	if err := store.CheckType(ev.Type); err != nil {
		return store.Event{}, &store.InvalidError{Field: "metadata " + string(correlation.EventType), Value: ev.Type, Reason: err.Error()}
	}
	return ev, nil
}
