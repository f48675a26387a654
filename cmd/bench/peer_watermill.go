package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The pipeline a Go user assembles from watermill (watermill-e2e*): the
// append transaction inserts the event and publishes it through a
// watermill-sql publisher wrapped in the forwarder's; the forwarder moves
// the outbox (watermill-sql subscriber) to JetStream (watermill-nats
// publisher); a Router handler with CorrelationID, Retry and Recoverer
// consumes a durable JetStream consumer.

// errLogger logs errors only (watermill-nats's subscriber logs every
// message at Info).
type errLogger struct {
	log    *slog.Logger
	fields watermill.LogFields
}

func (l errLogger) Error(msg string, err error, fields watermill.LogFields) {
	l.log.Error("watermill error: "+msg, "error", err, "fields", fields)
}
func (l errLogger) Info(string, watermill.LogFields)  {}
func (l errLogger) Debug(string, watermill.LogFields) {}
func (l errLogger) Trace(string, watermill.LogFields) {}
func (l errLogger) With(f watermill.LogFields) watermill.LoggerAdapter {
	return errLogger{log: l.log, fields: l.fields.Add(f)}
}

const (
	wmOutboxTopic = "outbox" // watermill-sql's topic: table "watermill_outbox" (in the run's schema)
	wmDurable     = "wm-handler"
)

// wmRun is one run of the watermill pipeline.
type wmRun struct {
	env    *peerEnv
	poll   time.Duration
	batch  int
	topic  string // the JetStream stream and subject (the harness's "events")
	logger errLogger
	pool   *pgxpool.Pool
	db     *sql.DB
	schema wmsql.DefaultPostgreSQLSchema
	tr     *tracker
	closer []func() // in reverse order, at the end
}

func watermillE2E(ctx context.Context, env *peerEnv) (*result, error) {
	c := env.c
	w := &wmRun{env: env, poll: time.Second, batch: 100, topic: env.named("events"), logger: errLogger{log: c.log}, tr: newTracker(c.n)} // watermill-sql v3's defaults
	if c.scenario == "watermill-e2e-fast" {
		w.poll, w.batch = 10*time.Millisecond, 1000
	}
	if c.peer.wmPoll > 0 {
		w.poll = c.peer.wmPoll
	}
	if c.peer.wmBatch > 0 {
		w.batch = c.peer.wmBatch
	}
	defer w.close()
	fwd, err := w.forwarder(ctx)
	if err != nil {
		return nil, err
	}
	router, err := w.router()
	if err != nil {
		return nil, err
	}
	shutdown := w.start(fwd, router)
	defer shutdown()
	before := readPGStats(ctx, w.pool)
	cs := snapCPU(c.pgPID, c.natsPID)
	lastCommit, err := w.tr.runWriters(ctx, c, w.appender())
	if err != nil {
		return nil, err
	}
	r := &result{Writers: c.writers}
	w.tr.finish(ctx, r, lastCommit)
	r.timed = cpuUse(cs, snapCPU(c.pgPID, c.natsPID))
	time.Sleep(300 * time.Millisecond) // let the last acks go out before closing
	shutdown()
	applyPGStats(context.Background(), env, w.pool, r, before)
	r.Settings = env.settings(map[string]any{"poll_interval": w.poll.String(), "subscribe_batch": w.batch, "ack_async": c.peer.wmAckAsync, "writers": c.writers})
	r.Notes = "database/sql over pgx/v5 stdlib; forwarder envelope in watermill_outbox; watermill-nats/v2 pkg/jetstream pub+sub" + r.Notes
	return r, nil
}

func (w *wmRun) close() {
	for i := len(w.closer) - 1; i >= 0; i-- {
		w.closer[i]()
	}
}

// connect is a NATS connection closed at the end of the run.
func (w *wmRun) connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, js, err := w.env.natsConnect(name)
	if err == nil {
		w.closer = append(w.closer, nc.Close)
	}
	return nc, js, err
}

