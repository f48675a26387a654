// Package handlers runs application code on the events the relays publish:
// handlers registered in Go, typed with generics, grouped into consumer
// groups, behind a middleware chain, consumed from NATS JetStream by as many
// replicas as you run.
//
// # Groups and handlers
//
// A Group is one durable consumer set: two groups each see every event of
// their source context, the replicas of one group share them. Handlers are
// registered into it by name for an event type; Handle decodes the event's
// JSON data into a Go value:
//
//	g := &handlers.Group{Name: "billing-charges", Context: "billing", From: "visits"}
//	handlers.Handle(g, "charge", "VisitBooked",
//		func(ctx context.Context, v VisitBooked, m handlers.Message) error {
//			st, _ := handlers.Store(ctx) // billing's store for m.Shard, in the handler's transaction
//			ev, _ := store.NewEvent("VisitCharged", Charge{Visit: v.ID})
//			_, err := st.Append(ctx, "Invoice-"+v.ID, store.Any, ev) // correlation, causation, shard inherited
//			return err
//		})
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
//	    the message goes to its context's dead-letter stream (bus.DeadLetters:
//	    list, inspect, replay) with its metadata, the error and the attempt
//	    count. Transient errors (a database that is down) are never
//	    dead-lettered: they are retried for as long as they last.
//	  - Retry: tries again in process with exponential backoff; each attempt
//	    gets a fresh transaction because Retry is outside Shard.
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
// # Order, scale-out and what a failure holds back
//
// Events of one stream share a partition (bus.Partition). Each group has a
// durable JetStream consumer per partition that pins its deliveries to one
// replica (a JetStream priority group with a pinned client) and lets it
// hold MaxInFlight of them unacknowledged: one replica handles a partition
// at a time, one message after the other in stream order, while the next
// ones are already on their way and partitions proceed in parallel across
// replicas. The replicas share the partitions fairly and a replica added
// later takes its share (see bus.Consumer.Run). When a replica dies, JetStream unpins it after AckWait and
// another replica's pull takes over; the messages it held are redelivered
// after AckWait, and the new replica handles nothing of the partition
// before them (it waits until JetStream counts no unacknowledged message of
// the partition outside its hands).
//
// So a failing message holds back every later message of its partition in
// its group — the streams that hash to the same partition, about 1/P of
// them (P = 16 by default) — until it succeeds or is dead-lettered. Other
// partitions and other groups go on. Replaying a dead letter puts it at the
// end of its partition, after what overtook it.
//
// # Shutdown
//
// Router.Run returns when its ctx ends, after it has stopped pulling, given
// up its partitions (so other replicas take them over at once), let the
// messages being handled finish and settle (their ctx is cancelled
// DrainTimeout later) and handed the ones not yet started back to
// JetStream, so nothing waits for AckWait to be redelivered.
package handlers
