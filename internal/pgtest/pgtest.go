// Package pgtest gives tests a real PostgreSQL: the server named by
// SWITCHYARD_TEST_POSTGRES_URL, and throwaway databases on it.
//
// Without the variable, or with the server unreachable, a test skips — and
// fails instead when CI=true, so a CI run never passes by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvURL names the variable holding the test server's URL.
const EnvURL = "SWITCHYARD_TEST_POSTGRES_URL"

// URL returns the test server's URL, or skips t (fails it under CI=true).
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		unavailable(t, EnvURL+" is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		unavailable(t, "PostgreSQL at "+EnvURL+" unreachable: "+err.Error())
	}
	conn.Close(ctx)
	return u
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: PostgreSQL tests are required)", why)
	}
	t.Skip(why)
}

// Database creates a fresh database on the test server and returns its URL;
// it is dropped when t ends.
func Database(t testing.TB) string {
	t.Helper()
	base := URL(t)
	name := "sw_test_" + randomHex(6)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return WithDatabase(t, base, name)
}

// WithDatabase returns url pointing at database name instead.
func WithDatabase(t testing.TB, url, name string) string {
	t.Helper()
	u := rebuild(url, name)
	if u == "" {
		t.Fatalf("cannot parse %s", EnvURL)
	}
	return u
}

func rebuild(url, name string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return ""
	}
	u := "postgres://" + cfg.User
	if cfg.Password != "" {
		u += ":" + cfg.Password
	}
	return u + "@" + cfg.Host + ":" + strconv.Itoa(int(cfg.Port)) + "/" + name + "?sslmode=disable"
}

// RandomName returns prefix followed by random lowercase hex.
func RandomName(prefix string) string { return prefix + randomHex(6) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Main is for TestMain: when the test server is reachable it creates one
// database for the whole run and sets *url to it, runs the tests and drops
// the database. Tests still call URL (or check *url) to skip or fail when
// there was none.
func Main(m *testing.M, url *string) int {
	drop := setUp(url)
	defer drop()
	return m.Run()
}

// MainWithExamples is Main for a package whose examples need the database
// too. An example cannot skip, so without one (and without CI=true) the run
// is limited to the tests, which skip, unless -test.run says otherwise;
// under CI=true the examples run, and fail.
func MainWithExamples(m *testing.M, url *string) int {
	drop := setUp(url)
	defer drop()
	if *url == "" && os.Getenv("CI") != "true" {
		flag.Parse()
		if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "" {
			_ = f.Value.Set("^Test")
			fmt.Fprintln(os.Stderr, "pgtest: no PostgreSQL database from "+EnvURL+": the examples that need it do not run")
		}
	}
	return m.Run()
}

// setUp creates the run's database on the test server, when there is one,
// and sets *url to it; drop drops it.
func setUp(url *string) (drop func()) {
	base := os.Getenv(EnvURL)
	if base == "" {
		return func() {}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return func() {}
	}
	defer conn.Close(ctx)
	name := "sw_test_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return func() {}
	}
	*url = rebuild(base, name)
	return func() {
		ctx := context.Background()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	}
}

// OpenTransaction begins a transaction on pool that takes its id at once,
// as one that has written does, and returns it with the pid of the server
// process running it. It is rolled back when t ends, unless ended before.
func OpenTransaction(t testing.TB, pool *pgxpool.Pool) (tx pgx.Tx, pid int) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) }) //nolint:errcheck // ended already, or rolled back
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid(), pg_current_xact_id()::text`).Scan(&pid, new(string)); err != nil {
		t.Fatal(err)
	}
	return tx, pid
}
