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
//			return store.AppendDeferred(ctx, st, "Invoice-"+v.ID, store.Any, ev) // correlation, causation, shard inherited
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
// outermost. Defaults gives the standard one, which runs inside the
// Router's consumer span (see Telemetry):
//
//		Recover → Correlate → Shard → Inbox → handlers
//
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
// Timeout is there to add: an attempt that runs out of time fails, and
// counts. Every attempt runs the whole chain, with a fresh transaction
// (or the batch's, below).
//
// # Telemetry
//
// The Router runs every attempt at a message in a consumer span, "<group>
// process <event type>", child of the trace context the event carries
// (the span of the append that stored it), so one trace follows a chain
// across processes; what the handler appends is stamped with it in turn.
// The span carries the messaging attributes (messaging.system "nats",
// messaging.destination.name the subject, messaging.message.id the
// event_id, messaging.consumer.group.name) and switchyard.context, .shard,
// .stream, .event_type, .correlation_id, .causation_id, and
// switchyard.outcome: handled, duplicate (the Inbox skipped it), retry,
// wait, dead_letter, parked or draining. A retry, a wait, a dead letter
// and a parking are events on the span, with the error as its status.
// Logs of the attempt are written with the span's ctx.
//
// Metrics, to RouterConfig.MeterProvider: messaging.process.duration (by
// group, event type and outcome; a batched attempt lasts until its batch
// has committed), switchyard.handler.retries (by
// switchyard.reason: failure or unavailable), switchyard.handler.dead_letters,
// switchyard.handler.parked, switchyard.inbox.duplicates,
// switchyard.consumer.partitions.owned and
// switchyard.consumer.oldest_unhandled.age (seconds: the lag to page on).
// Trace puts the same span around chains run outside a Router.
//
// # Failures
//
// The Router alone decides what becomes of a message whose attempt
// failed; this table is the policy.
//
//	what failed                                    what happens
//	---------------------------------------------  -------------------------------------------------
//	bad input (store.ErrInvalid), Permanent(err),  dead-lettered at once, nothing touched
//	a refused message (ErrRefused, forged shard),
//	an append to another store inside the
//	handler's transaction (store.ErrCrossStore)
//	a conflict (store.ErrWrongExpectedVersion), a  tried again after a backoff (RouterConfig.Backoff),
//	timeout (context.DeadlineExceeded), a panic,   up to MaxAttempts (RouterConfig, Group; default 5)
//	any other error                                in all, each try logged; then dead-lettered with
//	                                               the error and the attempt count
//	the infrastructure out of reach: the shard's   tried again after a backoff for as long as it
//	database (store.ErrUnavailable), NATS          lasts, never dead-lettered: every wait is logged,
//	(bus.ErrUnavailable), Unavailable(err)         and the partition shows as blocked, with the
//	                                               reason, in Router.Status and Runner.Status
//	a dead-lettered message                        the later messages of its stream in that group are
//	                                               parked behind it, in order, not handled; other
//	                                               streams go on (Group.SkipPastDeadLetters: they are
//	                                               handled instead)
//
// Replaying the dead letter (deadletter.Queue.Replay) handles it and then
// its parked followers, in order; discarding it (Queue.Discard) releases
// them to the handlers or drops them too. Both are carried out by the
// replica that owns the partition, in the partition's order (see package
// bus/deadletter). While a message is tried again its partition waits:
// the streams that hash to the same partition, about 1/P of them, wait
// with it.
//
// # Batches
//
// With RouterConfig.Stores set (the Runner sets it when it builds the
// chain), the messages of a partition that wait together — those that
// arrived while the one before was handled, up to RouterConfig.MaxBatch —
// share one transaction of their shard's store, so a commit and its WAL
// flush are paid once for many. The inbox records the whole run in one
// statement; Shard joins the batch's transaction instead of opening one;
// then the transaction commits and every message is acknowledged. Nothing
// waits for a batch to fill: at low rates a batch is one message. Under
// load, a group's partitions take turns (RouterConfig.Turns, by default
// as many as the process has cores): a partition with messages waits
// while that many others run their batches, at most RouterConfig.TurnWait
// (100ms by default), and takes what arrived meanwhile in one batch. Fewer, larger transactions then carry the same messages, and
// the database spends its time on the messages rather than on commits
// and round trips. The
// events handlers derive with store.AppendDeferred are held until the
// batch's handlers have run, then written in one statement before the
// commit (store.Append writes each at once, one statement each): a
// batch of 32 messages deriving one event each then costs about a third
// of the time.
//
// A message that fails rolls the batch back. The ones before it are
// handled again, in a transaction of their own, and commit; then the one
// that failed goes through the failure policy alone (tried again by
// itself, or dead-lettered), and the ones after it are handed again, in
// order, once it is settled. So effects in the store happen once and in
// stream order, as without batches; what a handler does outside the store
// may happen twice for the messages before a failure, as after any
// redelivery. A group whose handlers must not share a transaction sets
// Group.Unbatched. Each message keeps its own consumer span; a rolled-back
// attempt ends with outcome retry and the event "rolled back with its
// batch". What must happen only once the writes are durable (an e-mail, a
// call to another service) goes in AfterCommit, which runs after the
// attempt's transaction, batched or not, has committed.
//
// A batch's transaction is a transaction in the shard's database like any
// other: from its first write until it ends, the shard's relay reads no
// event committed after it began (see store/postgres). Slow work outside
// the store does not belong in a handler's transaction; a relay held back
// for over a second names the transaction in its status and log.
//
// # Order, scale-out and shutdown
//
// Each group runs on package bus/consumer, whose package doc is where the
// rules are written down: one replica at a time handles a partition, in
// stream order; the replicas share the partitions fairly and hand them over
// keeping their order; Router.Run and Runner.Run drain on cancel, so
// nothing waits for AckWait to be redelivered.
//
// # Watermill
//
// [Watermill] puts a watermill message.HandlerMiddleware (Timeout,
// CorrelationID, Recoverer, your own) in a chain. For each
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
// events go to its store, and from there through the relay. Retrying and
// dead-lettering stay the Router's: a watermill Retry or poison queue in
// the chain would be a second owner.
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
// zero; retries and dead letters are watermill's (the Router's policy
// needs a JetStream delivery). The Group type registers handlers for a Router; to run typed
// handlers under watermill, build the handler with Chain over your own
// dispatch.
//
// # Errors
//
// Configuration problems are reported by NewRouter, NewRunner and Add,
// every one at once. What a failing handler's error leads to is the
// failure policy above; IsPermanent and IsUnavailable say which row an
// error falls in.
package handlers
