package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
	"github.com/switchyard-go/switchyard/store/storetest"
)

func newStore(t *testing.T, maxEventBytes int) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{
		Context: "visits", Shard: "default", Dir: t.TempDir(), MaxEventBytes: maxEventBytes, Synchronous: "normal",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Name: "sqlite",
		New:  func(t *testing.T, max int) store.Store { return newStore(t, max) },
		App:  app{},
	})
}

type app struct{}

func (app) exec(ctx context.Context, s *sqlite.Store, q string, args ...any) error {
	var err error
	if tx, ok := s.Tx(ctx); ok {
		_, err = tx.ExecContext(ctx, q, args...)
	} else {
		_, err = s.DB().ExecContext(ctx, q, args...)
	}
	return err
}

func (a app) Insert(ctx context.Context, st store.Store, key string) error {
	s := st.(*sqlite.Store)
	if err := a.exec(ctx, s, `CREATE TABLE IF NOT EXISTS app_rows (key TEXT NOT NULL)`); err != nil {
		return err
	}
	return a.exec(ctx, s, `INSERT INTO app_rows VALUES (?)`, key)
}

func (app) Count(ctx context.Context, st store.Store, key string) (int, error) {
	s := st.(*sqlite.Store)
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(s.Path())+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM app_rows WHERE key = ?`, key).Scan(&n)
	return n, err
}

// TestCorrelationIndex checks that a correlation lookup searches an index.
func TestCorrelationIndex(t *testing.T) {
	s := newStore(t, 0)
	rows, err := s.DB().QueryContext(context.Background(), `EXPLAIN QUERY PLAN SELECT * FROM sw_events o
		WHERE json_extract(o.metadata, '$.correlation_id') = 'x' AND o.link = 0 ORDER BY o.position LIMIT 100`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	if !strings.Contains(plan.String(), "USING INDEX sw_events_correlation") {
		t.Errorf("the correlation lookup does not use sw_events_correlation:\n%s", plan.String())
	}
}
