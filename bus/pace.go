package bus

import (
	"sync"
	"sync/atomic"
	"time"
)

// recheckAfter is when a read that a commit woke, and that found nothing,
// is made again (see the package doc on wake-ups).
const recheckAfter = 5 * time.Millisecond

// While several relays of a Conn lead and together read at least
// busyAbove events a second, a read that found events lets the next wait:
// gatherFor after at least gatherAbove events, busyGatherFor after fewer
// (many stores, each seeing few commits, would otherwise read once per
// commit). Below busyAbove every commit is read at once: at 1000 events/s
// a gather after a slow ack (NATS syncing every write) was the p99. A lone
// relay never waits: its reads already take together the commits that
// land while one is under way, and a store whose handlers append an event
// per event they handle reads 2000 events a second at 1000 appended, where
// the waits were a third of commit → handler commit at the median.
// Measured in cmd/bench, the busy rule took 16 shards in one process from
// 0.75x to 0.86x the handled rate of one shard.
const (
	gatherAbove   = 4
	gatherFor     = 2 * time.Millisecond
	busyAbove     = 2000
	busyGatherFor = 5 * time.Millisecond
)

// pace counts the events a Conn's relays read, in 100ms buckets, and
// says how long a relay lets commits gather before its next read.
type pace struct {
	leading atomic.Int32 // relays of the Conn leading now
	mu      sync.Mutex
	bucket  int64 // the current bucket: UnixNano / 100ms
	n, prev int   // counted in it, and in the one before
}

const bucketLen = int64(100 * time.Millisecond)

func (p *pace) roll(now time.Time) {
	b := now.UnixNano() / bucketLen
	switch {
	case b <= p.bucket: // a relay that read the clock just before another
		return
	case b == p.bucket+1:
		p.prev = p.n
	default:
		p.prev = 0
	}
	p.bucket, p.n = b, 0
}

// add counts n events read at now.
func (p *pace) add(now time.Time, n int) {
	p.mu.Lock()
	p.roll(now)
	p.n += n
	p.mu.Unlock()
}

// perSecond is the count of the last whole bucket, per second.
func (p *pace) perSecond(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roll(now)
	return p.prev * int(time.Second/time.Duration(bucketLen))
}

// gather is how long a relay whose last read found found events waits
// before reading again: nothing unless the Conn's relays are busy.
func (p *pace) gather(now time.Time, found int) time.Duration {
	switch {
	case found == 0 || p.leading.Load() < 2 || p.perSecond(now) < busyAbove:
		return 0
	case found >= gatherAbove:
		return gatherFor
	default:
		return busyGatherFor
	}
}
