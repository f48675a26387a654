//go:build !unix

package sqlite

import "sync"

var locks sync.Map

// lockFile excludes other holders in this process only: without flock, run
// one relaying process per SQLite file.
func lockFile(path string) (release func(), ok bool, err error) {
	if _, taken := locks.LoadOrStore(path, struct{}{}); taken {
		return nil, false, nil
	}
	return func() { locks.Delete(path) }, true, nil
}
