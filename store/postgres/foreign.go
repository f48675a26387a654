package postgres

import (
	"context"
	"sync"
	"time"
)

// foreignEvery is how often ReadAll looks up again which running
// transactions are another database's (see logReads).
const foreignEvery = 100 * time.Millisecond

// foreign holds the running transactions of other databases as last
// looked up: readAll's $4. Concurrent reads use the last list while one
// of them looks.
type foreign struct {
	mu   sync.Mutex
	at   time.Time // last looked up, or being looked up
	xids []string  // xid8 text
}

// current returns the list, looked up first when it is foreignEvery old.
// Until a first look-up has ended, every caller looks them up itself: a
// nil list would be NULL, and no transaction would hold the read back.
func (f *foreign) current(ctx context.Context, q querier) ([]string, error) {
	f.mu.Lock()
	xids, stale := f.xids, f.xids == nil || time.Since(f.at) >= foreignEvery
	if stale {
		f.at = time.Now()
	}
	f.mu.Unlock()
	if !stale {
		return xids, nil
	}
	fresh := []string{}
	if err := q.QueryRow(ctx, foreignXids).Scan(&fresh); err != nil {
		f.mu.Lock()
		f.at = time.Time{} // the next read looks again
		f.mu.Unlock()
		return nil, err
	}
	if fresh == nil {
		fresh = []string{}
	}
	f.mu.Lock()
	f.xids = fresh
	f.mu.Unlock()
	return fresh, nil
}
