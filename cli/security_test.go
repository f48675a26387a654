package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/switchyard-go/switchyard/internal/natstest"
)

// The tools take NATS credentials from the environment or from a file a
// variable names, and never print them.
func TestNATSCredentialsFromTheEnvironment(t *testing.T) {
	srv := natstest.StartWith(t, func(o *server.Options) { o.Authorization = "s3cret-token" })
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SWITCHYARD_DATA_DIR=" + t.TempDir(), "SWITCHYARD_CONTEXT_VISITS_SHARDS=default", "SWITCHYARD_NATS_URL=" + srv.URL}
	for name, tc := range map[string]struct {
		env    []string
		code   int
		want   string
		secret string
	}{
		"the token":            {[]string{"SWITCHYARD_NATS_TOKEN=s3cret-token"}, 0, "", ""},
		"the token from file":  {[]string{"SWITCHYARD_NATS_TOKEN_FILE=" + tokenFile}, 0, "", ""},
		"a wrong token":        {[]string{"SWITCHYARD_NATS_TOKEN=wr0ng"}, 1, "Authorization Violation", "wr0ng"},
		"no token":             {nil, 1, "Authorization Violation", ""},
		"both":                 {[]string{"SWITCHYARD_NATS_TOKEN=x", "SWITCHYARD_NATS_TOKEN_FILE=" + tokenFile}, 1, "give one", ""},
		"a missing token file": {[]string{"SWITCHYARD_NATS_TOKEN_FILE=/nowhere/token"}, 1, "SWITCHYARD_NATS_TOKEN_FILE", ""},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(context.Background(), append(env, tc.env...), "dlq", "list", "visits")
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d saying %q\n%s%s", code, tc.code, tc.want, out, errOut)
			}
			if tc.secret != "" && strings.Contains(out+errOut, tc.secret) {
				t.Errorf("the output shows the secret:\n%s%s", out, errOut)
			}
		})
	}
}
