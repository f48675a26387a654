package handlers

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
)

// Watermill lets a watermill message.HandlerMiddleware (middleware.Timeout,
// middleware.Retry, middleware.CorrelationID, middleware.Recoverer, a
// poison queue, your own) sit in a Switchyard chain:
//
//	h := handlers.Chain(handle,
//		handlers.Recover(),
//		handlers.Watermill(middleware.Timeout(5*time.Second)),
//		handlers.Correlate(),
//	)
//
// For each message the middleware sees a fresh *message.Message: UUID = the
// event's ID, Payload = its data, Metadata = a copy of its metadata, and
// context = the chain's ctx. When the middleware calls on, the rest of the
// chain runs with the watermill message's context as its ctx, so a
// middleware that replaces it (middleware.Timeout sets a deadline) is
// honoured; the Message itself goes on unchanged: what the middleware does
// to the watermill message's UUID, payload or metadata is not seen inward,
// and nothing of it reaches a later attempt. A middleware that drops the
// context (a message.Message.Copy passed on) fails the message with a
// permanent error, since ctx carries what the chain put there (the
// correlation, the shard, the store and its transaction).
//
// mw is applied once, when the chain is built, like a watermill router
// does: a middleware that keeps state per handler (a Deduplicator, a
// CircuitBreaker) keeps it across messages.
//
// The rest of the chain produces no messages, and messages the middleware
// produces itself are dropped: a handler's events are appended to the
// store (handlers.Store), which publishes them through its outbox.
//
// The middleware's error is the chain's. Watermill's own middleware knows
// nothing of Permanent and Transient: give middleware.Retry a ShouldRetry
// that returns !handlers.IsPermanent(p.Err), or use this package's Retry.
// A nil mw fails every message with a permanent error.
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
// watermill message.Router, on messages whose metadata holds the
// well-known keys (correlation.Keys) an event travels with:
//
//	h := handlers.Chain(charge, handlers.Recover(), handlers.Correlate())
//	fn, err := handlers.WatermillHandler(h, "billing-charges", "billing")
//	if err != nil { ... }
//	router.AddConsumerHandler("billing-charges", "visits", sub, fn)
//
// Each message becomes a Message: Event.ID from event_id (or the message
// UUID when it has none and the UUID is one), Type from event_type, Stream,
// Version, Position and RecordedAt (RFC 3339) from stream, stream_version,
// position and recorded_at, Data = the payload and Metadata = every
// metadata key; Source and Shard from context and shard; Group = group and
// Context = groupContext, the bounded context whose store Shard opens;
// Attempt 1, since watermill does not count redeliveries. ctx is the
// message's context. Partition, Subject and Seq, which are JetStream's,
// stay zero, and DeadLetter, which needs a JetStream delivery, passes
// errors through.
//
// A message whose keys are missing or do not parse is not handled: the
// error, a *store.InvalidError naming the key and its value, is permanent
// (IsPermanent). The watermill router nacks a message whose handler
// failed and the subscriber redelivers it, so give the router a poison
// queue for those: middleware.PoisonQueueWithFilter(pub, topic,
// handlers.IsPermanent).
//
// The Group type registers handlers for a JetStream Router; to run typed
// handlers here, build h with Chain over your own dispatch. h is called
// concurrently when the watermill router runs handlers concurrently.
//
// The error reports every problem of the arguments, joined: a nil h, a
// bad group name or context name.
func WatermillHandler(h Handler, group, groupContext string) (message.NoPublishHandlerFunc, error) {
	var errs []error
	if h == nil {
		errs = append(errs, errors.New("handlers: WatermillHandler: nil handler"))
	}
	if err := store.CheckGroupName(group); err != nil {
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
// its well-known keys as bus.Decode checks headers (bus.ParseEnvelope).
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
	ev, err := bus.ParseEnvelope(get, "metadata")
	if err != nil {
		return store.Event{}, err
	}
	ev.Type, ev.Data, ev.Metadata = get(correlation.EventType), []byte(msg.Payload), md
	if err := store.CheckType(ev.Type); err != nil {
		return store.Event{}, &store.InvalidError{Field: "metadata " + string(correlation.EventType), Value: ev.Type, Reason: err.Error()}
	}
	return ev, nil
}
