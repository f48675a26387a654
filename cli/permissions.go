package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/switchyard-go/switchyard/browser"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/status"
)

var permissionsCommand = &command{
	max:     0,
	summary: "print the NATS permissions a role needs, as a block for the user's entry in the server's configuration",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		role := fs.String("role", "run", "run (relays, groups, the browser as SWITCHYARD_BROWSER says), operator (status, dlq list and show: read-only), or admin (operator, tail, dlq replay and discard)")
		o := permissionsOptions{
			noRelays: fs.Bool("no-relays", false, "for run -no-relays"),
			browse:   fs.String("browser", c.env("SWITCHYARD_BROWSER", browseLocal), "for run -browser (env SWITCHYARD_BROWSER)"),
			writes:   fs.Bool("browser-writes", c.env("SWITCHYARD_BROWSER_WRITES", "") == "true", "for run -browser-writes (env SWITCHYARD_BROWSER_WRITES=true)"),
			inbox:    fs.String("inbox-prefix", c.env("SWITCHYARD_NATS_INBOX_PREFIX", ""), "the user's reply subjects (env SWITCHYARD_NATS_INBOX_PREFIX; default _INBOX)"),
		}
		return func(context.Context, []string) error { return c.permissions(*role, o) }
	},
}

type permissionsOptions struct {
	noRelays, writes *bool
	browse, inbox    *string
}

// permissions prints what role needs over the configured contexts. It
// reaches neither NATS nor a store.
func (c *call) permissions(role string, o permissionsOptions) error {
	if err := checkBrowse(*o.browse); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	contexts := names(cfg.Contexts)
	p := bus.ConnPermissions(*o.inbox)
	switch role {
	case "run":
		shards := map[string][]string{}
		for _, name := range contexts {
			shards[name] = cfg.Shards(name)
		}
		for _, n := range handlers.Needs(shards, *o.noRelays, c.prog.Groups) {
			p = p.Add(n.Permissions)
		}
		if *o.browse != browseOff {
			p = p.Add(browser.Permissions(contexts, *o.writes))
		}
	case "operator":
		p = p.Add(status.ReadPermissions(contexts...))
	case "admin":
		p = p.Add(status.ReadPermissions(contexts...))
		for _, name := range contexts {
			p = p.Add(bus.TailPermissions(name)).Add(deadletter.WritePermissions(name))
		}
	default:
		return usage(fmt.Errorf("-role %q: want run, operator or admin", role))
	}
	return c.print(p, func(w io.Writer) {
		fmt.Fprintf(w, "# What %s needs of its NATS user as role %s, over contexts %s: from %q.\n# Put it in the user's entry: { user: ..., password: ..., include \"<this file>\" }\n",
			c.prog.Name, role, strings.Join(contexts, ", "), c.prog.Name+" permissions -role "+role)
		fmt.Fprint(w, p.Config())
	})
}
