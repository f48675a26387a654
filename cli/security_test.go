package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/switchyard-go/switchyard/bus"
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

// A tool run as a NATS user allowed its role's permissions (as the
// permissions subcommand prints them) works; one its role does not cover
// is refused at start, naming the subject; a wrong inbox prefix too.
func TestNATSPermissions(t *testing.T) {
	env := []string{"SWITCHYARD_DATA_DIR=" + t.TempDir(), "SWITCHYARD_CONTEXT_VISITS_SHARDS=default"}
	code, out, errOut := runCLI(context.Background(), env, "permissions", "-role", "operator", "-inbox-prefix", "_INBOX_op", "-json")
	var p bus.Permissions
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
		t.Fatalf("permissions: exit %d\n%s%s", code, out, errOut)
	}
	srv := natstest.StartWith(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "op", Password: "op", Permissions: natstest.Allow(p)}}
	})
	if code, out, errOut := runCLI(context.Background(), env, "migrate"); code != 0 { // status reads the store too
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	env = append(env, "SWITCHYARD_NATS_URL="+srv.URL, "SWITCHYARD_NATS_USER=op", "SWITCHYARD_NATS_PASSWORD=op")
	for name, tc := range map[string]struct {
		env  []string
		args []string
		code int
		want string
	}{
		"dlq list":        {[]string{"SWITCHYARD_NATS_INBOX_PREFIX=_INBOX_op"}, []string{"dlq", "list"}, 0, ""},
		"status":          {[]string{"SWITCHYARD_NATS_INBOX_PREFIX=_INBOX_op"}, []string{"status"}, 0, ""},
		"tail":            {[]string{"SWITCHYARD_NATS_INBOX_PREFIX=_INBOX_op"}, []string{"tail", "visits"}, 1, `NATS user "op" may not publish to $JS.API.CONSUMER.CREATE.SW_VISITS.>, which the sw tail needs`},
		"the wrong inbox": {nil, []string{"dlq", "list"}, 1, "may not subscribe to _INBOX."},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(context.Background(), append(env, tc.env...), tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d saying %q\n%s%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}
