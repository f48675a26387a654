package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/store"
)

// Program is a Switchyard binary: its name, the application's handler
// groups, which its run subcommand runs, and the application's own
// schema.
type Program struct {
	Name   string            // in usage and messages (default "switchyard")
	Groups []*handlers.Group // the application's handler groups

	// Migrate, when set, brings the application's own tables (read
	// models) up to date in one store's database, idempotently: migrate
	// calls it for every store it migrates, run for every store before
	// it starts.
	Migrate func(ctx context.Context, st store.Store) error
}

// Exit codes of Program.Run.
const (
	ExitOK    = 0 // done
	ExitError = 1 // something failed: a store, NATS, a bad configuration
	ExitUsage = 2 // a bad command line
)

// Main runs the program with the process's arguments and environment,
// until SIGTERM or SIGINT (run drains then; a second one ends the process
// at once), and exits with Run's code.
func (p Program) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the drain: the default action again
	}()
	code := p.Run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run runs the subcommand args name (run when the first argument is a
// flag, or there is none) with its flags and arguments, reading
// configuration from environ, and returns an exit code.
func (p Program) Run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if p.Name == "" {
		p.Name = "switchyard"
	}
	name, rest, defaulted := "run", args, true
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, rest, defaulted = args[0], args[1:], false
	}
	if name == "dlq" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = "dlq "+rest[0], rest[1:]
	}
	if name == "help" {
		p.usage(stdout)
		return ExitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown subcommand %q\n\n", p.Name, name)
		p.usage(stderr)
		return ExitUsage
	}
	c := &call{prog: p, name: name, environ: environ, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet(p.Name+" "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.flags(fs)
	do := cmd.setup(c, fs)
	pos, err := parse(fs, rest)
	if err == nil {
		err = cmd.check(p.Name, pos, defaulted)
	}
	if errors.Is(err, flag.ErrHelp) {
		c.help(fs, cmd, stdout)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n\n", p.Name, name, err)
		c.help(fs, cmd, stderr)
		return ExitUsage
	}
	if err := do(ctx, pos); err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", p.Name, name, err)
		var usage *usageError
		if errors.As(err, &usage) {
			fmt.Fprintf(stderr, "(%s %s -h shows the arguments)\n", p.Name, name)
			return ExitUsage
		}
		return ExitError
	}
	return ExitOK
}

// usageError is an argument the subcommand cannot take (a context that is
// not configured, a sequence that is no number): exit 2, as for a bad
// flag.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usage makes err, when not nil, a usage error.
func usage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// command is a subcommand: setup declares its flags on fs and returns
// what runs it with its positional arguments.
type command struct {
	args     string // the positional arguments, for usage
	min, max int    // how many it takes (max -1: any)
	summary  string
	setup    func(c *call, fs *flag.FlagSet) func(ctx context.Context, args []string) error
}

// commands are the subcommands by name; dlq's actions as "dlq <action>".
var commands = map[string]*command{
	"run":         runCommand,
	"migrate":     migrateCommand,
	"status":      statusCommand,
	"tail":        tailCommand,
	"read":        readCommand,
	"health":      healthCommand,
	"permissions": permissionsCommand,
	"dlq list":    dlqListCommand,
	"dlq show":    dlqShowCommand,
	"dlq replay":  dlqReplayCommand,
	"dlq discard": dlqDiscardCommand,
}

// check checks the positional arguments' count; with run taken by
// default (the first argument a flag), one that names a subcommand is a
// subcommand put after flags.
func (cmd *command) check(prog string, pos []string, defaulted bool) error {
	for _, a := range pos {
		if _, ok := commands[a]; defaulted && (ok || a == "dlq") {
			return fmt.Errorf("%q is a subcommand: it comes first, before any flag (%s %s -config ...)", a, prog, a)
		}
	}
	switch {
	case len(pos) < cmd.min:
		return fmt.Errorf("missing arguments: want %s", cmd.args)
	case cmd.max >= 0 && len(pos) > cmd.max:
		if cmd.max == 0 {
			return fmt.Errorf("takes no arguments, got %q", strings.Join(pos, " "))
		}
		return fmt.Errorf("too many arguments %q: want %s", strings.Join(pos, " "), cmd.args)
	}
	return nil
}

// parse parses fs from args, flags and positional arguments in any
// order ("--" ends the flags), and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// usage prints every subcommand.
func (p Program) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s <subcommand> [flags] [arguments]   (no subcommand: run)\n\nSubcommands:\n", p.Name)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-32s %s\n", strings.TrimSpace(n+" "+commands[n].args), commands[n].summary)
	}
	fmt.Fprintf(w, "\n%s <subcommand> -h lists its flags. Exit codes: 0 done, 1 failed, 2 bad command line.\n", p.Name)
}

// help prints one subcommand's usage and flags.
func (c *call) help(fs *flag.FlagSet, cmd *command, w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s [flags] %s\n  %s\n\nFlags:\n", c.prog.Name, c.name, cmd.args, cmd.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// flagSet reports whether the flag name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// names lists the keys of m, sorted.
func names[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
