package handlers

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-go/switchyard/bus"
)

// parking knows which streams of a group have a dead letter that their
// later messages are parked behind, and its park key. Only the replica
// that owns a stream's partition changes its entry (it dead-letters,
// parks, replays); a replica that takes a partition over reloads the
// partition's entries from the dead-letter queue first.
type parking struct {
	partitions int
	mu         sync.RWMutex
	keys       map[string]uint64 // stream → park key
}

func newParking(partitions int) *parking {
	return &parking{partitions: partitions, keys: make(map[string]uint64)}
}

// behind returns the park key of stream's dead letter, if it has one.
func (p *parking) behind(stream string) (uint64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	key, ok := p.keys[stream]
	return key, ok
}

// block parks stream's later messages behind the dead letter with key.
func (p *parking) block(stream string, key uint64) {
	p.mu.Lock()
	p.keys[stream] = key
	p.mu.Unlock()
}

// unblock lets stream's messages through again.
func (p *parking) unblock(stream string) {
	p.mu.Lock()
	delete(p.keys, stream)
	p.mu.Unlock()
}

// reload replaces the entries of partition's streams with those of
// blocking (stream → park key, for every partition).
func (p *parking) reload(partition int, blocking map[string]uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for stream := range p.keys {
		if bus.Partition(stream, p.partitions) == partition {
			delete(p.keys, stream)
		}
	}
	for stream, key := range blocking {
		if bus.Partition(stream, p.partitions) == partition {
			p.keys[stream] = key
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
