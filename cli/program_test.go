package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/switchyard-go/switchyard/cli"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
)

// TestMain runs the test binary as the program below when a test starts
// it so (testrun.IsProgram): a binary built on cli with a handler group,
// as an application builds its own.
func TestMain(m *testing.M) {
	if testrun.IsProgram() {
		program().Main()
	}
	os.Exit(m.Run())
}

// program is an application: group "effects" records each Booked event's
// effect, once, in its shard's database; a Booked event whose data says
// poison fails for good until the shard's cured table has a row.
func program() cli.Program {
	g := &handlers.Group{Name: "effects", Context: "visits"}
	handlers.Handle(g, "record", "Booked", func(ctx context.Context, b booked, m handlers.Message) error {
		st, _ := handlers.Store(ctx)
		tx, _ := st.(*postgres.Store).Tx(ctx)
		schema := st.(*postgres.Store).Schema()
		if b.Poison {
			var cured bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+schema+`.cured)`).Scan(&cured); err != nil {
				return err
			}
			if !cured {
				return handlers.Permanent(errors.New("poisoned"))
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+schema+`.effects (event_id, stream, version) VALUES ($1, $2, $3)`,
			m.Event.ID, m.Event.Stream, m.Event.Version)
		return err
	})
	return cli.Program{Name: "app", Groups: []*handlers.Group{g}, Migrate: migrate}
}

type booked struct {
	N      int  `json:"n"`
	Poison bool `json:"poison,omitempty"`
}

// migrate creates the application's tables in a store's schema.
func migrate(ctx context.Context, st store.Store) error {
	pg, ok := st.(*postgres.Store)
	if !ok {
		return fmt.Errorf("store %s/%s: want postgres", st.Context(), st.Shard())
	}
	_, err := pg.Pool().Exec(ctx, `
		CREATE TABLE IF NOT EXISTS `+pg.Schema()+`.effects (n bigserial, event_id uuid NOT NULL, stream text NOT NULL, version bigint NOT NULL);
		CREATE TABLE IF NOT EXISTS `+pg.Schema()+`.cured (ok boolean)`)
	return err
}

// app runs the program as a process of its own with args, the test's
// environment and env, and returns it started.
func app(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), testrun.ProgramEnv+"=1"), env...)
	return cmd
}

// tool runs the program's subcommand args to the end and returns its
// stdout, its stderr and its exit code.
func tool(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := app(t, env, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// toolJSON runs a subcommand with -json that must succeed and decodes
// what it printed into v.
func toolJSON(t *testing.T, env []string, v any, args ...string) {
	t.Helper()
	out, errOut, code := tool(t, env, append(args, "-json")...)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
