package cli

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/status"
	"github.com/switchyard-go/switchyard/stores"
)

var statusCommand = &command{
	max:     0,
	summary: "what the deployment is doing: every store's relay leader, checkpoint and backlog; every group's replicas, pending messages and dead letters",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		partitions := fs.Bool("partitions", false, "list every group's partitions: owner, pending, blocked")
		return func(ctx context.Context, _ []string) error { return c.status(ctx, *partitions) }
	},
}

// status reads the report (package status) and prints it.
func (c *call) status(ctx context.Context, partitions bool) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	log := c.logger()
	conn, err := c.connect(ctx, cfg, 0, log, status.ReadPermissions(names(cfg.Contexts)...))
	if err != nil {
		return err
	}
	defer conn.Close()
	reg, failed := openEach(ctx, cfg, log)
	defer reg.Close()
	rep, err := status.Read(ctx, conn, reg)
	if err != nil {
		return err
	}
	rep.Stores = append(rep.Stores, failed...)
	slices.SortStableFunc(rep.Stores, func(a, b status.Store) int {
		return cmp.Or(strings.Compare(a.Context, b.Context), slices.Index(cfg.Shards(a.Context), a.Shard)-slices.Index(cfg.Shards(b.Context), b.Shard))
	})
	if err := c.print(rep, func(w io.Writer) {
		printStores(w, rep.Stores)
		fmt.Fprintln(w)
		printGroups(w, rep.Groups, partitions)
		fmt.Fprintln(w)
		printReplicas(w, rep.Replicas)
	}); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d stores could not be read (PROBLEM above)", len(failed), len(rep.Stores))
	}
	return nil
}

// openEach opens every store of cfg on its own, changing none
// (stores.Existing), and returns those that opened and, for each other,
// why it did not: one store down does not hide the others.
func openEach(ctx context.Context, cfg stores.Config, log *slog.Logger) (*sharding.Registry, []status.Store) {
	reg := sharding.NewRegistry()
	var failed []status.Store
	for _, name := range names(cfg.Contexts) {
		for _, sh := range cfg.Shards(name) {
			one, _ := cfg.Only(name, sh) // both are cfg's
			r, err := stores.Open(ctx, one, stores.Existing(), stores.WithLogger(log))
			if err == nil {
				st, _ := r.Store(name, sh)
				err = reg.Add(st)
			}
			if err != nil {
				failed = append(failed, status.Store{Context: name, Shard: sh, Err: err.Error()})
			}
		}
	}
	return reg, failed
}

func printStores(w io.Writer, sts []status.Store) {
	fmt.Fprintln(w, "STORE\tRELAY LEADER\tCHECKPOINT\tUNPUBLISHED\tBEHIND\tQUARANTINED\tREPLICA LAG\tPROBLEM")
	for _, s := range sts {
		problems := []string{cmp.Or(s.Err, s.LastError)}
		if s.HeldBy != "" {
			problems = append(problems, "held back by "+s.HeldBy)
		}
		if s.ReplicaErr != "" {
			problems = append(problems, "replica: "+s.ReplicaErr)
		}
		problem := strings.Trim(strings.Join(problems, "; "), "; ")
		lag := "-"
		if s.ReplicaLag != nil {
			lag = seconds(*s.ReplicaLag)
		}
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", s.Context, s.Shard, orDefault(s.Leader, "none"),
			orDefault(s.Checkpoint, "-"), s.Unpublished, seconds(s.Behind), s.Quarantined, lag, orDefault(problem, "-"))
	}
}

func printGroups(w io.Writer, gs []status.Group, partitions bool) {
	if len(gs) == 0 {
		fmt.Fprintln(w, "GROUPS\tnone has run on these contexts")
		return
	}
	fmt.Fprintln(w, "GROUP\tSOURCE → CONTEXT\tREPLICAS\tOWNED\tPENDING\tUNACKED\tDEAD LETTERS\tPARKED\tBLOCKED")
	for _, g := range gs {
		owned, blocked := 0, 0
		for _, p := range g.Partitions {
			if p.Owner != "" {
				owned++
			}
			if p.Blocked != nil {
				blocked++
			}
		}
		fmt.Fprintf(w, "%s\t%s → %s\t%d\t%d/%d\t%d\t%d\t%d\t%d\t%d\n", g.Name, g.Source, orDefault(g.Context, "?"),
			len(g.Replicas), owned, len(g.Partitions), g.Pending, g.Unacked, g.DeadLetters, g.Parked, blocked)
	}
	if !partitions {
		return
	}
	fmt.Fprintln(w, "\nGROUP\tPARTITION\tOWNER\tPENDING\tUNACKED\tBLOCKED")
	for _, g := range gs {
		for _, p := range g.Partitions {
			why := "-"
			if p.Blocked != nil {
				why = fmt.Sprintf("since %s, %d waits: %s", p.Blocked.Since.Local().Format(time.TimeOnly), p.Blocked.Waits, p.Blocked.Reason)
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%s\n", g.Name, p.Index, orDefault(p.Owner, "none"), p.Pending, p.Unacked, why)
		}
	}
}

func printReplicas(w io.Writer, rs []status.Replica) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "REPLICAS\tnone running")
		return
	}
	fmt.Fprintln(w, "REPLICA\tSTARTED\tLEADS\tGROUPS")
	for _, r := range rs {
		var leads []string
		for k, rl := range r.Relays {
			if rl.Leader {
				leads = append(leads, k)
			}
		}
		slices.Sort(leads)
		fmt.Fprintf(w, "%s\t%s\t%d of %d relays\t%s\n", r.ID, r.Started.Local().Format(time.DateTime),
			len(leads), len(r.Relays), orDefault(strings.Join(names(r.Groups), ", "), "-"))
	}
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}
