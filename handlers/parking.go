package handlers

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/correlation"
)

// parking knows which streams of a group have a dead letter that their
// later messages are parked behind, and its park key. A stream is one
// store's: the same name in another shard is another stream. Only the
// replica that owns a stream's partition changes its entry (it
// dead-letters, parks, replays); a replica that takes a partition over
// reloads the partition's entries from the dead-letter queue first.
type parking struct {
	partitions int
	mu         sync.RWMutex
	keys       map[streamOf]uint64 // → park key
}

// streamOf names a stream of the source context: its shard and name.
type streamOf struct{ shard, stream string }

func newParking(partitions int) *parking {
	return &parking{partitions: partitions, keys: make(map[streamOf]uint64)}
}

// behind returns the park key of s's dead letter, if it has one.
func (p *parking) behind(s streamOf) (uint64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	key, ok := p.keys[s]
	return key, ok
}

// block parks s's later messages behind the dead letter with key.
func (p *parking) block(s streamOf, key uint64) {
	p.mu.Lock()
	p.keys[s] = key
	p.mu.Unlock()
}

// unblock lets s's messages through again, if the dead letter with key
// still stands for it.
func (p *parking) unblock(s streamOf, key uint64) {
	p.mu.Lock()
	if p.keys[s] == key {
		delete(p.keys, s)
	}
	p.mu.Unlock()
}

// reload replaces the entries of partition's streams with those the dead
// letters in blocking stand for (of every partition).
func (p *parking) reload(partition int, blocking []deadletter.Letter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := range p.keys {
		if bus.Partition(s.stream, p.partitions) == partition {
			delete(p.keys, s)
		}
	}
	for _, dl := range blocking {
		s := streamOf{dl.Event.Metadata.Get(correlation.Shard), dl.Event.Stream}
		if _, seen := p.keys[s]; !seen && bus.Partition(s.stream, p.partitions) == partition {
			p.keys[s] = dl.ParkKey
		}
	}
}

// Blocked is a partition that waits for infrastructure to come back.
type Blocked struct {
	Since  time.Time // the first failed try
	Waits  int       // tries since
	Reason string    // the last error
}

// blocks are the partitions of a group that wait, for its status.
type blocks struct {
	n  atomic.Int64 // len(by), read without the lock
	mu sync.Mutex
	by map[int]Blocked
}

func newBlocks() *blocks { return &blocks{by: make(map[int]Blocked)} }

// set records a failed try of partition and returns how many there were
// in a row.
func (b *blocks) set(partition int, err error) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	bl, ok := b.by[partition]
	if !ok {
		bl.Since = time.Now()
	}
	bl.Waits++
	bl.Reason = err.Error()
	b.by[partition] = bl
	b.n.Store(int64(len(b.by)))
	return bl.Waits
}

// clear records that partition goes on.
func (b *blocks) clear(partition int) {
	if b.n.Load() == 0 {
		return
	}
	b.mu.Lock()
	delete(b.by, partition)
	b.n.Store(int64(len(b.by)))
	b.mu.Unlock()
}

// list returns the blocked partitions.
func (b *blocks) list() map[int]Blocked {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[int]Blocked, len(b.by))
	for p, bl := range b.by {
		out[p] = bl
	}
	return out
}
