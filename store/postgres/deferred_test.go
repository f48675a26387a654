package postgres_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
)

// inserts counts the statements that insert into the event log, sent
// alone or in a batch.
type inserts struct{ n atomic.Int64 }

func (c *inserts) note(sql string) {
	if strings.Contains(sql, "INSERT INTO") && strings.Contains(sql, "sw_events") {
		c.n.Add(1)
	}
}

func (c *inserts) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.note(d.SQL)
	return ctx
}
func (c *inserts) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *inserts) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (c *inserts) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.note(d.SQL)
}
func (c *inserts) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// The appends a transaction holds are written in one statement, however
// many there are and whatever streams they go to; where that statement
// cannot write them all, one at a time.
func TestHeldAppendsShareOneStatement(t *testing.T) {
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(database(t))
	if err != nil {
		t.Fatal(err)
	}
	counter := &inserts{}
	pcfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := postgres.New(ctx, pool, postgres.Config{Context: "visits", Shard: "default", Schema: pgtest.RandomName("s_")})
	if err != nil {
		t.Fatal(err)
	}
	hold := func(streams ...string) int64 {
		t.Helper()
		before := counter.n.Load()
		err := s.Transact(ctx, func(ctx context.Context) error {
			for _, stream := range streams {
				if err := store.AppendDeferred(ctx, s, stream, store.Any, event(t, "Held"), event(t, "Held")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("transaction: %v", err)
		}
		return counter.n.Load() - before
	}
	if n := hold("a", "b", "a", "c", "b", "a"); n != 1 {
		t.Errorf("six held appends took %d insert statements, want 1", n)
	}
	if n := hold("a"); n != 1 {
		t.Errorf("one held append took %d insert statements, want 1", n)
	}
	got, err := s.Read(ctx, "a", store.Forward, 0, 100)
	if err != nil || len(got) != 8 {
		t.Fatalf("stream a: %d events, %v; want 8", len(got), err)
	}
	// A conflict in the shared statement: each append again on its own,
	// the replay recognised as one.
	stored := got[0]
	before := counter.n.Load()
	err = s.Transact(ctx, func(ctx context.Context) error {
		if err := store.AppendDeferred(ctx, s, "d", store.NoStream, event(t, "Held")); err != nil {
			return err
		}
		return store.AppendDeferred(ctx, s, "a", store.NoStream, stored)
	})
	if n := counter.n.Load() - before; err != nil || n != 3 {
		t.Errorf("held appends with a replay: %v, %d insert statements; want no error, 3 (shared, then each)", err, n)
	}
}

// BenchmarkHandlerBatch is a batch of 32 handled messages sharing one
// transaction, each appending one derived event to a stream of its own:
// "append" appends at once, "deferred" holds them for one statement.
func BenchmarkHandlerBatch(b *testing.B) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, database(b), postgres.Config{Context: "visits", Shard: "default", Schema: pgtest.RandomName("s_")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	derived, _ := store.NewEvent("Derived", map[string]bool{"ok": true})
	for _, how := range []string{"append", "deferred"} {
		b.Run(how, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				err := s.Transact(ctx, func(ctx context.Context) error {
					for k := range 32 {
						stream := "derived-" + strconv.Itoa(k)
						if how == "append" {
							if _, err := s.Append(ctx, stream, store.Any, derived); err != nil {
								return err
							}
						} else if err := store.AppendDeferred(ctx, s, stream, store.Any, derived); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/32, "µs/message")
		})
	}
}

// In a savepoint the application began itself (WithTx), nothing is held:
// AppendDeferred appends at once, in it, and what Transact's transaction
// holds is not written into it, so rolling it back loses neither.
func TestHeldAppendsAndTheApplicationsSavepoint(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 0)
	err := s.Transact(ctx, func(ctx context.Context) error {
		if err := store.AppendDeferred(ctx, s, "own-held", store.NoStream, event(t, "Held")); err != nil {
			return err
		}
		tx, _ := s.Tx(ctx)
		sub, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		sctx := s.WithTx(ctx, sub)
		if err := store.AppendDeferred(sctx, s, "own-savepoint", store.NoStream, event(t, "Undone")); err != nil {
			return err
		}
		if got, err := s.Read(sctx, "own-savepoint", store.Forward, 0, 10); err != nil || len(got) != 1 {
			return fmt.Errorf("read in the application's savepoint: %d events, %v; want 1, appended at once", len(got), err)
		}
		if _, err := s.Read(sctx, "own-held", store.Forward, 0, 10); err != nil {
			return err
		}
		return sub.Rollback(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	held, _ := s.Read(ctx, "own-held", store.Forward, 0, 10)
	undone, _ := s.Read(ctx, "own-savepoint", store.Forward, 0, 10)
	if len(held) != 1 || len(undone) != 0 {
		t.Errorf("after the application's savepoint rolled back: %d held events written (want 1), %d of the savepoint's (want 0)", len(held), len(undone))
	}
}
