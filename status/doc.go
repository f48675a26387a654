// Package status tells an operator what a whole deployment is doing,
// across all its processes: which replica leads each store's relay, how
// far each relay has got, which replica handles each partition of each
// consumer group, what waits and what was dead-lettered. The operator's
// status subcommand (package cli) prints it; Read returns it to Go.
//
// Start with Read:
//
//	rep, err := status.Read(ctx, conn, reg)
//	for _, s := range rep.Stores { fmt.Println(s.Context, s.Shard, s.Leader, s.Unpublished) }
//
// It gathers three sources, and writes nothing:
//
//   - the replicas' own records: every handlers.Runner announces itself
//     (Announce) in the NATS key-value bucket Bucket every Every, with the
//     relays it leads and the partitions it handles; a record not refreshed
//     for 3×Every expires, and one that stops deletes its record;
//   - each store's database: the relay's saved checkpoint, the committed
//     events after it, the quarantined events;
//   - JetStream: the groups' durable consumers (pending and unacknowledged
//     messages per partition) and the dead-letter queues (counts by subject,
//     one request per context).
//
// A store that cannot be read is reported with its error, the rest still
// are; NATS out of reach is an error.
package status
