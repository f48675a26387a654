package sharding_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
)

// injections are names that must never reach a subject, an SQL identifier or
// a file name.
var injections = []string{"a.b", "*", ">", "x y", "\x00", "a'b", strings.Repeat("a", 64), "", "A", "-a", "a/b", "a;drop", "é"}

func TestCheckName(t *testing.T) {
	for _, name := range []string{"default", "tenant-a", "tenant_b", "0", "a1-b2_c3", strings.Repeat("a", 63)} {
		if err := sharding.CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range injections {
		err := sharding.CheckName(name)
		var inv *store.InvalidError
		if !errors.As(err, &inv) || inv.Field != "shard" {
			t.Errorf("CheckName(%q) = %v, want a *store.InvalidError for field shard", name, err)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Quote(name)) {
			t.Errorf("CheckName(%q) = %q, want the name in the message", name, err)
		}
	}
}

func TestCheckTenant(t *testing.T) {
	tests := []struct {
		tenant string
		ok     bool
	}{
		{"acme", true},
		{"Acme Corp. (EU)", true},
		{"Zürich AG", true},
		{"a.b*>", true},
		{strings.Repeat("t", sharding.MaxTenantLen), true},
		{"", false},
		{strings.Repeat("t", sharding.MaxTenantLen+1), false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\x7fb", false},
		{"a\u0085b", false}, // C1 control
		{"\xff", false},
	}
	for _, tt := range tests {
		err := sharding.CheckTenant(tt.tenant)
		if tt.ok {
			if err != nil {
				t.Errorf("CheckTenant(%q) = %v, want nil", tt.tenant, err)
			}
			continue
		}
		var inv *store.InvalidError
		if !errors.As(err, &inv) || inv.Field != "tenant" {
			t.Errorf("CheckTenant(%q) = %v, want a *store.InvalidError for field tenant", tt.tenant, err)
		}
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if shard, ok := sharding.FromContext(ctx); ok || shard != "" {
		t.Errorf("FromContext(empty) = %q, %v; want \"\", false", shard, ok)
	}
	a := sharding.NewContext(ctx, "tenant-a")
	if shard, ok := sharding.FromContext(a); !ok || shard != "tenant-a" {
		t.Errorf("FromContext = %q, %v; want tenant-a, true", shard, ok)
	}
	b := sharding.NewContext(a, "tenant-b")
	if shard, _ := sharding.FromContext(b); shard != "tenant-b" {
		t.Errorf("inner NewContext: FromContext = %q, want tenant-b", shard)
	}
	if shard, _ := sharding.FromContext(a); shard != "tenant-a" {
		t.Errorf("outer ctx changed: FromContext = %q, want tenant-a", shard)
	}
	if shard, ok := sharding.FromContext(sharding.NewContext(a, "")); ok || shard != "" {
		t.Errorf("NewContext(ctx, \"\"): FromContext = %q, %v; want \"\", false", shard, ok)
	}
}

func TestUnknownShardError(t *testing.T) {
	var err error = &sharding.UnknownShardError{Context: "visits", Shard: "acme"}
	if got, want := err.Error(), `sharding: unknown shard "acme" in context "visits"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, sharding.ErrUnknownShard) {
		t.Error("errors.Is(err, ErrUnknownShard) = false")
	}
	if errors.Is(err, sharding.ErrUnknownContext) {
		t.Error("errors.Is(err, ErrUnknownContext) = true")
	}
}

// TestRoutingOnly checks that a program that only routes pulls in no
// database driver and no YAML: configuration and opening stores are package
// stores'.
func TestRoutingOnly(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no go command to list the dependencies with:", err)
		}
		t.Skip("no go command to list the dependencies with:", err)
	}
	out, err := exec.CommandContext(t.Context(), gobin, "list", "-deps", ".").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list -deps: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		for _, banned := range []string{"github.com/jackc/pgx", "modernc.org/sqlite", "gopkg.in/yaml", "github.com/switchyard-go/switchyard/store/", "github.com/switchyard-go/switchyard/stores"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("sharding depends on %s", dep)
			}
		}
	}
}
