package bus

import (
	"context"
	"sync"

	"github.com/switchyard-go/switchyard/store"
)

// feed reads the log ahead of the relay, batch after batch, and builds
// each batch's messages, until a read comes back short or fails: the relay
// publishes one batch while the next ones are built and read. Each of its
// two goroutines holds at most one batch in hand and one in its channel.
type feed struct {
	out    chan read // in log order; closed after the last
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// read is a batch of the log read after a position.
type read struct {
	after store.Position
	p     *prepared // nil when err is set
	err   error
}

// startFeed starts reading after the position after.
func (r *Relay) startFeed(ctx context.Context, stream *Stream, after store.Position) *feed {
	ctx, cancel := context.WithCancel(ctx)
	fd := &feed{out: make(chan read, 1), cancel: cancel}
	batches := make(chan read, 1) // read, messages not yet built
	fd.wg.Add(2)
	go func() {
		defer fd.wg.Done()
		defer close(batches)
		r.readAhead(ctx, after, batches)
	}()
	go func() {
		defer fd.wg.Done()
		defer close(fd.out)
		for b := range batches {
			if b.err == nil {
				b.p = r.prepare(stream, b.p.batch)
			} else {
				b.p = nil
			}
			select {
			case fd.out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return fd
}

// readAhead reads batch after batch into out until a read comes back
// short or fails, or ctx ends.
func (r *Relay) readAhead(ctx context.Context, after store.Position, out chan<- read) {
	for {
		batch, err := r.st.ReadAll(ctx, after, r.cfg.BatchSize)
		select {
		case out <- read{after: after, p: &prepared{batch: batch}, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil || len(batch) < r.cfg.BatchSize {
			return
		}
		after = batch[len(batch)-1].Position
	}
}

// stop stops fd and waits for its goroutines.
func (fd *feed) stop() {
	fd.cancel()
	fd.wg.Wait()
}
