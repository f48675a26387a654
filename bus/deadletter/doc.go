// Package deadletter keeps the messages consumer groups gave up on: one
// JetStream stream per bounded context, SW_<CONTEXT>_DLQ over
// swdlq.<context>.<group>, each dead letter holding the original subject,
// headers (all the event's metadata) and data, the group, the last error,
// the attempt count and when it was given up.
//
// Start with [Provision]; then list, inspect, replay or discard:
//
//	q, err := deadletter.Provision(ctx, conn, "visits")
//	letters, err := q.List(ctx, "billing-charges", 0, 100) // "" for every group; each with its Parked count
//	err = q.Replay(ctx, letters[0].Seq)                    // handled again, then what is parked behind it
//	err = q.Discard(ctx, letters[0].Seq, deadletter.ReleaseFollowers)
//
// # Keeping a stream's order
//
// The handlers' router puts here what a group gives up on ([Queue.Put]).
// A dead letter with a park key ([Record].ParkKey, its own sequence in
// the event stream) stands for its stream in that group: the later
// messages of the stream are parked behind it ([Queue.Park]), in order,
// on a subject of their own, swdlq.<context>.<group>.<park key>, instead
// of being handled, while the other streams of the partition go on.
// [Queue.Blocking] says which streams a group parks, so that a replica
// taking a partition over knows it.
//
// Replay and Discard do not change the queue themselves: they publish a
// marker on the dead letter's original subject (bus.HeaderReplayGroup
// names the group, so the other groups pass it by; [Marker] reads it).
// The group's replica that owns the partition meets it in the partition's
// order and carries it out — handling the dead letter and then its parked
// followers, or releasing or dropping them — removing each as it goes.
// So nothing of the stream can come between, and a replica that dies half
// way leaves the rest to the one that takes over.
//
// Nothing leaves a queue but that way, or by [Queue.Delete] of a dead
// letter nothing is parked behind. A parked message, or a dead letter that
// parks its stream, is [ErrParked] to Replay, Discard and Delete of itself:
// it ends with its dead letter.
//
// A missing sequence is [ErrNotFound]; NATS failing is a *bus.Error; a bad
// name is a *store.InvalidError. A Queue is safe for concurrent use.
package deadletter
