package main

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// tracker is how the harness measures its e2e pipelines: per event, when
// the writer saw its append commit and when the handler started (the first
// delivery), in Unix nanoseconds of the wall clock.
type tracker struct {
	n                  int
	start              time.Time
	drainStart         time.Time      // -backlog: when the handler started
	commit             []atomic.Int64 // when the append tx's commit returned
	recv               []atomic.Int64 // when the handler started (first delivery)
	done               []atomic.Int64 // nil, or (endAtCommit) when the handler's own tx committed
	doneN              atomic.Int64
	appLat             []time.Duration
	handled            atomic.Int64
	handledAtAppendEnd atomic.Int64
	dups               atomic.Int64
	allDone            chan struct{}
	doneOnce           sync.Once
}

func newTracker(n int) *tracker {
	return &tracker{n: n, commit: make([]atomic.Int64, n), recv: make([]atomic.Int64, n), appLat: make([]time.Duration, n), allDone: make(chan struct{})}
}

func (t *tracker) received(seq int) {
	if seq < 0 || seq >= t.n {
		return
	}
	if !t.recv[seq].CompareAndSwap(0, time.Now().UnixNano()) {
		t.dups.Add(1)
		return
	}
	if t.handled.Add(1) == int64(t.n) && t.done == nil {
		t.doneOnce.Do(func() { close(t.allDone) })
	}
}

// endAtCommit makes the handler's commit (committed), not its start, the
// end of an event's trip for handled/s, wall_s and finish's wait; latency
// stays append commit → handler start.
func (t *tracker) endAtCommit() { t.done = make([]atomic.Int64, t.n) }

// committed records that the handler's transaction for seq committed (the
// first time only).
func (t *tracker) committed(seq int) {
	if seq < 0 || seq >= t.n || !t.done[seq].CompareAndSwap(0, time.Now().UnixNano()) {
		return
	}
	if t.doneN.Add(1) == int64(t.n) {
		t.doneOnce.Do(func() { close(t.allDone) })
	}
}

// drainFrom makes handled_per_s and wall_s run from at, when the handler
// started on a stream already holding every event (-backlog).
func (t *tracker) drainFrom(at time.Time) { t.drainStart = at }

// runWriters runs appendFn for seq 0 … n-1 on the writers, at c.rate
// events/s in total when it is set, each writer counting its own versions
// from 1. It returns when the last append committed.
func (t *tracker) runWriters(ctx context.Context, c config, appendFn func(ctx context.Context, w, seq, version int) error) (time.Time, error) {
	var last atomic.Int64
	versions := make([]int, c.writers)
	t.start = time.Now()
	err := spread(c.writers, c.n, func(w, i int) error {
		if c.rate > 0 {
			due := t.start.Add(time.Duration(float64(i) / c.rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		versions[w]++
		t0 := time.Now()
		if err := appendFn(ctx, w, i, versions[w]); err != nil {
			return fmt.Errorf("append seq %d: %w", i, err)
		}
		now := time.Now()
		t.appLat[i] = now.Sub(t0)
		t.commit[i].Store(now.UnixNano())
		for {
			l := last.Load()
			if now.UnixNano() <= l || last.CompareAndSwap(l, now.UnixNano()) {
				return nil
			}
		}
	})
	t.handledAtAppendEnd.Store(t.handled.Load())
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, last.Load()), nil
}

// finish waits until every event was handled (or ctx ends) and fills r:
// per_s over the appends, wall_s and handled_per_s from the first append to
// the last handler start (or commit), latency append commit → handler start.
func (t *tracker) finish(ctx context.Context, r *result, lastCommit time.Time) {
	select {
	case <-t.allDone:
	case <-ctx.Done():
	}
	lat, lastRecv, early := t.latencies()
	r.N = t.n
	r.HandledN = int(t.handled.Load())
	end := lastRecv
	if t.done != nil {
		r.HandledN = int(t.doneN.Load())
		end = 0
		for i := range t.done {
			end = max(end, t.done[i].Load())
		}
	}
	r.PerS = round(float64(t.n)/lastCommit.Sub(t.start).Seconds(), 0)
	if end > 0 {
		hw := time.Unix(0, end).Sub(cmp.Or(t.drainStart, t.start))
		r.WallS = round(hw.Seconds(), 3)
		r.Handled = round(float64(r.HandledN)/hw.Seconds(), 0)
	}
	r.Backlog = t.n - int(t.handledAtAppendEnd.Load())
	r.P50Ms, r.P99Ms, r.MaxMs = percentiles(lat)
	r.AppendP50, r.AppendP99, _ = percentiles(t.appLat)
	if r.HandledN < t.n {
		r.Error = fmt.Sprintf("only %d/%d handled before timeout", r.HandledN, t.n)
	}
	if early > 0 || t.dups.Load() > 0 {
		r.Notes += fmt.Sprintf(" [handler-before-commit-return=%d duplicates=%d]", early, t.dups.Load())
	}
}

// latencies are the handled events' append commit → handler start (0 for a
// handler that started before its writer saw the commit return: early of
// them), and the last handler start.
func (t *tracker) latencies() (lat []time.Duration, lastRecv int64, early int) {
	lat = make([]time.Duration, 0, t.n)
	for i := range t.n {
		rv, cm := t.recv[i].Load(), t.commit[i].Load()
		if rv == 0 || cm == 0 {
			continue
		}
		lastRecv = max(lastRecv, rv)
		d := time.Duration(rv - cm)
		if d < 0 {
			d = 0
			early++
		}
		lat = append(lat, d)
	}
	return lat, lastRecv, early
}
