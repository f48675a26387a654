package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/store"
)

// metaPartitions is the stream metadata key recording the partition count.
const metaPartitions = "switchyard.partitions"

// Stream is one context's JetStream stream, SW_<CONTEXT> over sw.<context>.>.
type Stream struct {
	Name       string
	Context    string
	Partitions int
	MaxMsgSize int32 // 0: no limit beyond the server's max payload
	Duplicates time.Duration
	js         jetstream.Stream
	// batched: the stream takes fast batches (created so, on nats-server
	// 2.14 or later); cleared if the server refuses one.
	batched atomic.Bool
}

// JetStream returns the stream's JetStream handle.
func (s *Stream) JetStream() jetstream.Stream { return s.js }

// StreamName is the JetStream stream of the named context: SW_ and the
// context's name in upper case, '-' as '_'.
func StreamName(contextName string) string {
	return "SW_" + strings.ToUpper(strings.ReplaceAll(contextName, "-", "_"))
}

// StreamConflictError is an existing stream whose settings differ from the
// configured ones. Provisioning never changes a stream silently: change the
// configuration, or the stream (nats stream edit), so that they agree.
type StreamConflictError struct {
	Stream string
	Diffs  []string // "replicas: stream has 1, configured 3"
}

func (e *StreamConflictError) Error() string {
	return "bus: stream " + e.Stream + " exists with other settings: " + strings.Join(e.Diffs, "; ")
}

// ProvisionStream provisions the stream of the named context — creating
// it, or checking that the existing one has the configured settings — and
// returns it. It is idempotent and safe to call from many processes at
// once; a Conn provisions each stream once and then returns it.
func (c *Conn) ProvisionStream(ctx context.Context, contextName string) (*Stream, error) {
	if err := store.CheckName("context", contextName); err != nil {
		return nil, err
	}
	c.mu.Lock()
	s, ok := c.stream[contextName]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	sc := c.StreamConfig(contextName)
	want := sc.JetStream(StreamName(contextName), "Switchyard events of context "+contextName, "sw."+contextName+".>")
	want.MaxMsgSize, want.MaxAge, want.MaxMsgs, want.MaxBytes = -1, sc.MaxAge, -1, -1
	if sc.MaxMsgSize > 0 {
		want.MaxMsgSize = sc.MaxMsgSize
	}
	want.Discard = jetstream.DiscardOld
	want.Metadata = map[string]string{metaPartitions: strconv.Itoa(sc.Partitions)}
	// Not compared with an existing stream: the relay sends one publish per
	// event to a stream without it.
	want.AllowBatchPublish = true
	js, err := c.js.CreateStream(ctx, want)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		js, err = c.js.Stream(ctx, want.Name)
		if err == nil {
			err = compare(want, js.CachedInfo().Config)
		}
	}
	if err != nil {
		var conflict *StreamConflictError
		if errors.As(err, &conflict) {
			return nil, err
		}
		return nil, &Error{Op: "provision stream " + want.Name, URL: c.url, Err: err}
	}
	s = &Stream{Name: want.Name, Context: contextName, Partitions: sc.Partitions, MaxMsgSize: sc.MaxMsgSize, Duplicates: sc.Duplicates, js: js}
	s.batched.Store(js.CachedInfo().Config.AllowBatchPublish)
	c.mu.Lock()
	c.stream[contextName] = s
	c.mu.Unlock()
	return s, nil
}

// JetStream is the configuration of a JetStream stream named name over
// subjects with c's storage, replicas and de-duplication window, keeping
// messages until they are deleted (limits retention, no limits set).
func (c StreamConfig) JetStream(name, description string, subjects ...string) jetstream.StreamConfig {
	js := jetstream.StreamConfig{Name: name, Description: description, Subjects: subjects,
		Storage: jetstream.FileStorage, Replicas: c.Replicas, Duplicates: c.Duplicates, Retention: jetstream.LimitsPolicy}
	if c.Storage == "memory" {
		js.Storage = jetstream.MemoryStorage
	}
	return js
}

// compare lists the settings Switchyard manages that differ.
func compare(want, have jetstream.StreamConfig) error {
	var diffs []string
	diff := func(field string, h, w any) {
		if fmt.Sprint(h) != fmt.Sprint(w) {
			diffs = append(diffs, fmt.Sprintf("%s: stream has %v, configured %v", field, h, w))
		}
	}
	diff("subjects", have.Subjects, want.Subjects)
	diff("storage", have.Storage, want.Storage)
	diff("replicas", have.Replicas, want.Replicas)
	diff("duplicates", have.Duplicates, want.Duplicates)
	diff("max_msg_size", have.MaxMsgSize, want.MaxMsgSize)
	diff("max_age", have.MaxAge, want.MaxAge)
	diff("retention", have.Retention, want.Retention)
	diff("partitions", have.Metadata[metaPartitions], want.Metadata[metaPartitions])
	if len(diffs) > 0 {
		return &StreamConflictError{Stream: want.Name, Diffs: diffs}
	}
	return nil
}
