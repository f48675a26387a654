// Package bus carries committed events from their stores to NATS JetStream.
//
// [Connect] opens a NATS connection from a URL, or starts an embedded
// nats-server with JetStream in a data folder when there is none (the
// default, fsyncing every write: Embedded.SyncInterval "always").
//
// [Conn.Stream] provisions one JetStream stream per bounded context,
// SW_<CONTEXT> over sw.<context>.>, idempotently; an existing stream with
// other settings is a [*StreamConflictError], never silently changed.
// Every event goes to the subject
//
//	sw.<context>.<shard>.<partition>.<event type>
//
// where partition is [Partition] (FNV-1a of the stream name, mod the
// context's partition count), so one stream's events share a partition and
// keep their order there. Headers carry every well-known metadata key under
// its own name, the application's keys as a JSON object under "metadata",
// and Nats-Msg-Id = event_id. [Decode] takes a message back apart and
// refuses one whose headers disagree with its subject (a forged shard).
//
// # The relay
//
// A [Relay] forwards one (context, shard) store:
//
//   - Only one process relays a store at a time: the leader holds the
//     store's lease (a PostgreSQL advisory lock on a connection of its own,
//     or a lock file beside a SQLite file). Others stand by and take over
//     within RelayConfig.LeaderRetry when the leader dies.
//   - The leader tails store.ReadAll in commit order from its checkpoint,
//     publishes each batch asynchronously and waits for JetStream's acks
//     (collected on one wildcard inbox per [Conn], each reply subject
//     naming its batch and index). To a stream that allows it
//     (AllowBatchPublish, nats-server 2.14 and later; provisioning sets
//     it) the batches of a backlog go out as one JetStream fast batch
//     (ADR-50) in its "fail on gap" mode, from the first batch of 4 or more
//     events until the relay catches up: the server answers with a flow
//     ack every few hundred events and one PubAck at the end, instead of
//     one ack per event, and stores nothing of it after an event it
//     refused, so no event overtakes one that was refused. To a stream
//     without AllowBatchPublish the relay publishes event by event; one
//     changed to refuse fast batches is noticed by the first refusal and
//     served event by event until the process restarts.
//     The checkpoint, kept in the store's own database, advances only over
//     acknowledged events; saves are coalesced (RelayConfig.SaveEvery), and
//     what a crash leaves unsaved is published again and dropped by
//     JetStream's de-duplication window.
//   - A failed publish sends the batch again from the first event not
//     acknowledged, in order; events behind it that JetStream stored
//     already are dropped as duplicates. The connection refuses to reconnect while a
//     batch is being sent and never buffers publishes while reconnecting,
//     so a later event cannot reach JetStream over a new connection after
//     an earlier one was lost with the old.
//   - An event JetStream cannot take (larger than the stream's
//     MaxMsgSize or the server's max payload) is quarantined: logged at
//     error level, recorded with the checkpoint, listed by
//     [Relay.Quarantined], and skipped, so the events behind it flow (sent
//     again at once when JetStream refused it and ended their fast batch).
//
// Wake-ups: a commit through a store in the leader's process wakes it
// directly (store.Outbox.Commits); a commit in another process that runs a
// relay for the store, or [Conn.ForwardCommits], wakes it with a core NATS
// message; anything else (a transaction the application began itself) is
// found by the idle poll (RelayConfig.IdlePoll, 100ms). Nothing is added
// to the append transaction: a NOTIFY there would serialise commits. A
// read a commit woke that finds nothing (held back by an older
// transaction) is made again after 5ms, then twice as long each time, up to
// the idle poll.
// Every commit is read at once while the relays sharing a [Conn] (normally
// one per process) relay fewer than 2000 events a second together; above
// that, reads wait 2ms (5ms when the last one found fewer than 4 events, as
// with many shards in one process) so that fewer, larger reads leave the
// database to the writers.
//
// Draining a backlog is a pipeline: one goroutine reads the next batches,
// another builds their messages, and the leader publishes, with up to four
// batches awaiting JetStream's acks (RelayConfig.BatchSize says what that
// holds in memory).
//
// [Relay.Lag] counts committed events not yet acknowledged, from any
// process; [Relay.Status] reports leadership, counts and the last error.
package bus
