package postgres_test

import (
	"context"
	"fmt"

	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
)

// Saving an application row and its event in one transaction.
func ExampleStore_Transact() {
	// The test run's database (see TestMain); your DSN in a program, such
	// as "postgres://127.0.0.1:5432/visits_default".
	dsn := testURL
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, postgres.Config{Context: "visits", Shard: "example", Schema: "example_tx"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	defer s.Pool().Exec(ctx, `DROP SCHEMA example_tx CASCADE`) //nolint:errcheck

	_, _ = s.Pool().Exec(ctx, `CREATE TABLE IF NOT EXISTS example_tx.visits (id int PRIMARY KEY, state text)`)
	err = s.Transact(ctx, func(ctx context.Context) error {
		tx, _ := s.Tx(ctx)
		if _, err := tx.Exec(ctx, `INSERT INTO example_tx.visits VALUES (42, 'confirmed')`); err != nil {
			return err
		}
		ev, _ := store.NewEvent("VisitConfirmed", map[string]int{"visit": 42})
		_, err := s.Append(ctx, "Visit-42", store.Any, ev)
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	got, _ := s.Read(ctx, "Visit-42", store.Forward, 0, 10)
	fmt.Printf("visit 42 confirmed; events: %d\n", len(got))
	// Output: visit 42 confirmed; events: 1
}
