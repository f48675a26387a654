// Package cli is a Switchyard binary's command line: the runtime and the
// operator's tools, in the shape of Rails' db:migrate:<shard>. A program
// gives it the application's handler groups; cmd/consumer is this with
// none:
//
//	func main() {
//		cli.Program{Name: "billing", Groups: []*handlers.Group{charges}}.Main()
//	}
//
// Subcommands (the first argument; run when it is a flag or absent):
//
//	run                          relay every store and run the groups until SIGTERM (drains);
//	                             serves /healthz, /readyz and /metrics on -http, and the
//	                             event browser (package browser) at /browse/: to clients on
//	                             this machine only unless -browser all; read-only unless
//	                             -browser-writes
//	migrate [context[/shard]...] create (create_databases) and migrate stores, one at a time
//	status                       per store: relay leader, checkpoint, unpublished events, lag;
//	                             per group: replicas, partitions owned, pending, dead letters
//	dlq list|show|replay|discard the dead letters of a context
//	tail <context...>            live events as JSON lines
//	read <context> <shard> <stream>
//	health                       exit 0 when a running process is ready (container health checks)
//
// Every subcommand reads the configuration as run does — the -config
// file, then SWITCHYARD_* variables over it, checked as a whole (package
// stores) — and takes -nats and -json (JSON for scripts instead of
// tables) anywhere among its arguments. Long work (migrating many shards,
// replaying many dead letters) reports its progress on stderr. Exit codes:
// 0 done, 1 failed, 2 a bad command line (a flag, or an argument naming a
// context, shard or group that is not there). The tools change nothing
// they are not asked to: they open only stores that exist, without
// migrating them (stores.Existing), start no NATS server unless a stopped
// deployment's embedded one is there, and write to NATS only a replay or
// discard.
//
// NATS credentials come from the environment (see bus.Security):
// SWITCHYARD_NATS_CA, _CERT, _KEY, _SERVER_NAME, _CREDS, _NKEY_SEED, _TOKEN,
// _USER and _PASSWORD, the token and password also from the file a
// _TOKEN_FILE or _PASSWORD_FILE variable names. None is ever printed.
//
// status reads what every running process announces about itself (package
// status): a tool on embedded defaults reaches the embedded NATS of a
// running process only when that process listens (run -nats-port).
package cli
