package postgres_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/store/storetest"
)

// testURL is one database for the test run; each store gets a schema in it.
var testURL string

func TestMain(m *testing.M) { os.Exit(pgtest.MainWithExamples(m, &testURL)) }

func database(t testing.TB) string {
	t.Helper()
	if testURL == "" {
		pgtest.URL(t) // skips, or fails under CI=true
		t.Fatal("test database was not created")
	}
	return testURL
}

func newStore(t *testing.T, maxEventBytes int) *postgres.Store {
	t.Helper()
	return newStoreIn(t, database(t), maxEventBytes)
}

func newStoreIn(t *testing.T, url string, maxEventBytes int) *postgres.Store {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := postgres.New(context.Background(), pool, postgres.Config{
		Context: "visits", Shard: "default", Schema: pgtest.RandomName("s_"), MaxEventBytes: maxEventBytes,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Name: "postgres",
		New:  func(t *testing.T, max int) store.Store { return newStore(t, max) },
		App:  app{},
	})
}

// The suite in a database whose collation sorts as people read (ICU,
// punctuation ignored), not byte by byte as the test server's does.
func TestConformanceICU(t *testing.T) {
	base := database(t)
	name := pgtest.RandomName("sw_icu_")
	admin := func(sql string) error {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), sql)
		return err
	}
	if err := admin(`CREATE DATABASE ` + name + ` LOCALE_PROVIDER icu ICU_LOCALE 'en-US-u-ka-shifted' LOCALE 'C.UTF-8' TEMPLATE template0`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin(`DROP DATABASE ` + name + ` WITH (FORCE)`) }) //nolint:errcheck // best effort
	url := pgtest.WithDatabase(t, base, name)
	storetest.Run(t, storetest.Backend{
		Name: "postgres-icu",
		New:  func(t *testing.T, max int) store.Store { return newStoreIn(t, url, max) },
		App:  app{},
	})
}

// app is the application's own table, in the store's schema.
type app struct{}

func (app) table(ctx context.Context, s *postgres.Store) (string, error) {
	tbl := pgx.Identifier{s.Schema(), "app_rows"}.Sanitize()
	_, err := s.Pool().Exec(ctx, `CREATE TABLE IF NOT EXISTS `+tbl+` (key text NOT NULL)`)
	return tbl, err
}

func (a app) Insert(ctx context.Context, st store.Store, key string) error {
	s := st.(*postgres.Store)
	tbl, err := a.table(ctx, s)
	if err != nil {
		return err
	}
	if tx, ok := s.Tx(ctx); ok {
		_, err = tx.Exec(ctx, `INSERT INTO `+tbl+` VALUES ($1)`, key)
	} else {
		_, err = s.Pool().Exec(ctx, `INSERT INTO `+tbl+` VALUES ($1)`, key)
	}
	return err
}

func (a app) Count(ctx context.Context, st store.Store, key string) (int, error) {
	s := st.(*postgres.Store)
	tbl, err := a.table(ctx, s)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.Pool().QueryRow(ctx, `SELECT count(*) FROM `+tbl+` WHERE key = $1`, key).Scan(&n)
	return n, err
}

// TestCorrelationIndex checks that a correlation lookup is an index scan
// (seq scans off: a tiny table would be scanned whole anyway).
func TestCorrelationIndex(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	rows, err := tx.Query(ctx, `EXPLAIN SELECT * FROM `+pgx.Identifier{s.Schema(), "sw_events"}.Sanitize()+` o
		WHERE (o.metadata->>'correlation_id') = 'x' AND NOT o.link ORDER BY o.commit_key, o.position LIMIT 100`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if !strings.Contains(plan.String(), "sw_events_correlation") {
		t.Errorf("the correlation lookup does not use sw_events_correlation:\n%s", plan.String())
	}
}
