// Command bench measures Switchyard and the pipelines it is compared with
// (the peer scenarios below), printing one JSON line per run in one shape,
// so both can run against the same servers and be compared as ratios:
//
//	go run ./cmd/bench -pg "$PGDSN" -scenario append-single -n 20000 -writers 8
//	go run ./cmd/bench -backend sqlite -scenario append-batch -n 200000
//	go run ./cmd/bench -pg "$PGDSN" -nats "$NATSURL" -scenario relay-drain -n 100000
//
// Scenarios:
//
//   - append-single: one event per Append, W writers on distinct streams.
//   - append-batch: 100 events per Append.
//   - relay-drain: a store pre-filled with N events (100 per Append) drained
//     to JetStream by a relay; per_s counts events JetStream acknowledged per
//     second, from the relay's start to the last ack.
//   - relay-latency: W writers append one event per Append at -rate events/s
//     (default 1000) with a relay running; latency is the time from Append
//     returning to the relay seeing JetStream's ack.
//   - e2e: W writers append one event per Append (at -rate, or flat out)
//     to -shards stores; a relay per store and one consumer (a handlers.Router
//     with one group) run in this process; the handler does nothing behind
//     the default chain without Shard and Inbox (Recover, Correlate), in
//     the router's consumer span. Latency runs from Append returning to the handler
//     starting; handled_per_s from the first append to the last handler.
//   - e2e-inbox: e2e with the full default chain (Shard, Inbox): the handler
//     writes a row in its shard and appends one derived event, in the
//     transaction the chain opened (-derive: store.AppendDeferred, the
//     default, or Store.Append).
//   - e2e-shards: e2e over 16 shards (or -shards).
//
// The peer scenarios are what the README's benchmark table compares
// Switchyard with: what a Go user writes without it, each measured the same
// way (the same SQL, nats.go calls, watermill components and settings,
// and JSON fields as the baseline harness they were first measured with):
//
//   - pg-append-single: BEGIN; INSERT; COMMIT per event, pgx pool, W writers,
//     each on a stream of its own.
//   - pg-append-batch: 100 events per transaction through CopyFrom.
//   - js-publish-async: 1 KiB messages, PublishMsgAsync with Nats-Msg-Id, one
//     connection, nats.go's default 4000 pending.
//   - js-publish-sync: PublishMsg (waits for the PubAck) from W goroutines on
//     one connection.
//   - js-consume: a durable pull consumer of a pre-filled stream, explicit
//     acks, Consume()'s defaults, Ack() per message.
//   - watermill-e2e: one database/sql transaction inserts the event and
//     publishes it through watermill-sql (forwarder publisher); the forwarder
//     moves it to JetStream (watermill-nats); a Router handler with
//     CorrelationID, Retry and Recoverer consumes a durable consumer;
//     watermill-sql's defaults (PollInterval 1s, SubscribeBatchSize 100).
//   - watermill-e2e-fast: watermill-e2e with PollInterval 10ms,
//     SubscribeBatchSize 1000.
//   - raw-e2e: pgx and nats.go by hand: the append transaction also
//     pg_notify()s; a relay LISTENs, tails (tx_id xid8, global_position)
//     below pg_snapshot_xmin, publishes each batch (up to 1000) with
//     PublishMsgAsync and waits for the acks, then updates its checkpoint
//     row; the handler is a durable pull consumer's Consume() and Ack().
//   - raw-e2e-poll: raw-e2e without NOTIFY; the relay polls every 5ms when
//     idle.
//   - raw-e2e-inbox: raw-e2e-poll with an exactly-once handler written by
//     hand: per message one transaction (inbox row, effect row, derived
//     event), COMMIT, then Ack(); handled_per_s and wall_s end at the last
//     handler COMMIT, and the run checks inbox = effects = derived = N.
//
// In the peer e2e scenarios latency runs from the writer seeing its commit
// return to the handler starting, per_s counts appends, and handled_per_s
// runs from the first append to the last handler start. Each run has a
// PostgreSQL schema of its own (the harness's tables, found through
// search_path) and JetStream streams whose names and subjects end in the
// run's name, and drops them at the end; with -nats "" the embedded server
// listens on a free loopback port that the harness's clients dial. Knobs:
// -wm-poll, -wm-batch, -wm-ackasync, -raw-batch, -raw-poll, -raw-notify.
//
// -trace otlp samples every span and exports spans and metrics over
// OTLP/HTTP to a receiver in this process; -trace off (the default) runs
// with OpenTelemetry's no-op providers, as a program with no OTEL_*
// variable does.
//
// With -backlog the e2e scenarios and raw-e2e* append every event and wait
// until JetStream holds it before their handlers start: handled_per_s and
// wall_s then run from the handlers' start to the last handled event (for
// e2e-inbox and raw-e2e-inbox, the last handler commit), which measures
// what the handlers can take apart from the writers they share the
// machine with.
//
// With -relay the append scenarios run a relay while they append; wall_s and
// per_s still time the appends alone, and the run then waits for the relay to
// catch up. -nats "" runs an embedded nats-server in a temporary folder,
// fsyncing as -nats-sync says. Every run uses a context of its own (a fresh
// PostgreSQL schema or SQLite file, and a fresh JetStream stream). Unknown
// flags or scenarios exit with status 2 and the usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

