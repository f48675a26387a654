package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/switchyard-go/switchyard/bus"
)

// Bucket is the NATS key-value bucket of the replicas' records, one key
// per running replica.
const Bucket = "sw_replicas"

// Every is how often a replica refreshes its record; a record not
// refreshed for three times as long expires (the replica died).
const Every = 2 * time.Second

// Replica is what one running process says about itself: the stores whose
// relay it leads and its share of each consumer group.
type Replica struct {
	ID      string           `json:"id"`  // its name (handlers.RunnerConfig.Replica)
	Key     string           `json:"key"` // its record's key: ID and a suffix of its own, so two replicas given one name both show
	Host    string           `json:"host"`
	PID     int              `json:"pid"`
	Started time.Time        `json:"started"`
	Seen    time.Time        `json:"seen"`             // when the record was written
	Relays  map[string]Relay `json:"relays,omitempty"` // by "context/shard", the stores it relays (leading or standing by)
	Groups  map[string]Share `json:"groups,omitempty"` // by group name
}

// Relay is a replica's relay of one store.
type Relay struct {
	Leader      bool    `json:"leader"`
	Checkpoint  string  `json:"checkpoint,omitempty"`
	Published   uint64  `json:"published"`         // since the replica started
	Quarantined uint64  `json:"quarantined"`       // since the replica started
	Behind      float64 `json:"behind_s"`          // seconds behind the log, while it leads
	HeldBy      string  `json:"held_by,omitempty"` // a transaction holding its reads back (bus.RelayStatus.HeldBy)
	LastError   string  `json:"last_error,omitempty"`
}

// Share is a replica's share of one consumer group.
type Share struct {
	Context string          `json:"context"`
	Source  string          `json:"source"`
	Owned   []int           `json:"owned"`             // partitions it handles
	Blocked map[int]Blocked `json:"blocked,omitempty"` // partitions waiting for the infrastructure
}

// Blocked is a partition that waits for the infrastructure to come back.
type Blocked struct {
	Since  time.Time `json:"since"`
	Waits  int       `json:"waits"`
	Reason string    `json:"reason"`
}

// ReplicaID names this process: its host name and process id.
func ReplicaID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// key makes a bucket key of id: what a key cannot hold becomes '-', and
// a suffix of its own follows.
func key(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, id) + "_" + nuid.Next()
}

// Announce keeps this process's record in the bucket until ctx ends,
// writing snapshot() every Every (ID, Key, Host, PID and Seen filled in),
// and then deletes it. A failed write is logged, once until a write succeeds
// again, and tried at the next tick: the record expires meanwhile, and
// status shows the replica as gone.
func Announce(ctx context.Context, conn *bus.Conn, id string, snapshot func() Replica, logger *slog.Logger) {
	host, _ := os.Hostname()
	k := key(id)
	var kv jetstream.KeyValue
	failing := false
	tick := time.NewTicker(Every)
	defer tick.Stop()
	for {
		err := func() error {
			if kv == nil {
				var err error
				if kv, err = bucket(ctx, conn); err != nil {
					return err
				}
			}
			r := snapshot()
			r.ID, r.Key, r.Host, r.PID, r.Seen = id, k, host, os.Getpid(), time.Now().UTC()
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			_, err = kv.Put(ctx, k, b)
			return err
		}()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			logger.WarnContext(ctx, "status: the replica's record cannot be written; status will not show it", "replica", id, "error", err)
			failing = true
		case err == nil && failing:
			logger.InfoContext(ctx, "status: the replica's record is written again", "replica", id)
			failing = false
		}
		select {
		case <-ctx.Done():
			if kv != nil {
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				_ = kv.Delete(dctx, k) // else it expires
				cancel()
			}
			return
		case <-tick.C:
		}
	}
}

// bucket creates or opens the replicas' bucket.
func bucket(ctx context.Context, conn *bus.Conn) (jetstream.KeyValue, error) {
	kv, err := conn.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Switchyard: the running replicas, what each relays and handles",
		TTL:         3 * Every,
		History:     1,
		Storage:     jetstream.MemoryStorage,
	})
	if err != nil {
		return nil, &bus.Error{Op: "open bucket " + Bucket, URL: conn.Server(), Err: err}
	}
	return kv, nil
}

// replicas reads every live replica's record; none when the bucket does
// not exist (nothing ever ran).
func replicas(ctx context.Context, conn *bus.Conn) ([]Replica, error) {
	kv, err := conn.JetStream().KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, &bus.Error{Op: "open bucket " + Bucket, URL: conn.Server(), Err: err}
	}
	// The keys from the stream's info, not kv.ListKeys: that creates a
	// consumer, which a read-only NATS user may not (ReadPermissions).
	prefix := "$KV." + Bucket + "."
	var info *jetstream.StreamInfo
	s, err := conn.JetStream().Stream(ctx, "KV_"+Bucket)
	if err == nil {
		info, err = s.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	}
	if err != nil {
		return nil, &bus.Error{Op: "list bucket " + Bucket, URL: conn.Server(), Err: err}
	}
	out := []Replica{}
	for _, subject := range slices.Sorted(maps.Keys(info.State.Subjects)) {
		key := strings.TrimPrefix(subject, prefix)
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted, or gone meanwhile
		}
		if err != nil {
			return nil, &bus.Error{Op: "read replica " + key, URL: conn.Server(), Err: err}
		}
		var r Replica
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			return nil, fmt.Errorf("status: replica %s: bad record: %w", key, err)
		}
		out = append(out, r)
	}
	return out, nil
}
