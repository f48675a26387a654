package correlation_test

import (
	"context"
	"fmt"

	"github.com/switchyard-go/switchyard/correlation"
)

// A handler appends while handling message M: the new event joins M's chain.
func ExampleStamp() {
	m := correlation.Metadata{"event_id": "0192-a", "correlation_id": "0192-root", "user_id": "u-7"}
	ctx := correlation.NewContext(context.Background(), m)

	derived := correlation.Metadata{}
	correlation.Stamp(ctx, derived, "0192-b")
	fmt.Println(derived.Get(correlation.CorrelationID), derived.Get(correlation.CausationID), derived["user_id"])

	root := correlation.Metadata{}
	correlation.Stamp(context.Background(), root, "0192-c")
	fmt.Println(root.Get(correlation.CorrelationID), root.Get(correlation.CausationID) == "")
	// Output:
	// 0192-root 0192-a u-7
	// 0192-c true
}
