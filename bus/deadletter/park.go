package deadletter

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/store"
)

// parkSubject is where group's messages parked under key go.
func parkSubject(contextName, group string, key uint64) string {
	return subject(contextName, group) + "." + strconv.FormatUint(key, 10)
}

// Park stores d, a later message of a stream whose dead letter has park
// key key, behind it, and waits for JetStream's ack. Parked messages keep
// the order they are parked in; parking the same delivery again stores it
// once.
func (q *Queue) Park(ctx context.Context, d *consumer.Delivery, group string, key uint64) error {
	if err := store.CheckName("group", group); err != nil {
		return err
	}
	h := original(d, group, "park:"+group+":"+strconv.FormatUint(d.Seq, 10))
	h.Set(HeaderParkKey, strconv.FormatUint(key, 10))
	m := &nats.Msg{Subject: parkSubject(q.contextName, group, key), Header: h, Data: d.Data}
	if _, err := q.conn.JetStream().PublishMsg(ctx, m); err != nil {
		return &bus.Error{Op: "park message " + strconv.FormatUint(d.Seq, 10) + " of group " + group, URL: q.conn.Server(), Err: err}
	}
	return nil
}

// Parked returns up to limit messages parked by group under key (a dead
// letter's ParkKey), from sequence from on, in the order they were parked.
func (q *Queue) Parked(ctx context.Context, group string, key uint64, from uint64, limit int) ([]Letter, error) {
	if key == 0 {
		return nil, nil
	}
	return q.scan(ctx, parkSubject(q.contextName, group, key), from, limit)
}

// Blocking returns the dead letters of group whose streams' later
// messages are parked behind them, oldest first. Unlike List, it does not
// count what is parked.
func (q *Queue) Blocking(ctx context.Context, group string) ([]Letter, error) {
	if err := store.CheckName("group", group); err != nil {
		return nil, err
	}
	var out []Letter
	for from := uint64(1); ; {
		page, err := q.scan(ctx, subject(q.contextName, group), from, store.MaxReadLimit)
		if err != nil {
			return nil, err
		}
		for _, dl := range page {
			if dl.ParkKey != 0 && dl.DecodeErr == nil {
				out = append(out, dl)
			}
		}
		if len(page) < store.MaxReadLimit {
			return out, nil
		}
		from = page[len(page)-1].Seq + 1
	}
}

// Drop removes every message parked under key by group.
func (q *Queue) Drop(ctx context.Context, group string, key uint64) error {
	if err := q.js.Purge(ctx, jetstream.WithPurgeSubject(parkSubject(q.contextName, group, key))); err != nil {
		return &bus.Error{Op: "drop the messages parked by group " + group, URL: q.conn.Server(), Err: err}
	}
	return nil
}