type config struct {
	pg, nats, natsSync, scenario, backend, dir string
	derive                                     string // e2e-inbox: how the handler appends its derived event
	pgPID, natsPID, inFlight, turns            int
	turnWait                                   time.Duration
	contextName                                string // unique per run
	n, writers, size, shards, rep, streams     int
	rate, poison                               float64
	relay, backlog                             bool
	timeout                                    time.Duration
	log                                        *slog.Logger
	peer                                       peerKnobs
}

// streamCount is how many streams the writers append to: c.streams, and at
// least one per writer.
func (c config) streamCount() int { return max(c.streams, c.writers) }

// streamName is the name of stream k of this repetition.
func (c config) streamName(k int) string { return fmt.Sprintf("account-%d-%d", c.rep, k) }

// result is one JSON line, in the shape the peer scenarios print too.
type result struct {
	Scenario string             `json:"scenario"`
	Rep      int                `json:"rep"`
	N        int                `json:"n"`
	Writers  int                `json:"writers,omitempty"`
	Rate     float64            `json:"rate,omitempty"`
	WallS    float64            `json:"wall_s"`
	PerS     float64            `json:"per_s"`
	Handled  float64            `json:"handled_per_s,omitempty"`
	HandledN int                `json:"handled,omitempty"` // peer e2e scenarios: events handled
	P50Ms    float64            `json:"p50_ms,omitempty"`
	P99Ms    float64            `json:"p99_ms,omitempty"`
	MaxMs    float64            `json:"max_ms,omitempty"`
	Backend  string             `json:"backend"`
	CPU      map[string]float64 `json:"cpu_pct,omitempty"`    // % of one core, over the timed part of the run
	MaxRSSMB float64            `json:"max_rss_mb,omitempty"` // the benchmark process's peak resident memory (with -nats "", the server's too)
	Settings map[string]any     `json:"settings,omitempty"`

	// The peer scenarios' own, named as the harness names them: in the e2e
	// ones, append latency and the events appended but not handled when the
	// last append committed; on PostgreSQL, its WAL syncs, WAL and commits
	// over the run (counters of the whole server and database).
	AppendP50 float64 `json:"append_p50_ms,omitempty"`
	Backlog   int     `json:"backlog_at_append_end,omitempty"`
	AppendP99 float64 `json:"append_p99_ms,omitempty"`
	WALSyncs  int64   `json:"wal_syncs,omitempty"`
	WALMB     float64 `json:"wal_mb,omitempty"`
	Commits   int64   `json:"xact_commits,omitempty"`

	Error string `json:"error,omitempty"` // set by a peer scenario too: the run failed
	Notes string `json:"notes,omitempty"`

	// timed is the CPU used over the part of the run wall_s times, for a
	// scenario with a set-up outside it (a pre-fill); nil: the whole run.
	timed map[string]float64
}

