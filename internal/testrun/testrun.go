package testrun

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
)

// Background runs fn with a ctx of its own until stop is called or t ends;
// then it cancels the ctx and waits for fn to return. Any error fn returns
// fails t, named by what: a part that stops because its ctx ended returns
// nil.
func Background(t testing.TB, what string, fn func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", what, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Wait polls cond every 10ms until it holds; after timeout it fails t,
// saying what it waited for.
func Wait(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logger logs at debug level to standard error when the tests run with
// -v, and discards otherwise.
func Logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
