package bus

import (
	"testing"
	"time"
)

func TestCounterRate(t *testing.T) {
	var c counter
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
