package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream peers: nats.go's stock publishing and consuming, on a
// stream of the harness's settings (file storage, the rest defaults).

// benchConn is a js-* scenario's connection, named name, and the run's
// stream ("BENCH" over "bench.>" in the harness); subject is where its
// messages go (token: the harness's "a", "s" or "c").
type benchConn struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string
}

func openBench(ctx context.Context, env *peerEnv, name, token string) (*benchConn, error) {
	nc, js, err := env.natsConnect(name)
	if err != nil {
		return nil, err
	}
	prefix := "bench." + env.name
	st, err := env.resetStream(ctx, js, env.named("BENCH"), prefix+".>")
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &benchConn{nc: nc, js: js, stream: st, subject: prefix + "." + token}, nil
}

// publishAsync retries when the client-side async window is full
// (ErrTooManyStalledMsgs), as when the server acks slowly (JetStream
// sync_interval always).
func publishAsync(ctx context.Context, js jetstream.JetStream, m *nats.Msg) (jetstream.PubAckFuture, error) {
	for {
		f, err := js.PublishMsgAsync(m)
		if err == nil || !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// benchMsg is message i of repetition rep, with the harness's Nats-Msg-Id.
func benchMsg(subject string, data []byte, i int, rep int) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("r%d-m%d", rep, i))
	return m
}

// jsPublishAsync: 1 connection, PublishMsgAsync with a Nats-Msg-Id, then
// wait for PublishAsyncComplete.
func jsPublishAsync(ctx context.Context, env *peerEnv) (*result, error) {
	c := env.c
	b, err := openBench(ctx, env, "bench-pub-async", "a")
	if err != nil {
		return nil, err
	}
	defer b.nc.Close()
	js := b.js
	data := make([]byte, c.size)
	for i := range data {
		data[i] = 'a' + byte(i%26)
	}
	msgs := make([]*nats.Msg, c.n)
	for i := range msgs {
		msgs[i] = benchMsg(b.subject, data, i, c.rep)
	}
	cs := snapCPU(c.pgPID, c.natsPID)
	start := time.Now()
	futs := make([]jetstream.PubAckFuture, 0, c.n)
	for _, m := range msgs {
		f, err := publishAsync(ctx, js, m)
		if err != nil {
			return nil, err
		}
		futs = append(futs, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	wall := time.Since(start)
	ce := snapCPU(c.pgPID, c.natsPID)
	if failed := unacked(futs); failed > 0 {
		return nil, fmt.Errorf("%d async publishes failed", failed)
	}
	return &result{N: c.n, WallS: round(wall.Seconds(), 3), PerS: round(float64(c.n)/wall.Seconds(), 0), timed: cpuUse(cs, ce),
		Settings: env.settings(map[string]any{"msg_bytes": c.size, "max_pending": "default(4000)", "msg_id": true}),
		Notes:    "1 connection, PublishMsgAsync with Nats-Msg-Id, wait PublishAsyncComplete"}, nil
}

// unacked counts the futures without an ack.
func unacked(futs []jetstream.PubAckFuture) int {
	failed := 0
	for _, f := range futs {
		select {
		case <-f.Ok():
		default:
			failed++
		}
	}
	return failed
}

// jsPublishSync: PublishMsg (which waits for the PubAck) from the writers,
// on one connection; latency per publish.
func jsPublishSync(ctx context.Context, env *peerEnv) (*result, error) {
	c := env.c
	b, err := openBench(ctx, env, "bench-pub-sync", "s")
	if err != nil {
		return nil, err
	}
	defer b.nc.Close()
	data := make([]byte, c.size)
	lat := make([]time.Duration, c.n)
	cs := snapCPU(c.pgPID, c.natsPID)
	start := time.Now()
	err = spread(c.writers, c.n, func(_, i int) error {
		m := benchMsg(b.subject, data, i, c.rep)
		t0 := time.Now()
		if _, err := b.js.PublishMsg(ctx, m); err != nil {
			return err
		}
		lat[i] = time.Since(t0)
		return nil
	})
	wall := time.Since(start)
	ce := snapCPU(c.pgPID, c.natsPID)
	if err != nil {
		return nil, err
	}
	r := &result{N: c.n, Writers: c.writers, WallS: round(wall.Seconds(), 3), PerS: round(float64(c.n)/wall.Seconds(), 0), timed: cpuUse(cs, ce),
		Settings: env.settings(map[string]any{"msg_bytes": c.size, "msg_id": true}),
		Notes:    "PublishMsg (waits for PubAck) from c.Writers goroutines on 1 connection"}
	r.P50Ms, r.P99Ms, r.MaxMs = percentiles(lat)
	return r, nil
}

// jsConsume: a stream pre-filled with n messages read by a durable pull
// consumer with explicit acks, Consume()'s defaults and Ack() per message.
func jsConsume(ctx context.Context, env *peerEnv) (*result, error) {
	c := env.c
	b, err := openBench(ctx, env, "bench-consume", "c")
	if err != nil {
		return nil, err
	}
	defer b.nc.Close()
	cons, err := prefilled(ctx, c, b)
	if err != nil {
		return nil, err
	}
	var got atomic.Int64
	done := make(chan struct{})
	cs := snapCPU(c.pgPID, c.natsPID)
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got.Add(1) == int64(c.n) {
			close(done)
		}
	})
	if err != nil {
		return nil, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		cc.Stop()
		return nil, fmt.Errorf("consumed %d/%d: %w", got.Load(), c.n, ctx.Err())
	}
	wall := time.Since(start)
	ce := snapCPU(c.pgPID, c.natsPID)
	cc.Stop()
	_ = b.nc.Flush() // the acks reached the server
	r := &result{N: c.n, WallS: round(wall.Seconds(), 3), PerS: round(float64(c.n)/wall.Seconds(), 0), timed: cpuUse(cs, ce),
		Settings: env.settings(map[string]any{"durable": true, "ack": "explicit, Ack() (not DoubleAck)", "pull": "Consume() defaults (500 msgs in flight)"})}
	if info, _ := cons.Info(ctx); info != nil {
		r.Notes = "ack_floor=" + strconv.FormatUint(info.AckFloor.Stream, 10)
	}
	return r, nil
}

// prefilled is js-consume's durable consumer of the stream, holding n
// messages.
func prefilled(ctx context.Context, c config, b *benchConn) (jetstream.Consumer, error) {
	data := make([]byte, c.size)
	for i := range c.n {
		if _, err := publishAsync(ctx, b.js, benchMsg(b.subject, data, i, c.rep)); err != nil {
			return nil, err
		}
	}
	select {
	case <-b.js.PublishAsyncComplete():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench-consumer", AckPolicy: jetstream.AckExplicitPolicy})
}
