package opentx_test

import (
	"context"
	"testing"

	"github.com/switchyard-go/switchyard/internal/opentx"
)

func TestMark(t *testing.T) {
	ctx := context.Background()
	if _, ok := opentx.Owner(ctx); ok {
		t.Fatal("a bare context carries a transaction")
	}
	a, b := new(int), new(int)
	ctx = opentx.With(ctx, a)
	if o, ok := opentx.Owner(ctx); !ok || o != a {
		t.Fatalf("Owner = %v, %v; want a", o, ok)
	}
	if o, _ := opentx.Owner(opentx.With(ctx, b)); o != b {
		t.Fatal("the innermost transaction is not the owner")
	}
	if _, ok := opentx.Owner(opentx.Without(ctx)); ok {
		t.Fatal("Without left the mark")
	}
}
