package bus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/internal/natstest"
)

// The acks collector against a real JetStream: a stored message, a
// duplicate, one over the stream's size limit, one nobody stores, and one
// never sent, each answered as the relay needs.
func TestAcksOutcomes(t *testing.T) {
	srv := natstest.Start(t, false)
	c, err := Connect(context.Background(), Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "ACKS", Subjects: []string{"acks.>"}, MaxMsgSize: 100, Duplicates: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	// A service on a subject answers requests with something that looks
	// like a PubAck of another stream.
	impostor, err := c.nc.Subscribe("impostor", func(m *nats.Msg) { m.Respond([]byte(`{"stream":"OTHER","seq":1}`)) }) //nolint:errcheck
	if err != nil {
		t.Fatal(err)
	}
	defer impostor.Unsubscribe() //nolint:errcheck
	msg := func(subj, id, data string) *nats.Msg {
		m := nats.NewMsg(subj)
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Data = []byte(data)
		return m
	}
	b := c.acks().begin(6, "ACKS")
	for i, m := range []*nats.Msg{
		msg("acks.a", "one", "x"),
		msg("acks.a", "one", "x"),                      // a duplicate: stored already
		msg("acks.a", "big", strings.Repeat("y", 500)), // over MaxMsgSize
		msg("elsewhere", "lost", "z"),                  // no stream: no responders
		msg("impostor", "fake", "w"),                   // answered by a service, not JetStream
	} {
		if err := b.publish(i, m); err != nil {
			t.Fatal(err)
		}
	}
	b.seal() // index 5 is never sent
	got := b.wait(context.Background(), 2*time.Second)
	if got[0] != nil || got[1] != nil {
		t.Errorf("stored and duplicate: %v, %v; want nil, nil", got[0], got[1])
	}
	if !isTooLarge(got[2]) {
		t.Errorf("over the limit: %v; want a too-large error", got[2])
	}
	if !errors.Is(got[3], nats.ErrNoResponders) {
		t.Errorf("no stream: %v; want no responders", got[3])
	}
	if !errors.Is(got[4], jetstream.ErrInvalidJSAck) {
		t.Errorf("answered by a service: %v; want an invalid ack", got[4])
	}
	if !errors.Is(got[5], errNoAck) {
		t.Errorf("never sent: %v; want errNoAck", got[5])
	}
	if n := len(c.acks().batches); n != 0 {
		t.Errorf("%d batches still tracked after wait", n)
	}
}

// A batch whose connection goes away is answered at once, not after the
// timeout; and an ack for a batch already settled is dropped.
func TestAcksConnectionLoss(t *testing.T) {
	srv := natstest.Start(t, false)
	c, err := Connect(context.Background(), Config{URL: srv.URL, ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := c.acks().begin(1, "ACKS")
	b.pending++ // as if published, its ack outstanding
	b.seal()
	start := time.Now()
	srv.Stop()
	got := b.wait(context.Background(), time.Minute)
	if !errors.Is(got[0], nats.ErrDisconnected) {
		t.Fatalf("outcome %v; want disconnected", got[0])
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("answered after %v: the timeout, not the loss", d)
	}
	b.answer(0, nil) // late: ignored
	if !errors.Is(b.errs[0], nats.ErrDisconnected) {
		t.Fatalf("a late ack changed the outcome to %v", b.errs[0])
	}
}
