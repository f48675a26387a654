package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
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
