package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/internal/testcert"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
)

// A server with TLS, its certificate made by the test: the DSN's
// sslmode=verify-full with the right root certificate connects and
// appends; with another root it is refused, saying why, and no password
// shows.
func TestTLS(t *testing.T) {
	ca, other := testcert.NewAuthority(t, "pg-test-ca"), testcert.NewAuthority(t, "someone-else")
	dir := pgtest.OwnedDir(t, "tls")
	cert, key := testcert.WriteFiles(t, dir, ca.Server(t))
	pgtest.GiveToServer(t, cert, key)
	srv := pgtest.StartServer(t, "ssl=on", "ssl_cert_file="+cert, "ssl_key_file="+key)
	dsn := func(root string) string {
		return fmt.Sprintf("postgres://postgres:not-a-secret@127.0.0.1:%d/postgres?sslmode=verify-full&sslrootcert=%s", srv.Port, root)
	}
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn(ca.File), postgres.Config{Context: "visits", Shard: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ev, _ := store.NewEvent("VisitBooked", map[string]int{"n": 1})
	if _, err := st.Append(ctx, "Visit-1", store.NoStream, ev); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, dsn(other.File), postgres.Config{Context: "visits", Shard: "default"})
	var se *store.Error
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("another root certificate: %v, want a store.Error saying the certificate is unknown", err)
	}
	if err != nil && strings.Contains(err.Error(), "not-a-secret") {
		t.Errorf("the error shows the password: %v", err)
	}
}
