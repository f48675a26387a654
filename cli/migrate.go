package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/stores"
)

var migrateCommand = &command{
	args: "[context[/shard]...]", max: -1,
	summary: "create (create_databases) and migrate the stores, one at a time: all of them, a context's or one shard's",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		return c.migrate
	},
}

// migrated is one store's outcome.
type migrated struct {
	Context string  `json:"context"`
	Shard   string  `json:"shard"`
	Took    float64 `json:"took_s"`
	Error   string  `json:"error,omitempty"`
}

// migrate opens every store the targets name, one at a time (opening
// creates and migrates), and reports each; a store that fails does not
// stop the others.
func (c *call) migrate(ctx context.Context, targets []string) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	todo, err := selectStores(cfg, targets)
	if err != nil {
		return err
	}
	log := c.logger()
	var out []migrated
	var errs []error
	for i, t := range todo {
		c.progress("migrating %s/%s (%d of %d)", t.Context, t.Shard, i+1, len(todo))
		one, _ := cfg.Only(t.Context, t.Shard) // selectStores checked it
		began := time.Now()
		reg, err := stores.Open(ctx, one, stores.WithLogger(log))
		if err == nil {
			err = errors.Join(c.migrateApp(ctx, reg), reg.Close())
		}
		t.Took = time.Since(began).Seconds()
		if err != nil {
			t.Error = err.Error()
			errs = append(errs, err)
		}
		out = append(out, t)
		if ctx.Err() != nil {
			break
		}
	}
	if err := c.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "CONTEXT\tSHARD\tRESULT\tTOOK")
		for _, m := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%.2fs\n", m.Context, m.Shard, orDefault(m.Error, "up to date"), m.Took)
		}
	}); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d stores failed", len(errs), len(todo))
	}
	return ctx.Err()
}

// migrateApp runs the program's Migrate on every store of reg.
func (c *call) migrateApp(ctx context.Context, reg *sharding.Registry) error {
	if c.prog.Migrate == nil {
		return nil
	}
	for _, name := range reg.Contexts() {
		for _, sh := range reg.Shards(name) {
			st, err := reg.Store(name, sh)
			if err == nil {
				err = c.prog.Migrate(ctx, st)
			}
			if err != nil {
				return fmt.Errorf("the application's migration of %s/%s: %w", name, sh, err)
			}
		}
	}
	return nil
}

// selectStores lists the stores targets name (context or context/shard),
// every store when there are none. An unknown context or shard is an
// error naming it, before anything is opened.
func selectStores(cfg stores.Config, targets []string) ([]migrated, error) {
	if len(targets) == 0 {
		targets = names(cfg.Contexts)
	}
	var out []migrated
	var errs []error
	for _, t := range targets {
		name, shard, _ := strings.Cut(t, "/")
		one, err := cfg.Only(name, shard)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, sh := range one.Shards(name) {
			out = append(out, migrated{Context: name, Shard: sh})
		}
	}
	return out, usage(errors.Join(errs...))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
