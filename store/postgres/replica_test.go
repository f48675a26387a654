package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/touchtest"
)

// Against a real streaming replica the test starts: reads in the reading
// role go to the replica (it does not see what it has not replayed), the
// writing role and writes use the primary, a write in the reading role is
// refused with nothing written, the replica's user cannot write, and the
// lag shows while the replica is paused.
func TestReplica(t *testing.T) {
	primary, replica := pgtest.Replicated(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, primary.URL("postgres"), postgres.Config{Context: "visits", Shard: "default", ReplicaDSN: replica.ReaderURL("postgres")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reading := store.WithRole(ctx, store.Reading)
	count := func(ctx context.Context) int { // -1: the replica has not the schema yet
		evs, err := st.Read(ctx, "Visit-1", store.Forward, 0, 100)
		if err != nil {
			return -1
		}
		return len(evs)
	}
	if _, err := st.Append(ctx, "Visit-1", store.NoStream, event(t, "VisitBooked")); err != nil {
		t.Fatal(err)
	}
	testrun.Wait(t, "the replica to replay the first event", 20*time.Second, func() bool { return count(reading) == 1 })

	replica.PauseReplay(t)
	if _, err := st.Append(ctx, "Visit-1", store.Exact(0), event(t, "VisitMoved")); err != nil {
		t.Fatal(err)
	}
	if got := count(ctx); got != 2 {
		t.Errorf("writing role: %d events, want 2 from the primary", got)
	}
	recorded, rec := touchtest.Record(reading)
	if got := count(recorded); got != 1 {
		t.Errorf("reading role: %d events, want 1 from the paused replica", got)
	}
	rec.ReadOnlyReplicas(t, "visits")
	if got := rec.Read(); len(got) != 1 || got[0] != "visits/default (replica)" {
		t.Errorf("recorded reads %v, want the replica of visits/default", got)
	}
	testrun.Wait(t, "the lag to show", 10*time.Second, func() bool {
		lag, ok, err := st.ReplicaLag(ctx)
		return err == nil && ok && lag > 0
	})

	_, err = st.Append(reading, "Visit-1", store.Any, event(t, "VisitMoved"))
	if !errors.Is(err, store.ErrReadOnly) || !strings.Contains(err.Error(), "visits/default") {
		t.Errorf("append in the reading role: %v, want ErrReadOnly naming the store", err)
	}
	if got := count(ctx); got != 2 {
		t.Errorf("after the refused append the primary has %d events, want 2", got)
	}
	// The replica's user may not write, on the replica (a hot standby is
	// read-only for anyone) nor on the primary (it may only read).
	for url, code := range map[string]string{replica.ReaderURL("postgres"): "25006", primary.ReaderURL("postgres"): "42501"} {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, `INSERT INTO switchyard.sw_inbox VALUES ('g', gen_random_uuid(), now())`)
		conn.Close(ctx)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != code {
			t.Errorf("the replica's user writing through %s: %v, want SQLSTATE %s", url, err, code)
		}
	}

	replica.ResumeReplay(t)
	testrun.Wait(t, "the replica to catch up", 20*time.Second, func() bool { return count(reading) == 2 })
	testrun.Wait(t, "the lag to end", 20*time.Second, func() bool {
		lag, _, err := st.ReplicaLag(ctx)
		return err == nil && lag == 0
	})
}

// A replica pool the caller gives stays the caller's: Close leaves it
// open. A DSN and a pool together are refused.
func TestReplicaPoolStaysTheCallers(t *testing.T) {
	primary, replica := pgtest.Replicated(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, replica.ReaderURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st, err := postgres.Open(ctx, primary.URL("postgres"), postgres.Config{Context: "visits", Shard: "default", Replica: pool})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := pool.Ping(ctx); err != nil {
		t.Errorf("the caller's replica pool after Close: %v", err)
	}
	_, err = postgres.Open(ctx, primary.URL("postgres"), postgres.Config{Context: "visits", Shard: "default", Replica: pool, ReplicaDSN: replica.ReaderURL("postgres")})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a replica DSN and pool together: %v, want ErrInvalid", err)
	}
}