// forwarder makes the tables and the stream, and the forwarder from the
// SQL outbox to JetStream.
func (w *wmRun) forwarder(ctx context.Context) (*forwarder.Forwarder, error) {
	var err error
	if w.pool, err = w.env.pool(ctx, w.env.c.writers+4); err != nil {
		return nil, err
	}
	w.closer = append(w.closer, w.pool.Close)
	w.db = stdlib.OpenDBFromPool(w.pool)
	w.closer = append(w.closer, func() { _ = w.db.Close() })
	if _, err := w.pool.Exec(ctx, eventsDDL("events", "")+
		`DROP TABLE IF EXISTS watermill_outbox; DROP TABLE IF EXISTS watermill_offsets_outbox;`); err != nil {
		return nil, err
	}
	w.schema = wmsql.DefaultPostgreSQLSchema{SubscribeBatchSize: w.batch}
	sqlSub, err := wmsql.NewSubscriber(w.db, wmsql.SubscriberConfig{
		SchemaAdapter:    w.schema,
		OffsetsAdapter:   wmsql.DefaultPostgreSQLOffsetsAdapter{},
		PollInterval:     w.poll,
		InitializeSchema: true,
	}, w.logger)
	if err != nil {
		return nil, err
	}
	if err := sqlSub.SubscribeInitialize(wmOutboxTopic); err != nil {
		return nil, err
	}
	_, _ = w.pool.Exec(ctx, "CHECKPOINT")
	_, js, err := w.connect("wm-admin")
	if err != nil {
		return nil, err
	}
	if _, err := w.env.resetStream(ctx, js, w.topic, w.topic); err != nil {
		return nil, err
	}
	ncPub, _, err := w.connect("wm-forwarder-pub")
	if err != nil {
		return nil, err
	}
	natsPub, err := wmjs.NewPublisher(wmjs.PublisherConfig{Conn: ncPub, Logger: w.logger})
	if err != nil {
		return nil, err
	}
	w.closer = append(w.closer, func() { _ = natsPub.Close() })
	return forwarder.NewForwarder(sqlSub, natsPub, w.logger, forwarder.Config{ForwarderTopic: wmOutboxTopic})
}

// router is the consumer: a Router whose handler tells the tracker.
func (w *wmRun) router() (*message.Router, error) {
	ncSub, _, err := w.connect("wm-handler-sub")
	if err != nil {
		return nil, err
	}
	natsSub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
		Conn:     ncSub,
		Logger:   w.logger,
		AckAsync: w.env.c.peer.wmAckAsync,
		ResourceInitializer: func(ctx context.Context, js jetstream.JetStream, topic string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
			st, err := js.Stream(ctx, topic)
			if err != nil {
				return nil, nil, err
			}
			cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: wmDurable, AckPolicy: jetstream.AckExplicitPolicy})
			return cons, nil, err
		},
	})
	if err != nil {
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{}, w.logger)
	if err != nil {
		return nil, err
	}
	router.AddMiddleware(
		middleware.CorrelationID,
		middleware.Retry{MaxRetries: 3, InitialInterval: 10 * time.Millisecond, Logger: w.logger}.Middleware,
		middleware.Recoverer,
	)
	router.AddConsumerHandler("events-handler", w.topic, natsSub, func(msg *message.Message) error {
		seq, err := strconv.Atoi(msg.Metadata.Get("seq"))
		if err != nil {
			return fmt.Errorf("bad seq: %w", err)
		}
		w.tr.received(seq)
		return nil
	})
	return router, nil
}

// start runs the forwarder and the router until shutdown, which closes
// both, waits for them and can be called again.
func (w *wmRun) start(fwd *forwarder.Forwarder, router *message.Router) (shutdown func()) {
	runCtx, stopRun := context.WithCancel(context.Background())
	fwdDone, rtDone := make(chan error, 1), make(chan error, 1)
	go func() { fwdDone <- fwd.Run(runCtx) }()
	go func() { rtDone <- router.Run(runCtx) }()
	<-fwd.Running()
	<-router.Running()
	stopped := false
	return func() {
		if stopped {
			return
		}
		stopped = true
		_ = fwd.Close()
		_ = router.Close()
		<-fwdDone
		<-rtDone
		stopRun()
	}
}

// appender is a writer's append: in one database/sql transaction the event
// row and its outbox row, through a watermill-sql publisher made for the
// transaction and wrapped in the forwarder's.
func (w *wmRun) appender() func(ctx context.Context, wr, seq, version int) error {
	c := w.env.c
	data := make([][]byte, c.n) // each event's data carries its seq
	for i := range data {
		data[i] = payload(c.size, i)
	}
	meta := peerMeta(1)
	return func(ctx context.Context, wr, seq, version int) (err error) {
		id := uuid.New()
		tx, err := w.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				_ = tx.Rollback()
			}
		}()
		if _, err = tx.ExecContext(ctx, insertEventSQL, id, fmt.Sprintf("acct-%d-%d", c.rep, wr), version, "MoneyDeposited", data[seq], meta); err != nil {
			return err
		}
		sqlPub, err := wmsql.NewPublisher(tx, wmsql.PublisherConfig{SchemaAdapter: w.schema}, w.logger)
		if err != nil {
			return err
		}
		pub := forwarder.NewPublisher(sqlPub, forwarder.PublisherConfig{ForwarderTopic: wmOutboxTopic})
		msg := message.NewMessage(id.String(), data[seq])
		msg.Metadata.Set("seq", strconv.Itoa(seq))
		msg.Metadata.Set(jetstream.MsgIDHeader, id.String()) // becomes the Nats-Msg-Id header (dedup)
		if err = pub.Publish(w.topic, msg); err != nil {
			return err
		}
		return tx.Commit()
	}
}
