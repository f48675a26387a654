package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/consumer"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/correlation"
)

var dlqListCommand = &command{
	args: "[context...]", max: -1,
	summary: "list dead letters (every context's when none is named), each with the messages parked behind it",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		group := fs.String("group", "", "only this group's")
		limit := fs.Int("limit", 100, "at most this many per context")
		return func(ctx context.Context, args []string) error { return c.dlqList(ctx, args, *group, *limit) }
	},
}

var dlqShowCommand = &command{
	args: "<context> <seq>", min: 2, max: 2,
	summary: "show one dead letter: why, how often tried, its event's metadata and data",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		return c.dlqShow
	},
}

var dlqReplayCommand = &command{
	args: "<context> [seq...]", min: 1, max: -1,
	summary: "have dead letters handled again, then what is parked behind them, in order",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		all := fs.Bool("all", false, "every dead letter of the context (of -group)")
		group := fs.String("group", "", "with -all: only this group's")
		return func(ctx context.Context, args []string) error {
			return c.dlqEach(ctx, args, *all, *group, "asked to replay", func(ctx context.Context, q *deadletter.Queue, seq uint64) error {
				return q.Replay(ctx, seq)
			})
		}
	},
}

var dlqDiscardCommand = &command{
	args: "<context> [seq...]", min: 1, max: -1,
	summary: "end dead letters without handling them; what is parked behind them is handled in order (or dropped: -drop-followers)",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		all := fs.Bool("all", false, "every dead letter of the context (of -group)")
		group := fs.String("group", "", "with -all: only this group's")
		drop := fs.Bool("drop-followers", false, "drop the messages parked behind them too")
		followers := deadletter.ReleaseFollowers
		return func(ctx context.Context, args []string) error {
			if *drop {
				followers = deadletter.DropFollowers
			}
			return c.dlqEach(ctx, args, *all, *group, "asked to discard", func(ctx context.Context, q *deadletter.Queue, seq uint64) error {
				return q.Discard(ctx, seq, followers)
			})
		}
	},
}

// letter is a dead letter as the tools print it.
type letter struct {
	Context   string               `json:"context"`
	Seq       uint64               `json:"seq"`
	Group     string               `json:"group"`
	Stream    string               `json:"stream,omitempty"`
	Version   int64                `json:"version,omitempty"`
	Type      string               `json:"type,omitempty"`
	EventID   string               `json:"event_id,omitempty"`
	Shard     string               `json:"shard,omitempty"`
	Attempts  int                  `json:"attempts"`
	At        time.Time            `json:"at"`
	Error     string               `json:"error"`
	Parked    int                  `json:"parked"`
	Subject   string               `json:"subject"`
	Metadata  correlation.Metadata `json:"metadata,omitempty"`
	Data      json.RawMessage      `json:"data,omitempty"`
	DecodeErr string               `json:"decode_error,omitempty"`
}

func newLetter(contextName string, dl deadletter.Letter, full bool) letter {
	l := letter{Context: contextName, Seq: dl.Seq, Group: dl.Group, Attempts: dl.Attempts, At: dl.At,
		Error: dl.Error, Parked: dl.Parked, Subject: dl.Subject}
	if dl.DecodeErr != nil {
		l.DecodeErr = dl.DecodeErr.Error()
	} else {
		l.Stream, l.Version, l.Type, l.EventID = dl.Event.Stream, dl.Event.Version, dl.Event.Type, dl.Event.ID.String()
	}
	if a, err := bus.ParseSubject(dl.Subject); err == nil {
		l.Shard = a.Shard
	}
	if full {
		l.Metadata = dl.Event.Metadata
		if json.Valid(dl.Data) {
			l.Data = dl.Data
		} else {
			l.Data, _ = json.Marshal(string(dl.Data))
		}
	}
	return l
}

