package bus

import (
	"context"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/store"
)

// saver saves a leader's checkpoint in the background, at most every
// SaveEvery, the latest position winning; quarantined events go with the
// position that passes them.
type saver struct {
	r       *Relay
	mu      sync.Mutex
	pos     store.Position
	quar    []store.Quarantined
	dirty   bool
	since   time.Time // when the oldest unsaved progress was made
	kick    chan struct{}
	stopped chan struct{}
	done    chan struct{}
}

func newSaver(r *Relay, pos store.Position) *saver {
	s := &saver{r: r, pos: pos, kick: make(chan struct{}, 1), stopped: make(chan struct{}), done: make(chan struct{})}
	r.setSaved(pos)
	go s.loop()
	return s
}

// save asks for pos and q to be saved.
func (s *saver) save(pos store.Position, q []store.Quarantined) {
	s.mu.Lock()
	if !s.dirty {
		s.since = time.Now()
	}
	s.pos, s.dirty = pos, true
	s.quar = append(s.quar, q...)
	s.mu.Unlock()
	signal(s.kick)
}

// unsavedFor is how long the oldest progress not saved has waited.
func (s *saver) unsavedFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return 0
	}
	return time.Since(s.since)
}

func (s *saver) loop() {
	defer close(s.done)
	var failed failures
	for {
		select {
		case <-s.stopped:
			s.flush(context.Background())
			return
		case <-s.kick:
		}
		if err := s.flush(context.Background()); err != nil {
			s.r.fail(context.Background(), "cannot save the checkpoint", err)
			if s.pause(failed.next(s.r.cfg.Backoff)) {
				return
			}
			signal(s.kick)
			continue
		}
		failed.reset()
		if s.pause(s.r.cfg.SaveEvery) {
			return
		}
	}
}

// pause waits d; stopped meanwhile, it saves once more, on the way out,
// and reports true.
func (s *saver) pause(d time.Duration) (stopped bool) {
	select {
	case <-s.stopped:
		s.flush(context.Background())
		return true
	case <-time.After(d):
		return false
	}
}

func (s *saver) flush(ctx context.Context) error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	pos, quar := s.pos, s.quar
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.r.st.SaveCheckpoint(ctx, s.r.cfg.Name, pos, quar...); err != nil {
		return err
	}
	s.mu.Lock()
	s.quar = s.quar[len(quar):]
	if s.pos == pos {
		s.dirty = false
	} else {
		s.since = time.Now()
	}
	s.mu.Unlock()
	s.r.setSaved(pos)
	return nil
}

// close saves what is left and stops the saver.
func (s *saver) close() {
	close(s.stopped)
	<-s.done
}
