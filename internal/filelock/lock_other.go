//go:build !unix

package filelock

import "sync"

var locks sync.Map

// Lock excludes other holders in this process only: without flock, run
// one relaying process per SQLite file.
func Lock(path string) (release func(), ok bool, err error) {
	if _, taken := locks.LoadOrStore(path, struct{}{}); taken {
		return nil, false, nil
	}
	return func() { locks.Delete(path) }, true, nil
}
