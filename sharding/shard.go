package sharding

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/switchyard-go/switchyard/store"
)

// MaxTenantLen is the longest tenant name, in bytes.
const MaxTenantLen = 255

// Sentinel errors, for errors.Is. Errors returned by this package wrap them
// and name the context, shard or tenant involved.
var (
	// ErrUnknownShard: the context has no store for the shard. The error is
	// an *UnknownShardError, or names the shard when no context has it.
	ErrUnknownShard = errors.New("unknown shard")
	// ErrNoShard: the ctx given to [Registry.For] carries no shard; see
	// [NewContext].
	ErrNoShard = errors.New("ctx carries no shard (see sharding.NewContext)")
	// ErrUnknownContext: the registry has no store for the bounded context.
	ErrUnknownContext = errors.New("unknown context")
	// ErrUnknownTenant: no shard is assigned to the tenant.
	ErrUnknownTenant = errors.New("unknown tenant")
)

// UnknownShardError reports a shard the bounded context has no store for.
type UnknownShardError struct {
	Context string
	Shard   string
}

func (e *UnknownShardError) Error() string {
	return fmt.Sprintf("sharding: unknown shard %q in context %q", e.Shard, e.Context)
}

// Is makes errors.Is(err, ErrUnknownShard) true.
func (e *UnknownShardError) Is(target error) bool { return target == ErrUnknownShard }

// CheckName checks a shard name with [store.CheckName]: 1 to 63 bytes of
// lowercase ASCII letters, digits, '_' and '-', starting with a letter or a
// digit. A bad name is a *store.InvalidError.
func CheckName(shard string) error {
	return store.CheckName("shard", shard)
}

// CheckTenant checks a tenant name: 1 to [MaxTenantLen] bytes of UTF-8
// without control characters. A bad name is a *store.InvalidError whose
// Field is "tenant".
func CheckTenant(tenant string) error {
	if tenant == "" {
		return &store.InvalidError{Field: "tenant", Value: tenant, Reason: "empty"}
	}
	if len(tenant) > MaxTenantLen {
		return &store.InvalidError{Field: "tenant", Value: tenant, Reason: "longer than " + strconv.Itoa(MaxTenantLen) + " bytes"}
	}
	if !utf8.ValidString(tenant) {
		return &store.InvalidError{Field: "tenant", Value: tenant, Reason: "not valid UTF-8"}
	}
	for i, r := range tenant {
		if unicode.IsControl(r) {
			return &store.InvalidError{Field: "tenant", Value: tenant, Reason: "control character at byte " + strconv.Itoa(i)}
		}
	}
	return nil
}

// shardKey is the context key of the shard.
type shardKey struct{}

// NewContext returns a context carrying shard: [Registry.For] picks that
// shard's store. The name is checked when it is used, not here. An empty
// shard hides any shard ctx already carries.
func NewContext(ctx context.Context, shard string) context.Context {
	return context.WithValue(ctx, shardKey{}, shard)
}

// FromContext returns the shard ctx carries. Without one it returns ("",
// false): there is no default shard.
func FromContext(ctx context.Context) (string, bool) {
	shard, _ := ctx.Value(shardKey{}).(string)
	return shard, shard != ""
}
