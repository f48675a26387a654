// Package handlers runs application code on the events the relays publish:
// handlers registered in Go, typed with generics, grouped into consumer
// groups, behind a middleware chain, consumed from NATS JetStream by as many
// replicas as you run.
//
// Start with a [Group] and a [Runner]: the runner relays every store of a
// registry and runs the groups added to it.
//
//	g := &handlers.Group{Name: "billing-charges", Context: "billing", Source: "visits"}
//	handlers.Handle(g, "charge", "VisitBooked",
//		func(ctx context.Context, v VisitBooked, m handlers.Message) error {
//			st, _ := handlers.Store(ctx) // billing's store for m.Shard, in the handler's transaction
//			ev, _ := store.NewEvent("VisitCharged", Charge{Visit: v.ID})
//			_, err := st.Append(ctx, "Invoice-"+v.ID, store.Any, ev) // correlation, causation, shard inherited
//			return err
//		})
//	runner, err := handlers.NewRunner(conn, reg, handlers.RunnerConfig{})
//	err = runner.Add(g)
//	err = runner.Run(ctx) // until ctx ends, then drains
//
// # Groups and handlers
//
// A Group is one durable consumer set: two groups each see every event of
// their source context, the replicas of one group share them. Its Context
// is the bounded context it belongs to, whose store receives its writes;
// its Source the context whose events it consumes (by default its own).
// Handlers are registered into it by name for an event type; Handle
// decodes the event's JSON data into a Go value, HandleMessage takes the
// message as it is.
//
// # The chain
//
// Middleware is func(Handler) Handler; in a chain the first listed is the
// outermost. Defaults gives the standard one:
//
//		Trace → DeadLetter → Retry → Recover → Correlate → Shard → Inbox → handlers
//
//	  - Trace: a consumer span, child of the message's traceparent.
//	  - DeadLetter: after a permanent error, or DefaultMaxAttempts attempts,
//	    the message goes to its source context's dead letters (package
//	    bus/deadletter: list, inspect, replay) with its metadata, the error
//	    and the attempt count. Transient errors (a database that is down)
//	    are never dead-lettered: they are retried for as long as they last.
//	  - Retry: tries again in process with backoff; each attempt gets a
//	    fresh transaction because Retry is outside Shard.
//	  - Recover: a panic becomes a *PanicError with the stack.
//	  - Correlate: what the handler appends gets correlation_id = the
//	    message's, causation_id = its event_id, and its tenant and
//	    application metadata (Rails Event Store's CorrelatedHandler).
//	  - Shard: the shard comes from the subject; a message whose shard header
//	    disagrees, or whose shard the group's context does not have, is
//	    refused (*SecurityError, dead-lettered, nothing touched). It opens a
//	    transaction on the group's store for that shard (Rails Event Store's
//	    ShardedHandler); Store(ctx) returns the store, and the backend's
//	    Tx(ctx) the transaction for the application's own SQL.
//	  - Inbox: records (group, event_id) in that transaction and skips an
//	    event the group already handled, so effects happen exactly once on
//	    at-least-once delivery.
//
// Timeout is there to add. A message whose headers disagree with its
// subject never reaches the chain: the router dead-letters it at once.
//
// # Order, scale-out and shutdown
//
// Each group runs on package bus/consumer, whose package doc is where the
// rules are written down: one replica at a time handles a partition, in
// stream order; the replicas share the partitions fairly and hand them over
// keeping their order; a message that keeps failing holds back the later
// messages of its partition in its group until it succeeds or is
// dead-lettered; Router.Run and Runner.Run drain on cancel, so nothing
// waits for AckWait to be redelivered.
//
// # Watermill
//
// [Watermill] puts a watermill message.HandlerMiddleware (Timeout, Retry,
// CorrelationID, Recoverer, a poison queue, your own) in a chain. For each
// message the middleware sees a fresh *message.Message (UUID = the event's
// ID, Payload = its data, Metadata = a copy of its metadata, context = the
// chain's ctx). The rest of the chain runs with the watermill message's
// context as its ctx, so a middleware that replaces it (a deadline) is
// honoured; what it does to the watermill message's UUID, payload or
// metadata is not seen inward, nor by a later attempt. A middleware that
// drops the context (passes on a message.Message.Copy) fails the message
// permanently, since ctx carries the correlation, the shard and the
// transaction. The middleware is applied once, when the chain is built, so
// one that keeps state per handler (a Deduplicator, a CircuitBreaker)
// keeps it across messages. Messages it produces are dropped: a handler's
// events go to its store, and from there through the relay. Watermill's
// own middleware knows nothing of Permanent and Transient: give
// middleware.Retry a ShouldRetry that returns !handlers.IsPermanent(p.Err),
// or use this package's Retry.
//
// The other way round, [WatermillHandler] runs a Switchyard handler and its
// chain under a watermill message.Router, on messages whose metadata holds
// the well-known keys an event travels with. Each becomes a Message:
// Event.ID from event_id (or the message UUID when it has none and the
// UUID is one), Type, Stream, Version, Position and RecordedAt from
// event_type, stream, stream_version, position and recorded_at, Data = the
// payload, Metadata = every metadata key, Source and Shard from context and
// shard, Attempt 1 (watermill does not count redeliveries), ctx = the
// message's context. Partition, Subject and Seq, which are JetStream's, stay
// zero, and DeadLetter, which needs a JetStream delivery, passes errors
// through. The Group type registers handlers for a Router; to run typed
// handlers under watermill, build the handler with Chain over your own
// dispatch.
//
// # Errors
//
// Permanent(err), bad input (store.ErrInvalid) and refused messages
// (ErrRefused) are dead-lettered at once; Transient(err), and errors that
// report Temporary() or Timeout(), are retried for as long as they last;
// anything else is retried, then dead-lettered. Configuration problems are
// reported by NewRouter, NewRunner and Add, every one at once.
package handlers
