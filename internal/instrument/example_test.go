package instrument_test

import (
	"fmt"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/instrument"
)

// Event turns an event's metadata into span attributes, those it has:
// first which event it is and its chain, then where it is stored.
func ExampleEvent() {
	md := correlation.Metadata{"event_id": "01a2", "event_type": "VisitBooked", "shard": "tenant-a", "correlation_id": "01a2", "user_id": "u-7"}
	for _, kv := range instrument.Event(md) {
		fmt.Println(kv.Key, kv.Value.AsString())
	}
	// Output:
	// messaging.message.id 01a2
	// switchyard.event_type VisitBooked
	// switchyard.correlation_id 01a2
	// switchyard.shard tenant-a
}
