package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/stores"
)

var readCommand = &command{
	args: "<context> <shard> <stream>", min: 3, max: 3,
	summary: "print a stream's events from its store",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		from := fs.Int64("from", 0, "first version to read (with -backward: default -1, the last)")
		limit := fs.Int("limit", 100, "at most this many events")
		backward := fs.Bool("backward", false, "newest first")
		return func(ctx context.Context, args []string) error {
			dir := store.Forward
			if *backward {
				dir = store.Backward
				if !flagSet(fs, "from") {
					*from = -1
				}
			}
			return c.read(ctx, args[0], args[1], args[2], dir, *from, *limit)
		}
	},
}

// read opens the one store (creating nothing) and prints the stream:
// a table of versions, types and correlation, or the whole events as
// JSON.
func (c *call) read(ctx context.Context, contextName, shard, stream string, dir store.Direction, from int64, limit int) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	one, err := cfg.Only(contextName, shard)
	if err != nil {
		return usage(err)
	}
	reg, err := stores.Open(ctx, one, stores.Existing(), stores.WithLogger(c.logger()))
	if err != nil {
		return err
	}
	defer reg.Close()
	st, err := reg.Store(contextName, shard)
	if err != nil {
		return err
	}
	evs, err := st.Read(ctx, stream, dir, from, limit)
	if err != nil {
		return err
	}
	out := make([]tailed, 0, len(evs))
	for _, ev := range evs {
		out = append(out, tailed{Context: contextName, Shard: shard, Stream: ev.Stream, Version: ev.Version,
			Type: ev.Type, ID: ev.ID.String(), Data: ev.Data, Metadata: ev.Metadata})
	}
	return c.print(out, func(w io.Writer) {
		if len(evs) == 0 {
			fmt.Fprintf(w, "stream %s of %s/%s: no events from version %d\n", stream, contextName, shard, from)
			return
		}
		fmt.Fprintln(w, "VERSION\tTYPE\tRECORDED\tEVENT ID\tCORRELATION ID\tCAUSATION ID")
		for _, ev := range evs {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", ev.Version, ev.Type, ev.RecordedAt.Local().Format(time.DateTime+".000"),
				ev.ID, ev.Metadata.Get(correlation.CorrelationID), ev.Metadata.Get(correlation.CausationID))
		}
	})
}
