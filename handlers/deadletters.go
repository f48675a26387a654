package handlers

import (
	"context"
	"sync"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
)

// DeadLetterQueues gives the dead-letter queue of each source context:
// where a router puts what its groups give up on, and parks the later
// messages of their streams.
type DeadLetterQueues interface {
	Queue(ctx context.Context, source string) (*deadletter.Queue, error)
}

// deadLetters provisions each context's queue on conn once.
type deadLetters struct {
	conn   *bus.Conn
	mu     sync.Mutex
	queues map[string]*deadletter.Queue // by source context
}

// Queue provisions the dead-letter queue of source, or returns the one
// provisioned before. Provisioning is idempotent: two callers that race
// both provision, and neither waits for the other's round trip.
func (d *deadLetters) Queue(ctx context.Context, source string) (*deadletter.Queue, error) {
	d.mu.Lock()
	q, ok := d.queues[source]
	d.mu.Unlock()
	if ok {
		return q, nil
	}
	q, err := deadletter.Provision(ctx, d.conn, source)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queues == nil {
		d.queues = make(map[string]*deadletter.Queue)
	}
	d.queues[source] = q
	return q, nil
}
