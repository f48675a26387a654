// Package bus carries committed events from their stores to NATS JetStream:
// the connection, the streams and subjects events travel on, the envelope
// they travel in, and the relay that forwards a store.
//
// Start with [Connect], then run a [Relay] per (context, shard) store:
//
//	conn, err := bus.Connect(ctx, bus.Config{URL: "nats://127.0.0.1:4222"}) // URL "": an embedded nats-server
//	relay, err := bus.NewRelay(conn, st, bus.RelayConfig{})
//	go relay.Run(ctx)
//
// The other direction lives in subpackages: bus/consumer runs a consumer
// group's share of a stream, bus/deadletter keeps what the groups gave up
// on. Package handlers builds the application's side on both.
//
// # Connection
//
// [Connect] opens a NATS connection from a URL, or starts an embedded
// nats-server with JetStream in a data folder when there is none (the
// default, fsyncing every write: Embedded.SyncInterval "always"). It
// reconnects for ever; publishes made while it is reconnecting fail at
// once instead of being buffered, and it does not reconnect while a relay
// batch is being sent, so nothing a relay sends after a reconnect can
// overtake what the broken connection lost. Config.Security is TLS and
// credentials (a credentials file, an NKey seed, a token, a user and
// password); an Adoption makes a Conn of a *nats.Conn the application
// connected itself, with the options that keep those guarantees.
//
// # Permissions
//
// Every part says which NATS subjects it publishes and subscribes to, so
// that its NATS user can be allowed those and nothing else:
// [RelayPermissions] for the relay of one store (its stream's API, the
// store's subjects sw.<context>.<shard>.>, its wake-ups), consumer.
// Permissions and deadletter.Permissions for a group, status's for the
// replicas' records and for reading status, handlers.Needs for a whole
// Runner, [ConnPermissions] for every connection (its reply inbox,
// Security.InboxPrefix, and asking for its permissions). [Permissions.Config]
// renders them for a NATS server's configuration; cli's permissions
// subcommand prints them for a program's roles.
//
// [Conn.Check] checks that the connection's user may use every subject a
// part needs, from what the server says of the user ($SYS.REQ.USER.INFO,
// asked until it answers once per Conn). [Relay.Run], the handlers' Router
// and Runner, the browser in cli's run and every cli subcommand check at
// their start: a missing permission is a [*PermissionError] naming the
// user, the part and the subject, before anything runs, instead of API
// requests timing out in a retry loop; a reply inbox the server refuses is
// one too, naming the prefix to set. When the user may not ask, the check
// logs once that it cannot tell, and a missing permission shows later as a
// refused subject in the log. The lower-level calls (consumer.Provision,
// deadletter.Provision, status.Announce) do not check. NATS subjects
// cannot tell one group's consumers from another's on the same stream, nor
// an ephemeral consumer from a durable one: those grants cover the stream.
//
// # Streams, subjects and the envelope
//
// [Conn.ProvisionStream] provisions one JetStream stream per bounded
// context, SW_<CONTEXT> over sw.<context>.>, idempotently; an existing
// stream with other settings is a [*StreamConflictError], never silently
// changed. Every event goes to the subject
//
//	sw.<context>.<shard>.<partition>.<event type>
//
// where partition is [Partition] (FNV-1a of the stream name, mod the
// context's partition count), so one stream's events share a partition and
// keep their order there. [Encode] builds the message: headers carry every
// well-known metadata key under its own name, the application's keys as a
// JSON object under "metadata", and Nats-Msg-Id = event_id. [Decode] takes
// a message back apart and refuses one whose headers disagree with its
// subject (a forged shard).
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
//     publishes each batch asynchronously and waits for JetStream's acks.
//     To a stream that allows it (AllowBatchPublish, nats-server 2.14 and
//     later; provisioning sets it) every batch of two events or more goes
//     out in a JetStream fast batch (ADR-50) in its "fail on gap" mode, and
//     the batches of a backlog in one, until the relay catches up (a lone
//     event is settled before anything follows it): the server answers with
//     a flow ack every few hundred events and one PubAck at the end,
//     instead of one ack per event, and stores nothing of it after an
//     event it refused or lost (a stream leader that changed mid-batch),
//     so no event is stored ahead of one sent before it. To a stream
//     without AllowBatchPublish the relay publishes event by event, and
//     then a publish lost on a leader change while the next one was stored
//     would put the lost one behind it when it is sent again; one changed
//     to refuse fast batches is noticed by the first refusal and served
//     event by event until the process restarts.
//   - The checkpoint, kept in the store's own database, advances only over
//     acknowledged events; saves are coalesced (RelayConfig.SaveEvery), and
//     what a crash leaves unsaved is published again and dropped by
//     JetStream's de-duplication window.
//   - A failed publish sends the batch again from the first event not
//     acknowledged, in order; events behind it that JetStream stored
//     already are dropped as duplicates.
//   - An event JetStream cannot take (larger than the stream's MaxMsgSize
//     or the server's max payload) is quarantined: logged at error level,
//     recorded with the checkpoint, listed by [Relay.Quarantined], and
//     skipped, so the events behind it flow (sent again at once when
//     JetStream refused it and ended their fast batch).
//   - Draining a backlog is a pipeline: one goroutine reads the next
//     batches, another builds their messages, and the leader publishes,
//     with up to four batches awaiting JetStream's acks
//     (RelayConfig.BatchSize says what that holds in memory).
//
// [Relay.Lag] counts committed events not yet acknowledged, from any
// process; [Relay.Status] reports leadership, counts and the last error.
//
// # Wake-ups
//
// Nothing is added to the append transaction: a NOTIFY there would
// serialise commits. Instead a commit through a store in the leader's
// process wakes it directly (store.Outbox.Commits); a commit in another
// process that runs a relay for the store, or [Conn.ForwardCommits], wakes
// it with a core NATS message; anything else (a transaction the
// application began itself, a process without a bus) is found by the idle
// poll (RelayConfig.IdlePoll, 100ms).
//
// A read a commit woke may find nothing and yet have stopped below that
// commit, held back by an older transaction that then ends without waking
// the relay (the relay's own checkpoint save, a transaction in another
// database the store had not yet looked up, one the application runs
// itself). So such a read is made again after 5ms,
// then twice as long each time it finds nothing, up to the idle poll. A
// woken read that found events and stopped below such a transaction is not
// rechecked: that would cost idle stores several reads per commit; the
// next commit or the idle poll reads the rest.
//
// Every commit is read at once while the relays sharing a [Conn] (normally
// one per process) relay fewer than 2000 events a second together, or
// while only one of them leads; with several leading above that rate,
// reads wait 2ms (5ms when the last one found fewer than 4 events, as with
// many shards in one process) so that fewer, larger reads leave the
// database to the writers.
//
// # Telemetry
//
// The leading relay publishes each batch in a span, "publish <context>"
// (client kind, a trace of its own), linked to the trace contexts of its
// first [MaxBatchLinks] events: the append spans that stored them. It
// counts events published and quarantined, and reports the store's lag
// while it leads — the age of the oldest event it read and JetStream has
// not acknowledged, known without a query since it reads the log in order
// — to RelayConfig.MeterProvider. The README's "Traces, metrics and logs"
// lists every span and metric.
//
// A store's transaction still running can hold its reads back (see
// store/postgres on ordering; store.Holder). A leader whose read found
// nothing asks the store what holds it, once a second at most: while
// something does, its lag runs from the first event held back, and once
// it has seen the same transaction hold it for a second the relay logs it
// (process, application, state, start, latest statement) and
// [RelayStatus.HeldBy] names it (without the statement), until a read
// finds events again.
//
// # Errors
//
// A server that cannot be reached is an [*Error] wrapping
// [ErrUnavailable]; the relay backs off and resumes by itself. A bad
// configuration is a [*ConfigError] (errors.Is store.ErrInvalid) naming
// the setting, a stream with other settings a [*StreamConflictError], a
// forged or malformed message a *store.InvalidError naming the header, an
// embedded server's directory that another embedded server (of this
// process or another) holds a [*DirInUseError].
//
// # Concurrency
//
// A Conn, a Stream and a Relay are safe for concurrent use. Run a Relay
// once at a time.
package bus
