package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/switchyard-go/switchyard/store"
)

// Message is what a handler receives: the event and its envelope.
type Message struct {
	// Event is the event as stored: ID, Type, Data, Metadata (every
	// well-known key and the application's), Stream, Version, Position,
	// RecordedAt.
	Event store.Event

	// Source is the bounded context the event was stored in; Shard its
	// shard, taken from the subject; Partition its partition there.
	Source    string
	Shard     string
	Partition int

	// Group is the consumer group handling it and Context the group's own
	// bounded context (Group.Context), whose store for Shard receives the
	// handler's writes.
	Group   string
	Context string

	// Attempt counts the tries of this message by this group, 1 the first
	// time: JetStream's deliveries and the Router's tries again both count.
	Attempt int

	// Subject and Seq locate the message in JetStream.
	Subject string
	Seq     uint64
}

// Handler handles one message. A nil error settles it; an error is retried,
// redelivered or dead-lettered as the chain decides.
type Handler func(ctx context.Context, m Message) error

// Middleware wraps a Handler. In a chain the first listed is the
// outermost: it runs first and sees the error last. A middleware must not
// change what a later attempt sees: it passes derived values (ctx, a copy
// of m) inward.
type Middleware func(Handler) Handler

// Chain wraps h in mws, the first listed outermost.
func Chain(h Handler, mws ...Middleware) Handler {
	for _, mw := range slices.Backward(mws) {
		h = mw(h)
	}
	return h
}

// Group is one consumer group: handlers registered by name for event types,
// consuming one bounded context's events. Every group sees every event of
// its source; the replicas of one group share them.
//
//	g := &handlers.Group{Name: "billing-charges", Context: "billing", Source: "visits"}
//	handlers.Handle(g, "charge", "VisitBooked", func(ctx context.Context, v VisitBooked, m handlers.Message) error { ... })
type Group struct {
	// Name names the durable JetStream consumers and the inbox records:
	// lowercase letters, digits, '_' and '-'. Renaming a group starts it
	// over from the beginning of the stream.
	Name string
	// Context is the group's own bounded context: the Shard middleware
	// opens the transaction on its store for the message's shard.
	Context string
	// Source is the bounded context whose events the group consumes
	// (default Context).
	Source string
	// Middleware runs inside the router's chain, for this group only.
	Middleware []Middleware
	// MaxAttempts is how often a message that fails is tried before it is
	// dead-lettered (0: the router's, RouterConfig.MaxAttempts).
	MaxAttempts int
	// SkipPastDeadLetters lets the later messages of a stream with a dead
	// letter go on to the handlers instead of parking them behind it: for
	// handlers that do not rely on a stream's order.
	SkipPastDeadLetters bool
	// Unbatched gives each message a transaction of its own, committed
	// before the next is handled, instead of sharing one with the other
	// messages of its partition that wait (see the package doc's
	// "Batches"): for handlers whose effects outside the store must not
	// wait for the batch's commit.
	Unbatched bool

	byType map[string][]named
	names  map[string]bool
	errs   []error
}

type named struct {
	name string
	fn   Handler
}

// AllTypes registers a handler for every event type of the group's source.
const AllTypes = "*"

// Handle registers fn as handler name of g for events of eventType (or
// AllTypes), whose data is JSON decoded into a T. Handlers of one type run
// in the order registered, in the same transaction when the chain opens
// one. Problems (a duplicate name, a bad type) are reported by Router.Add.
func Handle[T any](g *Group, name, eventType string, fn func(ctx context.Context, v T, m Message) error) {
	g.add(name, eventType, func(ctx context.Context, m Message) error {
		var v T
		if err := json.Unmarshal(m.Event.Data, &v); err != nil {
			return Permanent(fmt.Errorf("handlers: %s: decode %s %s into %T: %w", name, eventType, m.Event.ID, v, err))
		}
		return fn(ctx, v, m)
	})
}

// HandleMessage registers fn as handler name of g for events of eventType,
// given the message as it is.
func HandleMessage(g *Group, name, eventType string, fn Handler) { g.add(name, eventType, fn) }

func (g *Group) add(name, eventType string, fn Handler) {
	if err := store.CheckName("handler", name); err != nil {
		g.errs = append(g.errs, err)
		return
	}
	if err := store.CheckType(eventType); err != nil && eventType != AllTypes {
		g.errs = append(g.errs, fmt.Errorf("handlers: handler %q: %w", name, err))
		return
	}
	if fn == nil {
		g.errs = append(g.errs, fmt.Errorf("handlers: handler %q: nil function", name))
		return
	}
	if g.names[name+"\x00"+eventType] {
		g.errs = append(g.errs, fmt.Errorf("handlers: group %q: handler %q registered twice for %s", g.Name, name, eventType))
		return
	}
	if g.byType == nil {
		g.byType = map[string][]named{}
		g.names = map[string]bool{}
	}
	g.names[name+"\x00"+eventType] = true
	g.byType[eventType] = append(g.byType[eventType], named{name, fn})
}

// Types lists the event types g handles; nil when a handler takes them
// all.
func (g *Group) Types() []string {
	if _, ok := g.byType[AllTypes]; ok {
		return nil
	}
	out := make([]string, 0, len(g.byType))
	for t := range g.byType {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// source is the context g consumes.
func (g *Group) source() string {
	if g.Source != "" {
		return g.Source
	}
	return g.Context
}

// validate reports every problem of g, joined.
func (g *Group) validate() error {
	errs := slices.Clone(g.errs)
	if err := store.CheckName("group", g.Name); err != nil {
		errs = append(errs, err)
	}
	if err := store.CheckName("context", g.Context); err != nil {
		errs = append(errs, fmt.Errorf("handlers: group %q: %w", g.Name, err))
	}
	if g.Source != "" {
		if err := store.CheckName("context", g.Source); err != nil {
			errs = append(errs, fmt.Errorf("handlers: group %q: source: %w", g.Name, err))
		}
	}
	if g.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("handlers: group %q: MaxAttempts %d is negative", g.Name, g.MaxAttempts))
	}
	if len(g.byType) == 0 {
		errs = append(errs, fmt.Errorf("handlers: group %q has no handlers", g.Name))
	}
	return errors.Join(errs...)
}

// dispatch runs the handlers of m's type, in order.
func (g *Group) dispatch(ctx context.Context, m Message) error {
	for _, t := range [2]string{m.Event.Type, AllTypes} {
		for _, h := range g.byType[t] {
			if err := h.fn(ctx, m); err != nil {
				return &HandlerError{Handler: h.name, Event: m.Event.ID.String(), Err: err}
			}
		}
	}
	return nil
}

// HandlerError is a handler's failure: which handler, on which event.
type HandlerError struct {
	Handler string
	Event   string
	Err     error
}

func (e *HandlerError) Error() string {
	return "handler " + strconv.Quote(e.Handler) + " on event " + e.Event + ": " + e.Err.Error()
}

// Unwrap returns the handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }
