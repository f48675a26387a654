package handlers

import "context"

// afterCommit holds what runs once a handler's transaction commits.
type afterCommit struct{ fns []func() }

type afterCommitKey struct{}

// withAfterCommit returns ctx for one attempt's transaction, and what to
// call once it committed.
func withAfterCommit(ctx context.Context) (context.Context, *afterCommit) {
	a := &afterCommit{}
	return context.WithValue(ctx, afterCommitKey{}, a), a
}

// run runs what was registered, in order.
func (a *afterCommit) run() {
	for _, fn := range a.fns {
		fn()
	}
}

// AfterCommit runs fn once the transaction of the attempt that ctx belongs
// to has committed (Shard's, or its batch's: see the package doc's
// "Batches"), after the message's effects are durable and before it is
// acknowledged; an attempt rolled back drops it, and the next attempt
// registers again. It is where a handler starts what must not happen
// unless its writes did: an e-mail, a call to another service, a cache
// update (Rails' after_commit). Outside a handler's transaction fn runs at
// once. fn must not block for long: the partition's next messages wait.
func AfterCommit(ctx context.Context, fn func()) {
	if a, ok := ctx.Value(afterCommitKey{}).(*afterCommit); ok {
		a.fns = append(a.fns, fn)
		return
	}
	fn()
}
