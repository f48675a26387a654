package bus

import (
	"testing"
	"time"
)

func TestPaceRate(t *testing.T) {
	var c pace
	t0 := time.Unix(1000, 0) // the start of a bucket
	c.add(t0, 150)
	c.add(t0.Add(50*time.Millisecond), 50)
	if got := c.perSecond(t0.Add(90 * time.Millisecond)); got != 0 {
		t.Fatalf("within the first bucket: %d/s, want 0 (no whole bucket yet)", got)
	}
	if got := c.perSecond(t0.Add(150 * time.Millisecond)); got != 2000 {
		t.Fatalf("in the next bucket: %d/s, want 2000", got)
	}
	c.add(t0.Add(160*time.Millisecond), 30)
	// A relay that read the clock before another one rolled the bucket
	// counts in the current bucket and keeps the last one's rate.
	c.add(t0.Add(95*time.Millisecond), 10)
	if got := c.perSecond(t0.Add(170 * time.Millisecond)); got != 2000 {
		t.Fatalf("after a late add: %d/s, want 2000", got)
	}
	if got := c.perSecond(t0.Add(250 * time.Millisecond)); got != 400 {
		t.Fatalf("a bucket later: %d/s, want 400", got)
	}
	if got := c.perSecond(t0.Add(time.Second)); got != 0 {
		t.Fatalf("after quiet buckets: %d/s, want 0", got)
	}
}

// A relay lets commits gather only while the Conn's relays are busy, and
// not after a read that found nothing, nor when it leads alone.
func TestPaceGather(t *testing.T) {
	var c pace
	c.leading.Store(2)
	t0 := time.Unix(2000, 0)
	c.add(t0, busyAbove/10-1) // one bucket: just under the busy rate
	now := t0.Add(150 * time.Millisecond)
	if d := c.gather(now, 100); d != 0 {
		t.Fatalf("below %d/s: gather %v, want none", busyAbove, d)
	}
	c.add(t0.Add(200*time.Millisecond), busyAbove/10)
	now = t0.Add(350 * time.Millisecond)
	for found, want := range map[int]time.Duration{0: 0, 1: busyGatherFor, gatherAbove - 1: busyGatherFor, gatherAbove: gatherFor, 1000: gatherFor} {
		if d := c.gather(now, found); d != want {
			t.Errorf("busy, last read found %d: gather %v, want %v", found, d, want)
		}
	}
	c.leading.Store(1)
	if d := c.gather(now, 1); d != 0 {
		t.Errorf("busy, one relay leading: gather %v, want none", d)
	}
}
