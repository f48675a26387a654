package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
)

// peerScenarios are the pipelines the README's benchmark table compares
// Switchyard with, under the names they were first measured by.
var peerScenarios = []string{"pg-append-single", "pg-append-batch", "js-publish-async", "js-publish-sync", "js-consume",
	"watermill-e2e", "watermill-e2e-fast", "raw-e2e", "raw-e2e-poll", "raw-e2e-inbox"}

// peerScenario runs c.scenario, one of peerScenarios.
func peerScenario(ctx context.Context, c config) (*result, error) {
	env, cleanup, err := openPeer(ctx, c)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	switch c.scenario {
	case "pg-append-single":
		return pgAppendSingle(ctx, env)
	case "pg-append-batch":
		return pgAppendBatch(ctx, env)
	case "js-publish-async":
		return jsPublishAsync(ctx, env)
	case "js-publish-sync":
		return jsPublishSync(ctx, env)
	case "js-consume":
		return jsConsume(ctx, env)
	case "watermill-e2e", "watermill-e2e-fast":
		return watermillE2E(ctx, env)
	case "raw-e2e-inbox":
		return rawE2EInbox(ctx, env)
	default: // raw-e2e, raw-e2e-poll
		return rawE2E(ctx, env)
	}
}

// peerUses says whether a peer scenario needs PostgreSQL and NATS.
func peerUses(scenario string) (pg, nats bool) {
	return !strings.HasPrefix(scenario, "js-"), !strings.HasPrefix(scenario, "pg-")
}

// peerKnobs are the harness's per-scenario flags.
type peerKnobs struct {
	wmPoll     time.Duration
	wmBatch    int
	wmAckAsync bool
	rawBatch   int
	rawPoll    time.Duration
	rawNotify  bool
}

func (k *peerKnobs) register(fs *flag.FlagSet) {
	fs.DurationVar(&k.wmPoll, "wm-poll", 0, "watermill-e2e*: watermill-sql PollInterval override")
	fs.IntVar(&k.wmBatch, "wm-batch", 0, "watermill-e2e*: watermill-sql SubscribeBatchSize override")
	fs.BoolVar(&k.wmAckAsync, "wm-ackasync", false, "watermill-e2e*: watermill-nats jetstream subscriber AckAsync")
	fs.IntVar(&k.rawBatch, "raw-batch", 1000, "raw-e2e*: relay's max rows per poll")
	fs.DurationVar(&k.rawPoll, "raw-poll", 100*time.Millisecond, "raw-e2e*: relay's poll interval when idle (raw-e2e-poll and raw-e2e-inbox: 5ms unless set)")
	fs.BoolVar(&k.rawNotify, "raw-notify", true, "raw-e2e: writers pg_notify() inside the append tx to wake the relay (raw-e2e-poll and raw-e2e-inbox: never)")
}

// settle applies what the harness's scenarios imply once the flags are parsed.
func (k *peerKnobs) settle(fs *flag.FlagSet, scenario string) {
	if scenario != "raw-e2e-poll" && scenario != "raw-e2e-inbox" {
		return
	}
	k.rawNotify = false
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "raw-poll" })
	if !set {
		k.rawPoll = 5 * time.Millisecond
	}
}

// peerEnv is what a peer scenario runs against: the harness's tables in a
// PostgreSQL schema of the run's own, which every connection's search_path
// names, so the harness's SQL runs unchanged; and JetStream streams whose
// names and subjects end in the run's name (a consumer is the stream's own,
// so its name may stay the harness's).
type peerEnv struct {
	c       config
	name    string // c.contextName as an identifier: the schema, the NOTIFY channel, the names' suffix
	natsURL string
	admin   *bus.Conn // keeps the embedded server, if any; deletes the streams at the end
	streams []string
}

// openPeer creates the run's schema and connects to NATS (or starts an
// embedded server listening on a free loopback port, which the harness's
// clients dial as they would c.nats), as the scenario needs. The cleanup
// deletes the streams and drops the schema.
func openPeer(ctx context.Context, c config) (env *peerEnv, cleanup func(), err error) {
	env = &peerEnv{c: c, name: strings.ReplaceAll(c.contextName, "-", "_")}
	usesPG, usesNATS := peerUses(c.scenario)
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if usesPG {
		if err := env.exec(ctx, "CREATE SCHEMA "+env.name); err != nil {
			return nil, nil, err
		}
		undo = append(undo, func() { _ = env.exec(context.Background(), "DROP SCHEMA IF EXISTS "+env.name+" CASCADE") })
	}
	if usesNATS {
		conn, closeConn, err := connectNATS(ctx, c, -1)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		env.admin, env.natsURL = conn, conn.ClientURL()
		undo = append(undo, closeConn, env.deleteStreams)
	}
	return env, cleanup, nil
}

// exec runs q on a connection of its own to c.pg.
func (e *peerEnv) exec(ctx context.Context, q string) error {
	conn, err := pgx.Connect(ctx, e.c.pg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, q)
	return err
}

func (e *peerEnv) deleteStreams() {
	if e.c.nats == "" {
		return // the embedded server's folder goes with it
	}
	for _, s := range e.streams {
		_ = e.admin.JetStream().DeleteStream(context.Background(), s)
	}
}

// pool is the harness's newPool: size connections, all opened at once.
func (e *peerEnv) pool(ctx context.Context, size int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(e.c.pg)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(size)
	cfg.MinConns = int32(size)
	cfg.ConnConfig.RuntimeParams["search_path"] = e.name
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return p, p.Ping(ctx)
}

// conn is one connection of its own.
func (e *peerEnv) conn(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(e.c.pg)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["search_path"] = e.name
	return pgx.ConnectConfig(ctx, cfg)
}

// named is a stream's name made the run's own.
func (e *peerEnv) named(base string) string { return base + "_" + e.name }

// natsConnect is a connection of its own named name, as the harness's.
func (e *peerEnv) natsConnect(name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(e.natsURL, nats.Name(name))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// resetStream deletes and recreates a file-backed stream with default
// settings, and deletes it at the end of the run.
func (e *peerEnv) resetStream(ctx context.Context, js jetstream.JetStream, name string, subjects ...string) (jetstream.Stream, error) {
	if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, err
	}
	e.streams = append(e.streams, name)
	return js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.FileStorage})
}

// settings are a peer result's settings with the NATS server noted, when
// the scenario uses one.
func (e *peerEnv) settings(s map[string]any) map[string]any {
	if _, usesNATS := peerUses(e.c.scenario); usesNATS {
		natsSettings(e.c, s)
	}
	return s
}

// spread runs fn(w, i) for i = 0 … calls-1 on writers goroutines, writer w
// taking the next i whenever it is free; it returns when all are done, with
// the first error (the writer that met it stops, the others go on).
func spread(writers, calls int, fn func(w, i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= calls {
					return
				}
				if err := fn(w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// peerMeta is the harness's event metadata.
func peerMeta(seq int) []byte {
	return fmt.Appendf(nil, `{"correlation_id":"c-%d","causation_id":"c-%d","user":"bench"}`, seq, seq)
}
