package bus

import (
	"context"
	"errors"
	"fmt"
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
	b := c.acks().begin(6, "ACKS", false)
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
	b := c.acks().begin(1, "ACKS", false)
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

// A fast batch against a real JetStream: answered by one PubAck, not one
// ack per message; re-sent, its duplicates are taken; and a refused
// message ends it there, so nothing behind it is stored ahead of it.
func TestAcksFastBatch(t *testing.T) {
	srv := natstest.Start(t, false)
	c, err := Connect(context.Background(), Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	st, err := c.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "FAST", Subjects: []string{"fast.>"}, MaxMsgSize: 200, Duplicates: time.Minute, AllowBatchPublish: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(id, data string) *nats.Msg {
		m := nats.NewMsg("fast.a")
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Data = []byte(data)
		return m
	}
	send := func(msgs []*nats.Msg) []error {
		t.Helper()
		b := c.acks().begin(len(msgs), "FAST", true)
		if b.fast == "" {
			t.Fatal("not sent as a fast batch")
		}
		for i, m := range msgs {
			if err := b.publish(i, m); err != nil {
				t.Fatal(err)
			}
		}
		b.seal()
		return b.wait(ctx, 5*time.Second)
	}
	stored := func() uint64 {
		t.Helper()
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	var first []*nats.Msg
	for i := range 200 {
		first = append(first, msg(fmt.Sprint("m", i), "x"))
	}
	in := c.nc.Stats().InMsgs
	for i, err := range send(first) {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if answers := c.nc.Stats().InMsgs - in; answers > 10 {
		t.Errorf("%d answers to a fast batch of 200", answers)
	}
	if n := stored(); n != 200 {
		t.Fatalf("stream holds %d messages, want 200 (the commit is not one)", n)
	}

	second := []*nats.Msg{
		msg("m0", "x"),                                 // a duplicate
		msg("n1", "x"),                                 // stored
		msg("n2", strings.Repeat("y", 500)),            // over MaxMsgSize: refused
		msg("n3", "x"), msg("n4", "x"), msg("n5", "x"), // behind it: dropped
	}
	got := send(second)
	if got[0] != nil || got[1] != nil {
		t.Errorf("duplicate and stored: %v, %v; want nil, nil", got[0], got[1])
	}
	if !isTooLarge(got[2]) {
		t.Errorf("over the limit: %v; want a too-large error", got[2])
	}
	for i := 3; i < len(got); i++ {
		if !errors.Is(got[i], errBatchEnded) {
			t.Errorf("message %d behind the refused one: %v; want errBatchEnded", i, got[i])
		}
	}
	if n := stored(); n != 201 {
		t.Fatalf("stream holds %d messages, want 201: nothing behind the refused message", n)
	}

	// A stream that does not take fast batches refuses each message.
	if _, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain.>"}}); err != nil {
		t.Fatal(err)
	}
	b := c.acks().begin(4, "PLAIN", true)
	for i := range 4 {
		m := msg(fmt.Sprint("p", i), "x")
		m.Subject = "plain.a"
		if err := b.publish(i, m); err != nil {
			t.Fatal(err)
		}
	}
	b.seal()
	for i, err := range b.wait(ctx, 5*time.Second) {
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeBatchDisabled {
			t.Errorf("message %d to a stream without fast batches: %v; want error code %d", i, err, errCodeBatchDisabled)
		}
	}
}
