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

// ackConn connects with cfg to an embedded server of the test's own.
func ackConn(t *testing.T, cfg Config) (*natstest.Server, *Conn) {
	t.Helper()
	srv := natstest.Start(t, false)
	cfg.URL = srv.URL
	c, err := Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

// The acks collector against a real JetStream: a stored message, a
// duplicate, one over the stream's size limit, one nobody stores, and one
// never sent, each answered as the relay needs.
func TestAcksOutcomes(t *testing.T) {
	_, c := ackConn(t, Config{})
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
		if err := b.publish(i, m, false); err != nil {
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
	srv, c := ackConn(t, Config{ReconnectWait: 50 * time.Millisecond})
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

// Runs against a real JetStream: answered by flow acks and one PubAck, not
// one ack per message; re-sent, duplicates are taken; a refused message
// ends the run there, so nothing sent behind it is stored ahead of it, in
// its batch or the next; and a stream without fast batches refuses them.
func TestAcksRuns(t *testing.T) {
	_, c := ackConn(t, Config{})
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
	// send publishes msgs as the next batch of r, the last one ending r
	// when commit is set, and returns their outcomes.
	send := func(r *run, msgs []*nats.Msg, commit bool) *batchAcks {
		t.Helper()
		b := r.begin(len(msgs))
		for i, m := range msgs {
			if err := b.publish(i, m, commit && i == len(msgs)-1); err != nil {
				t.Fatal(err)
			}
		}
		b.seal()
		return b
	}
	stored := func() uint64 {
		t.Helper()
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	// Subscribers of the subject see what was published, and nothing more.
	seen, err := c.nc.SubscribeSync("fast.>")
	if err != nil {
		t.Fatal(err)
	}

	var first []*nats.Msg
	for i := range 200 {
		first = append(first, msg(fmt.Sprint("m", i), "x"))
	}
	in := c.nc.Stats().InMsgs
	r := c.acks().newRun("FAST", 100)
	fb := send(r, first, true)
	r.commit() // as the relay does after a final batch: the run ended already
	for i, err := range fb.wait(ctx, 5*time.Second) {
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
	if answers := c.nc.Stats().InMsgs - in - 200; answers > 10 {
		t.Errorf("%d answers to a run of 200", answers)
	}

	// Flow acks settle a batch before the run ends; then the run goes on.
	r = c.acks().newRun("FAST", 10)
	var a, b []*nats.Msg
	for i := range 50 {
		a = append(a, msg(fmt.Sprint("a", i), "x"))
		b = append(b, msg(fmt.Sprint("b", i), "x"))
	}
	for i, err := range send(r, a, false).wait(ctx, 5*time.Second) {
		if err != nil {
			t.Fatalf("first batch of an open run, message %d: %v", i, err)
		}
	}
	bb := send(r, b, false)
	r.commit() // ends the run after b's last message
	for i, err := range bb.wait(ctx, 5*time.Second) {
		if err != nil {
			t.Fatalf("batch ended by commit, message %d: %v", i, err)
		}
	}
	if n := stored(); n != 300 {
		t.Fatalf("stream holds %d messages, want 300", n)
	}

	// A refusal in the first batch of a run drops the rest of the run,
	// the next batch included.
	r = c.acks().newRun("FAST", 100)
	x := send(r, []*nats.Msg{
		msg("m0", "x"),                      // a duplicate
		msg("n1", "x"),                      // stored
		msg("n2", strings.Repeat("y", 500)), // over MaxMsgSize: refused
		msg("n3", "x"),                      // behind it: dropped
	}, false)
	y := send(r, []*nats.Msg{msg("n4", "x"), msg("n5", "x")}, true)
	got := append(x.wait(ctx, 5*time.Second), y.wait(ctx, 5*time.Second)...)
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
	if n := stored(); n != 301 {
		t.Fatalf("stream holds %d messages, want 301: nothing behind the refused message", n)
	}
	if n := len(c.acks().runs); n != 0 {
		t.Errorf("%d runs still tracked after they ended", n)
	}

	// A stream that does not take fast batches refuses the first message;
	// with no batch begun, the rest is over.
	if _, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain.>"}}); err != nil {
		t.Fatal(err)
	}
	var plain []*nats.Msg
	for i := range 4 {
		m := msg(fmt.Sprint("p", i), "x")
		m.Subject = "plain.a"
		plain = append(plain, m)
	}
	for i, err := range send(c.acks().newRun("PLAIN", 100), plain, true).wait(ctx, 5*time.Second) {
		var apiErr *jetstream.APIError
		if i == 0 && (!errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeBatchDisabled) {
			t.Errorf("first message to a stream without fast batches: %v; want error code %d", err, errCodeBatchDisabled)
		}
		if i > 0 && !errors.Is(err, errBatchEnded) {
			t.Errorf("message %d to a stream without fast batches: %v; want errBatchEnded", i, err)
		}
	}
}
