// Package deadletter keeps the messages consumer groups gave up on: one
// JetStream stream per bounded context, SW_<CONTEXT>_DLQ over
// swdlq.<context>.<group>, each dead letter holding the original subject,
// headers (all the event's metadata) and data, the group, the last error,
// the attempt count and when it was given up.
//
// Start with [Provision]; then list, inspect, replay or delete:
//
//	q, err := deadletter.Provision(ctx, conn, "visits")
//	letters, err := q.List(ctx, "billing-charges", 0, 100) // "" for every group
//	err = q.Replay(ctx, letters[0].Seq)                    // back on its subject, for its group only
//
// Package handlers puts messages here (its DeadLetter middleware, and the
// router for refused messages); nothing leaves a queue but by Replay or
// Delete. A replayed message carries bus.HeaderReplayGroup, so the other
// groups consuming the stream pass it by; it lands at the end of its
// partition, after the events that overtook it while it was dead.
//
// A missing sequence is [ErrNotFound]; NATS failing is a *bus.Error; a bad
// name is a *store.InvalidError. A Queue is safe for concurrent use.
package deadletter
