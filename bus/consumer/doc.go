// Package consumer runs a consumer group's share of a bounded context's
// JetStream stream in this process: one durable consumer per partition,
// deliveries handed to a function one at a time per partition, in stream
// order, with partitions shared fairly among the group's replicas.
// Package handlers builds on it; use it directly for a runtime of your own.
//
//	g, err := consumer.Provision(ctx, conn, consumer.Config{Source: "visits", Group: "billing"})
//	err = g.Run(ctx, func(ctx context.Context, d *consumer.Delivery) {
//		if d.Err != nil { ... refused: dead-letter it, then d.Term(...) }
//		... handle d.Event ...
//		d.Ack()
//	})
//
// # Order, scale-out and fail-over
//
// This is the one place these rules are written down; the rest of
// Switchyard links here.
//
// Events of one stream share a partition (bus.Partition). Each group has
// a durable JetStream consumer per partition, [DurableName], that pins its
// deliveries to one replica (a JetStream priority group with a pinned
// client) and lets it hold Config.MaxInFlight of them unacknowledged:
// one replica handles a partition at a time, one delivery after the other
// in stream order, while the next ones are already on their way, and the
// partitions proceed in parallel.
//
// Order survives a change of hands. When a partition's deliveries reach a
// replica after going elsewhere (it just started, or took the partition
// over), it handles nothing of the partition until every delivery
// JetStream counts as unacknowledged is in its own hands: what a dead
// replica held comes back after AckWait, what a draining one holds it
// settles or hands back, and then everything is handled in stream order.
// A replica that stops pulling (it died) is unpinned after AckWait and
// another takes over.
//
// The replicas share the partitions fairly. Each keeps an entry in a NATS
// key-value bucket of the group's members ([MembersBucket]) holding how
// many partitions it owns; an entry not refreshed for AckWait expires.
// Every AckWait/3 each replica works out its share, ⌈partitions /
// members⌉, gives up what it owns beyond its share and the others have
// room for, and pulls the partitions it does not own only while it is
// below its share. A partition nobody is pinned to with messages waiting
// is pulled by everyone, so none is left behind when the counts are off
// (a member just died, the bucket is unreachable). So a replica added
// later takes its share within a few seconds, one that stops hands its
// partitions over at once, and a dead one's move within about AckWait.
//
// RunBatch hands the function up to Config.MaxBatch consecutive
// deliveries of a partition at once, in stream order: those that arrived
// while it was busy, so nothing waits for a batch to fill and a batch is
// one delivery at low rates. The function settles what it can, keeping
// each stream's order; the one it asks to try again is tried alone, and
// the others it left unsettled are handed again, in order, once that one
// is settled. With Config.Turns, a partition with deliveries waits while
// that many others run the function, at most Config.TurnWait, and then
// takes what it holds: under load, batches grow. Past TurnWait it goes
// without a turn, as a delivery tried again always does.
//
// A delivery that is not settled — its function asked to try it again
// ([Delivery.RetryAfter]) — holds back every later delivery of its
// partition in its group (the streams that hash to the same partition,
// about 1/P of them) until it is acked or terminated. Other partitions and
// groups go on.
//
// # Shutdown
//
// When Run's ctx ends it stops pulling and gives up its pins — also a pin
// JetStream gave a pull request of its before anything was delivered, which
// it recognises as one no pull waits on and nothing is out under — so the
// other replicas take the partitions over at once; it lets the deliveries being
// handled finish (their ctx is cancelled DrainTimeout later), hands the
// ones not started back to JetStream, and returns once every function
// call has returned. Nothing is left to wait for AckWait, but for one
// window: what JetStream sends to a pull request after Run withdrew it (a
// stop within moments of a pull) reaches no one and comes back after
// AckWait. Run with ctx already done pulls nothing.
//
// A dead letter's replay or discard travels as a marker on its original
// subject (package bus/deadletter); Run passes by the markers of other
// groups, and hands a group its own like any delivery, for it to carry
// out.
//
// # Concurrency
//
// Run calls its function concurrently for different partitions, never for
// two deliveries of one partition at once. A Delivery belongs to the call
// it is given to. Config.Turns makes partitions wait for one another
// (see RunBatch above), never two calls of one partition run at once.
package consumer