var scenarios = append([]string{"append-single", "append-batch", "relay-drain", "relay-latency", "js-publish-headers", "e2e", "e2e-inbox", "e2e-shards"},
	peerScenarios...)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.pg, "pg", "", "PostgreSQL DSN (empty: -backend sqlite)")
	fs.StringVar(&c.nats, "nats", "", "NATS URL (empty = embedded server; append scenarios use it with -relay only)")
	fs.StringVar(&c.natsSync, "nats-sync", "always", `embedded server's fsync: "always" or an interval such as "2m" (ignored with -nats)`)
	fs.BoolVar(&c.relay, "relay", false, "append scenarios: run a relay to JetStream while appending")
	fs.StringVar(&c.scenario, "scenario", "", "one of: "+strings.Join(scenarios, ", "))
	fs.StringVar(&c.backend, "backend", "", "postgres or sqlite (default: postgres when -pg is set)")
	fs.StringVar(&c.dir, "dir", "", "sqlite data folder (default: a temporary one)")
	fs.IntVar(&c.n, "n", 20000, "events")
	fs.IntVar(&c.writers, "writers", 8, "concurrent writers")
	fs.Float64Var(&c.rate, "rate", 0, "events/s appended in total (0 = as fast as possible)")
	fs.IntVar(&c.size, "size", 1024, "payload bytes")
	fs.IntVar(&c.shards, "shards", 1, "shards")
	fs.IntVar(&c.streams, "streams", 0, "streams the writers append to, round robin (0: one per writer)")
	fs.Float64Var(&c.poison, "poison", 0, "e2e scenarios: the fraction of streams whose events the handler refuses (dead-lettered, their later events parked)")
	fs.IntVar(&c.rep, "rep", 1, "repetition label")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "run timeout")
	fs.BoolVar(&c.backlog, "backlog", false, "e2e scenarios and raw-e2e*: append and relay every event before the handlers start; handled_per_s is then their drain rate, from their start to the last handled event")
	fs.IntVar(&c.inFlight, "max-in-flight", 0, "e2e scenarios: messages per partition the consumer may hold unacknowledged (0: consumer.DefaultMaxInFlight)")
	fs.IntVar(&c.turns, "turns", 0, "e2e scenarios: partitions that run their batches at once, handlers.RouterConfig.Turns (0: its default, one per core; -1: all)")
	fs.DurationVar(&c.turnWait, "turn-wait", 0, "e2e scenarios: how long a partition waits for a turn at most, handlers.RouterConfig.TurnWait (0: its default)")
	fs.StringVar(&c.derive, "derive", "deferred", `e2e-inbox: how the handler appends its derived event: "deferred" (store.AppendDeferred, written with the batch) or "append" (Store.Append, at once)`)
	fs.IntVar(&c.pgPID, "pgpid", 0, "postmaster pid, for cpu_pct (0: not measured)")
	fs.IntVar(&c.natsPID, "natspid", 0, "nats-server pid, for cpu_pct (0: not measured)")
	c.peer.register(fs)
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	traceMode := fs.String("trace", "off", "off (no-op OpenTelemetry providers) or otlp (every span sampled, spans and metrics exported over OTLP/HTTP to a receiver in this process)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !slices.Contains(traceModes, *traceMode) {
		fmt.Fprintf(stderr, "bench: -trace %q: want one of %s\n", *traceMode, strings.Join(traceModes, ", "))
		return 2
	}
	if !slices.Contains(scenarios, c.scenario) || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unknown scenario %q\n", c.scenario)
		fs.Usage()
		return 2
	}
	if c.backend == "" {
		c.backend = "sqlite"
		if c.pg != "" {
			c.backend = "postgres"
		}
	}
	if c.backend != "postgres" && c.backend != "sqlite" || c.backend == "postgres" && c.pg == "" {
		fmt.Fprintf(stderr, "bench: -backend %q needs -pg for postgres, or sqlite\n", c.backend)
		return 2
	}
	if usesPG, _ := peerUses(c.scenario); slices.Contains(peerScenarios, c.scenario) && usesPG && c.backend != "postgres" {
		fmt.Fprintf(stderr, "bench: -scenario %s runs on PostgreSQL: give -pg\n", c.scenario)
		return 2
	}
	c.peer.settle(fs, c.scenario)
	if c.derive != "deferred" && c.derive != "append" {
		fmt.Fprintf(stderr, "bench: -derive %q: want deferred or append\n", c.derive)
		return 2
	}
	if c.n <= 0 || c.writers <= 0 || c.size < 0 || c.rate < 0 {
		fmt.Fprintln(stderr, "bench: -n and -writers must be positive, -size and -rate not negative")
		return 2
	}
	if c.nats == "" && (bus.Config{Embedded: bus.Embedded{SyncInterval: c.natsSync}}).Validate() != nil {
		fmt.Fprintf(stderr, "bench: -nats-sync %q: want \"always\" or a positive duration\n", c.natsSync)
		return 2
	}
	if strings.HasPrefix(c.scenario, "relay-") {
		c.relay = true
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if c.scenario == "relay-latency" && c.rate == 0 {
		c.rate = 1000
	}
	if c.scenario == "e2e-shards" && c.shards == 1 {
		c.shards = 16
	}
	if c.shards < 1 || c.shards > 64 {
		fmt.Fprintln(stderr, "bench: -shards must be 1 to 64")
		return 2
	}
	c.contextName = fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	c.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	stopTracing, err := tracing(ctx, *traceMode)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	var res *result
	cpu0 := snapCPU(c.pgPID, c.natsPID)
	switch c.scenario {
	case "relay-drain":
		res, err = drainScenario(ctx, c)
	case "relay-latency":
		res, err = latencyScenario(ctx, c)
	case "js-publish-headers":
		res, err = headersScenario(ctx, c)
	case "e2e", "e2e-inbox", "e2e-shards":
		res, err = e2eScenario(ctx, c)
	case "append-single", "append-batch":
		res, err = appendScenario(ctx, c)
	default:
		res, err = peerScenario(ctx, c)
	}
	if res == nil {
		res = &result{}
	}
	res.CPU = cpuUse(cpu0, snapCPU(c.pgPID, c.natsPID))
	if res.timed != nil {
		res.CPU = res.timed
	}
	if note := stopTracing(); note != "" {
		res.Notes = strings.TrimPrefix(res.Notes+"; "+note, "; ")
	}
	res.Scenario, res.Rep, res.Backend, res.Rate = c.scenario, c.rep, c.backend, c.rate
	if res.N == 0 {
		res.N = c.n
	}
	if err != nil {
		res.Error = err.Error()
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		res.MaxRSSMB = math.Round(float64(ru.Maxrss)/1024*10) / 10 // Linux reports KiB
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(b))
	if res.Error != "" {
		return 1
	}
	return 0
}

