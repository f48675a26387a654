package backoff_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchyard-go/switchyard/backoff"
)

// Trying again after each failure, waiting longer each time.
func Example() {
	cfg := backoff.Config{Initial: time.Millisecond, Max: 10 * time.Millisecond}
	work := func(try int) error {
		if try < 3 {
			return errors.New("not yet")
		}
		return nil
	}
	for try, failures := 1, 0; ; try++ {
		if err := work(try); err == nil {
			fmt.Println("try", try, "succeeded")
			return
		}
		failures++
		d := cfg.Delay(failures)
		fmt.Printf("try %d failed; waiting about %v\n", try, d.Round(time.Millisecond))
		time.Sleep(d)
	}
	// Output:
	// try 1 failed; waiting about 1ms
	// try 2 failed; waiting about 2ms
	// try 3 succeeded
}
