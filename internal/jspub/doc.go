// Package jspub publishes batches of messages to JetStream over one NATS
// connection without waiting for each, and collects the server's answers
// itself: every message's reply subject names its batch and index under
// one wildcard inbox, and an answer is read without reflection. It stands
// in for jetstream.PublishMsgAsync where that costs too much: its futures,
// bookkeeping and JSON decoding cost about as much as building a message.
//
// Start with [New]. A [Batch] from [Publisher.Batch] sends its messages one
// by one, each answered by its own PubAck:
//
//	b := p.Batch(len(msgs), "SW_VISITS")
//	for i, m := range msgs {
//		if err := b.Publish(i, m, false); err != nil { ... }
//	}
//	b.Seal()
//	outcomes := b.Wait(ctx, 5*time.Second) // nil: stored
//
// A [Run] from [Publisher.Run] sends consecutive batches as one JetStream
// fast batch (ADR-50, nats-server 2.14 and later, to a stream with
// AllowBatchPublish) in its "fail on gap" mode: the server answers with a
// flow ack every few hundred messages and one PubAck at the end, and
// stores nothing of the run after a message it refused, so a refused
// message is never overtaken by those sent behind it, in its batch or in
// the batches after it. Such messages fail with [ErrBatchEnded] and must be
// sent again.
//
// Only JetStream's word counts as stored: a PubAck naming the batch's
// stream. An answer from another responder on the subject, no answer in
// time ([ErrNoAck]) or a lost connection ([Publisher.FailAll]) is a
// failure.
//
// A Publisher and its batches and runs are safe for concurrent use; one
// batch is published by one goroutine.
package jspub