// openStore opens a fresh store: a new schema on PostgreSQL, a new file on
// SQLite. The cleanup drops it.
func openStore(ctx context.Context, c config) (store.Outbox, func(), error) {
	// One connection per writer plus one, as the baseline sizes its pool;
	// a relay reads and saves its checkpoint through two more (its lease
	// has a connection of its own).
	conns := c.writers + 1
	if c.relay {
		conns += 2
	}
	return openShard(ctx, c, "default", conns)
}

// openShard opens a fresh store of shard with a pool of conns connections.
func openShard(ctx context.Context, c config, shard string, conns int) (store.Outbox, func(), error) {
	if c.backend == "postgres" {
		schema := strings.ReplaceAll(c.contextName+"_"+shard, "-", "_")
		dsn, err := withPoolSize(c.pg, conns)
		if err != nil {
			return nil, nil, err
		}
		s, err := postgres.Open(ctx, dsn, postgres.Config{Context: c.contextName, Shard: shard, Schema: schema})
		if err != nil {
			return nil, nil, err
		}
		// The pool opens its connections in the background: wait for them,
		// so that no run pays for a connect.
		for deadline := time.Now().Add(5 * time.Second); s.Pool().Stat().TotalConns() < int32(conns) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		_, _ = s.Pool().Exec(ctx, "CHECKPOINT")
		return s, func() {
			_, _ = s.Pool().Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			s.Close()
		}, nil
	}
	dir := c.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "sw-bench-")
		if err != nil {
			return nil, nil, err
		}
		dir = d
	}
	s, err := sqlite.Open(ctx, sqlite.Config{Context: c.contextName, Shard: shard, Dir: dir})
	if err != nil {
		return nil, nil, err
	}
	return s, func() {
		s.Close()
		if c.dir == "" {
			os.RemoveAll(dir)
		}
	}, nil
}

// payload is a JSON object of about size bytes, the shape the baseline uses.
func payload(size, seq int) []byte {
	pad := max(size-80, 0)
	return fmt.Appendf(nil, `{"seq":%d,"amount":%d,"currency":"EUR","note":"%s"}`, seq, seq%977, strings.Repeat("x", pad))
}

func appendScenario(ctx context.Context, c config) (*result, error) {
	per := 1
	notes := "Append, 1 event per call"
	if c.scenario == "append-batch" {
		per = 100
		notes = "Append, 100 events per call; latency per call"
	}
	s, cleanup, err := openStore(ctx, c)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	settings := map[string]any{"events_per_call": per, "size": c.size}
	var r *relayRun
	if c.relay {
		var stop func()
		if r, stop, err = newRelay(ctx, c, s, nil); err != nil {
			return nil, err
		}
		defer stop()
		if err := r.start(ctx, true); err != nil {
			return nil, err
		}
		notes += "; relay=true: a relay to JetStream ran during the appends; wall_s and per_s time the appends only, then the run waited for lag 0"
	}
	lat, _, wall, err := writeAll(ctx, s, c, load{per: per, rate: c.rate})
	if err != nil {
		return nil, err
	}
	if r != nil {
		end := time.Now()
		if err := r.wait(ctx); err != nil {
			return nil, err
		}
		settings["relay_catchup_s"] = round(time.Since(end).Seconds(), 3)
		if err := r.finish(ctx, settings); err != nil {
			return nil, err
		}
	}
	r2 := &result{N: c.n, Writers: c.writers, WallS: round(wall.Seconds(), 3), PerS: round(float64(c.n)/wall.Seconds(), 0), Notes: notes,
		Settings: settings}
	r2.P50Ms, r2.P99Ms, r2.MaxMs = percentiles(lat)
	return r2, nil
}