// queues connects and opens the named contexts' queues (every configured
// context's when none is named); a context no group ran on has none.
func (c *call) queues(ctx context.Context, contexts []string) (*bus.Conn, map[string]*deadletter.Queue, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, nil, err
	}
	if len(contexts) == 0 {
		contexts = names(cfg.Contexts)
	}
	var errs []error
	for _, name := range contexts {
		errs = append(errs, checkContext(cfg, name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	var need bus.Permissions
	for _, name := range contexts {
		if c.name == "dlq list" || c.name == "dlq show" {
			need = need.Add(deadletter.ReadPermissions(name))
			continue
		}
		// replay and discard; with -all -group, checkGroup asks for the
		// group's consumer.
		need = need.Add(deadletter.WritePermissions(name)).Add(bus.ConsumerInfoPermissions(name))
	}
	conn, err := c.connect(ctx, cfg, 0, c.logger(), need)
	if err != nil {
		return nil, nil, err
	}
	qs := map[string]*deadletter.Queue{}
	for _, name := range contexts {
		q, err := deadletter.Open(ctx, conn, name)
		switch {
		case errors.Is(err, deadletter.ErrNoQueue):
		case err != nil:
			conn.Close()
			return nil, nil, err
		default:
			qs[name] = q
		}
	}
	return conn, qs, nil
}

// queue connects and opens one context's queue; nil when it has none.
func (c *call) queue(ctx context.Context, name string) (*bus.Conn, *deadletter.Queue, error) {
	conn, qs, err := c.queues(ctx, []string{name})
	if err != nil {
		return nil, nil, err
	}
	return conn, qs[name], nil
}

func (c *call) dlqList(ctx context.Context, contexts []string, group string, limit int) error {
	conn, qs, err := c.queues(ctx, contexts)
	if err != nil {
		return err
	}
	defer conn.Close()
	out := []letter{}
	if group != "" && len(contexts) == 1 {
		if err := checkGroup(ctx, conn, contexts[0], group); err != nil {
			return err
		}
	}
	for _, name := range names(qs) {
		dls, err := qs[name].List(ctx, group, 0, limit)
		if err != nil {
			return err
		}
		for _, dl := range dls {
			out = append(out, newLetter(name, dl, false))
		}
	}
	return c.print(out, func(w io.Writer) {
		if len(out) == 0 {
			fmt.Fprintln(w, "no dead letters")
			return
		}
		fmt.Fprintln(w, "CONTEXT\tSEQ\tGROUP\tSHARD\tSTREAM\tVERSION\tTYPE\tATTEMPTS\tPARKED\tAT\tERROR")
		for _, l := range out {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\n", l.Context, l.Seq, l.Group, l.Shard, l.Stream,
				l.Version, l.Type, l.Attempts, l.Parked, l.At.Local().Format(time.DateTime), oneLine(l.Error, 80))
		}
	})
}

func (c *call) dlqShow(ctx context.Context, args []string) error {
	seq, err := parseSeq(args[1])
	if err != nil {
		return err
	}
	conn, q, err := c.queue(ctx, args[0])
	if err != nil {
		return err
	}
	defer conn.Close()
	if q == nil {
		return fmt.Errorf("dead letter %d of %s: %w", seq, args[0], deadletter.ErrNotFound)
	}
	dl, err := q.Get(ctx, seq)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(c.stdout) // a whole letter reads best as JSON, -json or not
	enc.SetIndent("", "  ")
	return enc.Encode(newLetter(args[0], dl, true))
}

// dlqEach does what on the named dead letters of a context, or on every
// one with all, saying how far it got.
func (c *call) dlqEach(ctx context.Context, args []string, all bool, group, did string, what func(context.Context, *deadletter.Queue, uint64) error) error {
	if all == (len(args) > 1) {
		return usage(errors.New("name dead letters by their sequence numbers, or give -all"))
	}
	if group != "" && !all {
		return usage(errors.New("-group goes with -all"))
	}
	var seqs []uint64
	for _, a := range args[1:] {
		seq, err := parseSeq(a)
		if err != nil {
			return err
		}
		seqs = append(seqs, seq)
	}
	conn, q, err := c.queue(ctx, args[0])
	if err != nil {
		return err
	}
	defer conn.Close()
	if all {
		if err := checkGroup(ctx, conn, args[0], group); err != nil {
			return err
		}
	}
	if q == nil {
		if all {
			c.progress("0 dead letters in %s", args[0])
			return nil
		}
		return fmt.Errorf("dead letter %d of %s: %w", seqs[0], args[0], deadletter.ErrNotFound)
	}
	if all {
		if seqs, err = everyLetter(ctx, q, group); err != nil {
			return err
		}
		c.progress("%d dead letters in %s", len(seqs), args[0])
	}
	var errs []error
	for i, seq := range seqs {
		if err := what(ctx, q, seq); err != nil {
			errs = append(errs, fmt.Errorf("%d: %w", seq, err))
			continue
		}
		c.progress("%s %s %d (%d of %d)", did, args[0], seq, i+1, len(seqs))
	}
	if len(seqs) > len(errs) {
		c.progress("the group's replica that owns each partition carries it out, in the partition's order (status shows the dead letters left)")
	}
	return errors.Join(errs...)
}

// everyLetter lists the sequences of every dead letter of group ("" for
// all) in q.
func everyLetter(ctx context.Context, q *deadletter.Queue, group string) ([]uint64, error) {
	var seqs []uint64
	for from := uint64(0); ; {
		dls, err := q.List(ctx, group, from, 1000)
		if err != nil {
			return nil, err
		}
		for _, dl := range dls {
			seqs = append(seqs, dl.Seq)
			from = dl.Seq + 1
		}
		if len(dls) < 1000 {
			return seqs, nil
		}
	}
}

// parseSeq reads a dead letter's sequence number.
func parseSeq(a string) (uint64, error) {
	seq, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return 0, usage(fmt.Errorf("seq %q: not a dead letter's sequence number (dlq list shows them)", a))
	}
	return seq, nil
}

// checkGroup checks that group ("" for all) has consumed contextName's
// stream: a usage error otherwise (a typo would find nothing to do).
func checkGroup(ctx context.Context, conn *bus.Conn, contextName, group string) error {
	if group == "" {
		return nil
	}
	_, err := conn.JetStream().Consumer(ctx, bus.StreamName(contextName), consumer.DurableName(group, 0))
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return usage(fmt.Errorf("no group %q consumes context %s (status lists the groups)", group, contextName))
	}
	if err != nil {
		return &bus.Error{Op: "look up group " + group, URL: conn.Server(), Err: err}
	}
	return nil
}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
