package jspub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/internal/jspub"
	"github.com/switchyard-go/switchyard/internal/natstest"
)

// setup connects to a server of the test's own and returns a publisher on
// the connection, which fails its batches when the connection drops.
func setup(t *testing.T) (*natstest.Server, *nats.Conn, jetstream.JetStream, *jspub.Publisher) {
	t.Helper()
	srv := natstest.Start(t, false)
	var p *jspub.Publisher
	nc, err := nats.Connect(srv.URL, nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if p != nil {
				p.FailAll(nats.ErrDisconnected)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = jspub.New(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return srv, nc, js, p
}

func msg(subj, id, data string) *nats.Msg {
	m := nats.NewMsg(subj)
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = []byte(data)
	return m
}

// publish sends msgs as b, the last one ending b's run when last is set.
func publish(t *testing.T, b *jspub.Batch, msgs []*nats.Msg, last bool) *jspub.Batch {
	t.Helper()
	for i, m := range msgs {
		if err := b.Publish(i, m, last && i == len(msgs)-1); err != nil {
			t.Fatal(err)
		}
	}
	b.Seal()
	return b
}

// Answers from a real JetStream: a stored message, a duplicate, one over
// the stream's size limit, one nobody stores, one answered by a service
// rather than JetStream, and one never sent, each answered as a relay
// needs.
func TestBatchOutcomes(t *testing.T) {
	_, nc, js, p := setup(t)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "ACKS", Subjects: []string{"acks.>"}, MaxMsgSize: 100, Duplicates: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	// A service on a subject answers requests with something that looks
	// like a PubAck of another stream.
	impostor, err := nc.Subscribe("impostor", func(m *nats.Msg) { m.Respond([]byte(`{"stream":"OTHER","seq":1}`)) }) //nolint:errcheck
	if err != nil {
		t.Fatal(err)
	}
	defer impostor.Unsubscribe() //nolint:errcheck
	b := publish(t, p.Batch(6, "ACKS"), []*nats.Msg{
		msg("acks.a", "one", "x"),
		msg("acks.a", "one", "x"),                      // a duplicate: stored already
		msg("acks.a", "big", strings.Repeat("y", 500)), // over MaxMsgSize
		msg("elsewhere", "lost", "z"),                  // no stream: no responders
		msg("impostor", "fake", "w"),                   // answered by a service, not JetStream
	}, false) // index 5 is never sent
	got := b.Wait(context.Background(), 2*time.Second)
	if got[0] != nil || got[1] != nil {
		t.Errorf("stored and duplicate: %v, %v; want nil, nil", got[0], got[1])
	}
	if !jspub.IsTooLarge(got[2]) {
		t.Errorf("over the limit: %v; want a too-large error", got[2])
	}
	if !errors.Is(got[3], nats.ErrNoResponders) {
		t.Errorf("no stream: %v; want no responders", got[3])
	}
	if !errors.Is(got[4], jetstream.ErrInvalidJSAck) {
		t.Errorf("answered by a service: %v; want an invalid ack", got[4])
	}
	if !errors.Is(got[5], jspub.ErrNoAck) {
		t.Errorf("never sent: %v; want ErrNoAck", got[5])
	}
	if n := p.Open(); n != 0 {
		t.Errorf("%d batches still open after Wait", n)
	}
}

// A batch whose connection goes away is answered at once, not after the
// timeout; an answer that comes after Wait returned changes nothing.
func TestBatchConnectionLoss(t *testing.T) {
	srv, nc, js, p := setup(t)
	// A core subscriber takes the message and keeps its reply subject:
	// no answer comes until the test sends one.
	replies := make(chan string, 1)
	sink, err := nc.Subscribe("sink", func(m *nats.Msg) { replies <- m.Reply })
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Unsubscribe() //nolint:errcheck
	b := publish(t, p.Batch(1, "ACKS"), []*nats.Msg{msg("sink", "s", "x")}, false)
	var reply string
	select {
	case reply = <-replies:
	case <-time.After(5 * time.Second):
		t.Fatal("the sink got no message")
	}
	start := time.Now()
	srv.Stop()
	got := b.Wait(context.Background(), time.Minute)
	if !errors.Is(got[0], nats.ErrDisconnected) {
		t.Fatalf("outcome %v; want disconnected", got[0])
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("answered after %v: the timeout, not the loss", d)
	}

	srv.Restart()
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "ACKS", Subjects: []string{"acks.>"}}); err != nil {
		t.Fatal(err)
	}
	// The late answer, then a batch after it on the same subscription:
	// once that one is answered, the late one has been seen.
	if err := nc.Publish(reply, []byte(`{"stream":"ACKS","seq":1}`)); err != nil {
		t.Fatal(err)
	}
	after := publish(t, p.Batch(1, "ACKS"), []*nats.Msg{msg("acks.a", "after", "x")}, false)
	if err := after.Wait(context.Background(), 5*time.Second)[0]; err != nil {
		t.Fatalf("batch after the restart: %v", err)
	}
	if !errors.Is(got[0], nats.ErrDisconnected) {
		t.Fatalf("a late answer changed the outcome to %v", got[0])
	}
}

// Runs against a real JetStream: answered by flow acks and one PubAck, not
// one ack per message; re-sent, duplicates are taken; a refused message
// ends the run there, so nothing sent behind it is stored ahead of it, in
// its batch or the next; and a stream without fast batches refuses them.
func TestRuns(t *testing.T) {
	_, nc, js, p := setup(t)
	ctx := context.Background()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "FAST", Subjects: []string{"fast.>"}, MaxMsgSize: 200, Duplicates: time.Minute, AllowBatchPublish: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	fast := func(id, data string) *nats.Msg { return msg("fast.a", id, data) }
	stored := func() uint64 {
		t.Helper()
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	// Subscribers of the subject see what was published, and nothing more.
	seen, err := nc.SubscribeSync("fast.>")
	if err != nil {
		t.Fatal(err)
	}

	var first []*nats.Msg
	for i := range 200 {
		first = append(first, fast(fmt.Sprint("m", i), "x"))
	}
	in := nc.Stats().InMsgs
	r := p.Run("FAST", 100)
	fb := publish(t, r.Batch(len(first)), first, true)
	r.Commit() // as a relay does after a final batch: the run ended already
	for i, err := range fb.Wait(ctx, 5*time.Second) {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if n := stored(); n != 200 {
		t.Fatalf("stream holds %d messages, want 200", n)
	}
	if n, _, _ := seen.Pending(); n != 200 {
		t.Errorf("subscribers saw %d messages for 200 published", n)
	}
	if err := seen.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if answers := nc.Stats().InMsgs - in - 200; answers > 10 {
		t.Errorf("%d answers to a run of 200", answers)
	}

	// Flow acks settle a batch before the run ends; then the run goes on.
	r = p.Run("FAST", 10)
	var a, b []*nats.Msg
	for i := range 50 {
		a = append(a, fast(fmt.Sprint("a", i), "x"))
		b = append(b, fast(fmt.Sprint("b", i), "x"))
	}
	for i, err := range publish(t, r.Batch(len(a)), a, false).Wait(ctx, 5*time.Second) {
		if err != nil {
			t.Fatalf("first batch of an open run, message %d: %v", i, err)
		}
	}
	bb := publish(t, r.Batch(len(b)), b, false)
	r.Commit() // ends the run after b's last message
	for i, err := range bb.Wait(ctx, 5*time.Second) {
		if err != nil {
			t.Fatalf("batch ended by Commit, message %d: %v", i, err)
		}
	}
	if n := stored(); n != 300 {
		t.Fatalf("stream holds %d messages, want 300", n)
	}

	// A refusal in the first batch of a run drops the rest of the run,
	// the next batch included.
	r = p.Run("FAST", 100)
	x := publish(t, r.Batch(4), []*nats.Msg{
		fast("m0", "x"),                      // a duplicate
		fast("n1", "x"),                      // stored
		fast("n2", strings.Repeat("y", 500)), // over MaxMsgSize: refused
		fast("n3", "x"),                      // behind it: dropped
	}, false)
	y := publish(t, r.Batch(2), []*nats.Msg{fast("n4", "x"), fast("n5", "x")}, true)
	got := append(x.Wait(ctx, 5*time.Second), y.Wait(ctx, 5*time.Second)...)
	if got[0] != nil || got[1] != nil {
		t.Errorf("duplicate and stored: %v, %v; want nil, nil", got[0], got[1])
	}
	if !jspub.IsTooLarge(got[2]) {
		t.Errorf("over the limit: %v; want a too-large error", got[2])
	}
	for i := 3; i < len(got); i++ {
		if !errors.Is(got[i], jspub.ErrBatchEnded) {
			t.Errorf("message %d behind the refused one: %v; want ErrBatchEnded", i, got[i])
		}
	}
	if n := stored(); n != 301 {
		t.Fatalf("stream holds %d messages, want 301: nothing behind the refused message", n)
	}
	if n := p.Open(); n != 0 {
		t.Errorf("%d batches or runs still open after they ended", n)
	}

	// A stream that does not take fast batches refuses the first message;
	// with no batch begun, the rest is over.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain.>"}}); err != nil {
		t.Fatal(err)
	}
	var plain []*nats.Msg
	for i := range 4 {
		plain = append(plain, msg("plain.a", fmt.Sprint("p", i), "x"))
	}
	pr := p.Run("PLAIN", 100)
	for i, err := range publish(t, pr.Batch(len(plain)), plain, true).Wait(ctx, 5*time.Second) {
		var apiErr *jetstream.APIError
		if i == 0 && (!errors.As(err, &apiErr) || apiErr.ErrorCode != jspub.ErrCodeBatchDisabled) {
			t.Errorf("first message to a stream without fast batches: %v; want error code %d", err, jspub.ErrCodeBatchDisabled)
		}
		if i > 0 && !errors.Is(err, jspub.ErrBatchEnded) {
			t.Errorf("message %d to a stream without fast batches: %v; want ErrBatchEnded", i, err)
		}
	}
}
