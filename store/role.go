package store

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Role says which copy of a store's database the code under a ctx uses.
type Role int

const (
	// Writing: the primary, for reads and writes. The default.
	Writing Role = iota
	// Reading: reads of streams and of the catalog go to the store's
	// replica where it has one (the PostgreSQL backend's replica DSN), and
	// to the primary where it has none; every write of the application's
	// (append, link, transaction, inbox record) is refused with a
	// *ReadOnlyError and nothing is written. ReadAll and the relay's own
	// bookkeeping, and everything inside a transaction, use the primary.
	// SQL the application runs itself (a backend's Tx) is its own to
	// guard.
	Reading
)

func (r Role) String() string {
	if r == Reading {
		return "reading"
	}
	return "writing"
}

type roleKey struct{}

// WithRole returns ctx in role r. Package web's ReadingRole middleware
// picks the role of each HTTP request.
func WithRole(ctx context.Context, r Role) context.Context {
	return context.WithValue(ctx, roleKey{}, r)
}

// RoleOf returns ctx's role: Writing unless WithRole said otherwise.
func RoleOf(ctx context.Context) Role {
	r, _ := RoleFrom(ctx)
	return r
}

// RoleFrom returns ctx's role and whether WithRole set one: for code that
// picks a role only where its caller did not (the browser reads in the
// Reading role unless a middleware chose).
func RoleFrom(ctx context.Context) (Role, bool) {
	r, ok := ctx.Value(roleKey{}).(Role)
	return r, ok
}

// More sentinel errors, for errors.Is.
var (
	// ErrReadOnly: a write under a ctx in the Reading role. The error is
	// a *ReadOnlyError.
	ErrReadOnly = errors.New("write in the reading role")
	// ErrIsolated: a write to a store that the ctx's Isolate does not
	// allow. The error is an *IsolationError.
	ErrIsolated = errors.New("write outside the isolated stores")
)

// ReadOnlyError refuses a write (Op) to Store under a ctx in the Reading
// role. Nothing was written.
type ReadOnlyError struct {
	Op    string
	Store string // context/shard
}

func (e *ReadOnlyError) Error() string {
	return fmt.Sprintf("store %s: %s refused: ctx is in the reading role (store.WithRole(ctx, store.Writing) to write)", e.Store, e.Op)
}

// Is makes errors.Is(err, ErrReadOnly) true.
func (e *ReadOnlyError) Is(target error) bool { return target == ErrReadOnly }

// IsolationError refuses a write (Op) to Store, which none of the
// patterns of one of the ctx's Isolate calls allows. Nothing was written.
type IsolationError struct {
	Op      string
	Store   string   // context/shard
	Allowed []string // the patterns of the Isolate that refused it
}

func (e *IsolationError) Error() string {
	return fmt.Sprintf("store %s: %s refused: this code may write only to %s", e.Store, e.Op, strings.Join(e.Allowed, ", "))
}

// Is makes errors.Is(err, ErrIsolated) true.
func (e *IsolationError) Is(target error) bool { return target == ErrIsolated }

type isolationKey struct{}

// Isolate returns ctx with writes (appends, links, transactions, inbox
// records) allowed only to the stores that one of patterns names:
// "context/shard", with path.Match wildcards ("billing/*"), or a bare
// context name for all its shards. Reads stay allowed everywhere. Isolate
// inside Isolate narrows: a write must pass both. A write elsewhere is an
// *IsolationError naming the store, and nothing is written. A pattern
// that is malformed is an *InvalidError.
func Isolate(ctx context.Context, patterns ...string) (context.Context, error) {
	if len(patterns) == 0 {
		return ctx, &InvalidError{Field: "isolation patterns", Value: "", Reason: "none given: name the stores the code may write to"}
	}
	clean := make([]string, len(patterns))
	for i, p := range patterns {
		var err error
		if clean[i], err = storePattern(p); err != nil {
			return ctx, err
		}
	}
	outer, _ := ctx.Value(isolationKey{}).([][]string)
	return context.WithValue(ctx, isolationKey{}, append(outer[:len(outer):len(outer)], clean)), nil
}

// storePattern checks a pattern of store names — context/shard, each
// half a name (CheckName) or a path.Match pattern — and makes a bare
// context name "context/*".
func storePattern(p string) (string, error) {
	if !strings.Contains(p, "/") {
		p += "/*"
	}
	bad := &InvalidError{Field: "store pattern", Value: p, Reason: "want context/shard, each a name or a pattern with * ? [ ], or a context name"}
	halves := strings.Split(p, "/")
	if len(halves) != 2 {
		return "", bad
	}
	for _, h := range halves {
		if _, err := path.Match(h, "x"); err != nil || h == "" {
			return "", bad
		}
		if !strings.ContainsAny(h, "*?[") && CheckName("name", h) != nil {
			return "", bad
		}
	}
	return p, nil
}

// StoreMatches says whether the store named context/shard matches
// pattern, as Isolate reads patterns: "context/shard" with path.Match
// wildcards, or a bare context name for all its shards. A malformed
// pattern is an *InvalidError.
func StoreMatches(pattern, store string) (bool, error) {
	p, err := storePattern(pattern)
	if err != nil {
		return false, err
	}
	ok, _ := path.Match(p, store)
	return ok, nil
}

// CheckIsolation returns the *IsolationError of a write to the store
// named context/shard under ctx (its Op for the caller to fill in), or
// nil when ctx allows it. The backends call it before every write.
func CheckIsolation(ctx context.Context, store string) *IsolationError {
	guards, _ := ctx.Value(isolationKey{}).([][]string)
	for _, g := range guards {
		if !matchAny(g, store) {
			return &IsolationError{Store: store, Allowed: slices.Clone(g)}
		}
	}
	return nil
}

func matchAny(patterns []string, store string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, store); ok {
			return true
		}
	}
	return false
}