// load is how writeAll appends: per events to a call, at rate events/s in
// total (0: as fast as possible), each writer on a stream of its own, or
// each call on a new stream (newStream). ids, when set, are the events' IDs;
// committed, when set, learns when each call's Append returned.
type load struct {
	per       int
	rate      float64
	newStream bool
	ids       []uuid.UUID
	committed func(call int, stream string, at time.Time)
	stores    []store.Store // writer w appends to stores[w % len] (nil: s)
}

// writeAll appends c.n events from c.writers writers. lat holds each call's
// latency; start is when the writers started, wall how long they took.
func writeAll(ctx context.Context, s store.Store, c config, l load) (lat []time.Duration, start time.Time, wall time.Duration, err error) {
	per := l.per
	data := make([][]byte, 64)
	for i := range data {
		data[i] = payload(c.size, i)
	}
	calls := (c.n + per - 1) / per
	lat = make([]time.Duration, calls)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, c.writers)
	// At a rate, call i is due at start + i × interval: a schedule, not a
	// ticker, which would drop ticks while every writer is busy.
	var interval time.Duration
	if l.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(per) / l.rate)
	}
	start = time.Now()
	for w := 0; w < c.writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := s
			if l.stores != nil {
				s = l.stores[w%len(l.stores)]
			}
			// The writer's streams: w, w+W, w+2W, … below c.streams, in turn.
			var streams []string
			for k := w; k < c.streamCount(); k += c.writers {
				streams = append(streams, c.streamName(k))
			}
			versions := make([]int64, len(streams))
			for k := range versions {
				versions[k] = -1
			}
			turn := 0
			batch := make([]store.Event, 0, per)
			for {
				i := int(next.Add(1)) - 1
				if i >= calls {
					return
				}
				if interval > 0 {
					time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
				}
				batch = batch[:0]
				for j := 0; j < per && i*per+j < c.n; j++ {
					ev := store.Event{Type: "MoneyDeposited", Data: data[(i*per+j)%64], Metadata: map[string]string{"user": "bench"}}
					if l.ids != nil {
						ev.ID = l.ids[i*per+j]
					}
					batch = append(batch, ev)
				}
				exp := store.NoStream
				turn = (turn + 1) % len(streams)
				stream, version := streams[turn], versions[turn]
				if l.newStream {
					stream, version = c.streamName(i), -1
				}
				if version >= 0 {
					exp = store.Exact(version)
				}
				t0 := time.Now()
				out, err := s.Append(ctx, stream, exp, batch...)
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				t1 := time.Now()
				lat[i] = t1.Sub(t0)
				if l.committed != nil {
					l.committed(i, stream, t1)
				}
				versions[turn] = out[len(out)-1].Version
			}
		}(w)
	}
	wg.Wait()
	wall = time.Since(start)
	close(errs)
	if err := errors.Join(drain(errs)...); err != nil {
		return nil, start, 0, err
	}
	return lat, start, wall, nil
}

func drain(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

func percentiles(d []time.Duration) (p50, p99, maxMs float64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	pick := func(p float64) float64 {
		i := max(int(math.Ceil(p*float64(len(s))))-1, 0)
		return ms(s[i])
	}
	return pick(0.50), pick(0.99), ms(s[len(s)-1])
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

// withPoolSize sets pool_max_conns and pool_min_conns in a URL or key=value
// DSN: n connections, all opened up front (as the baseline's pools are).
func withPoolSize(dsn string, n int) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		q := u.Query()
		q.Set("pool_max_conns", strconv.Itoa(n))
		q.Set("pool_min_conns", strconv.Itoa(n))
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " pool_max_conns=" + strconv.Itoa(n) + " pool_min_conns=" + strconv.Itoa(n), nil
}
