package filelock_test

import (
	"path/filepath"
	"testing"

	"github.com/switchyard-go/switchyard/internal/filelock"
)

// A lock held excludes a second taker until it is released.
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	release, ok, err := filelock.Lock(path)
	if err != nil || !ok {
		t.Fatalf("first Lock = %v, %v", ok, err)
	}
	if _, ok, err := filelock.Lock(path); err != nil || ok {
		t.Fatalf("second Lock while held = %v, %v; want not ok", ok, err)
	}
	release()
	again, ok, err := filelock.Lock(path)
	if err != nil || !ok {
		t.Fatalf("Lock after release = %v, %v", ok, err)
	}
	again()
}
