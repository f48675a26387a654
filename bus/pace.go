package bus

import (
	"sync"
	"time"
)

// recheckAfter is when a read that a commit woke, and that found nothing,
// is made again (see the package doc on wake-ups).
const recheckAfter = 5 * time.Millisecond

// While the Conn's relays together read at least busyAbove events a
// second, a read that found events lets the next wait: gatherFor after at
// least gatherAbove events, busyGatherFor after fewer (many stores, each
// seeing few commits, would otherwise read once per commit). Below
// busyAbove every commit is read at once: at 1000 events/s a gather after
// a slow ack (NATS syncing every write) was the p99. Measured in cmd/bench,
// the busy rule took 16 shards in one process from 0.75x to 0.86x the
// handled rate of one shard.
const (
	gatherAbove   = 4
	gatherFor     = 2 * time.Millisecond
	busyAbove     = 2000
	busyGatherFor = 5 * time.Millisecond
)

// pace counts the events a Conn's relays read, in 100ms buckets, and
// says how long a relay lets commits gather before its next read.
type pace struct {
	mu      sync.Mutex
	bucket  int64 // the current bucket: UnixNano / 100ms
	n, prev int   // counted in it, and in the one before
}

const bucketLen = int64(100 * time.Millisecond)

func (c *pace) roll(now time.Time) {
	b := now.UnixNano() / bucketLen
	switch {
	case b <= c.bucket: // a relay that read the clock just before another
		return
	case b == c.bucket+1:
		c.prev = c.n
	default:
		c.prev = 0
	}
	c.bucket, c.n = b, 0
}

// add counts n events read at now.
func (c *pace) add(now time.Time, n int) {
	c.mu.Lock()
	c.roll(now)
	c.n += n
	c.mu.Unlock()
}

// perSecond is the count of the last whole bucket, per second.
func (c *pace) perSecond(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.roll(now)
	return c.prev * int(time.Second/time.Duration(bucketLen))
}

// gather is how long a relay whose last read found found events waits
// before reading again: nothing unless the Conn's relays are busy.
func (c *pace) gather(now time.Time, found int) time.Duration {
	switch {
	case found == 0 || c.perSecond(now) < busyAbove:
		return 0
	case found >= gatherAbove:
		return gatherFor
	default:
		return busyGatherFor
	}
}
