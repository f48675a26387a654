package bus_test

import (
	"context"
	"errors"
	"testing"

	"github.com/switchyard-go/switchyard/bus"
)

// A second embedded server on a directory in use is refused with an error
// naming it (two servers writing one directory corrupt it); once the first
// is closed, the directory is free.
func TestEmbeddedDirInUse(t *testing.T) {
	cfg := bus.Config{Embedded: bus.Embedded{Dir: t.TempDir(), SyncInterval: "2m"}}
	first, err := bus.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bus.Connect(context.Background(), cfg)
	var inUse *bus.DirInUseError
	if !errors.As(err, &inUse) || inUse.Dir != cfg.Embedded.Dir {
		t.Fatalf("second Connect on %s = %v, want a *bus.DirInUseError naming it", cfg.Embedded.Dir, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := bus.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Connect after Close: %v", err)
	}
	again.Close()
}
