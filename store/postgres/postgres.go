package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchyard-go/switchyard/internal/backend"
	"github.com/switchyard-go/switchyard/internal/envelope"
	"github.com/switchyard-go/switchyard/internal/touch"
	"github.com/switchyard-go/switchyard/store"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Store. Context and Shard are required; the zero value of
// every other field works.
type Config struct {
	Context string // bounded context, e.g. "visits"
	Shard   string // shard, e.g. "default" or "tenant-a"

	// Schema holds the store's tables (default "switchyard"). Give each
	// (context, shard) its own database, or its own schema in a shared one.
	Schema string

	// MaxEventBytes limits one event's data plus metadata
	// (default store.DefaultMaxEventBytes, 1 MiB − 8 KiB).
	MaxEventBytes int

	// CreateDatabase makes Open create the DSN's database when it does not
	// exist (connecting to the "postgres" database on the same server).
	CreateDatabase bool

	// NoMigrate makes Open check that the schema is at this build's
	// version instead of migrating it: a missing or older schema is an
	// error matching store.ErrNotMigrated. For tools that only look.
	NoMigrate bool

	// ReplicaDSN names a streaming replica of the database, best with a
	// user that may only read: Open connects a pool to it, which reads
	// under a ctx in the store.Reading role use (see Store.Read), and Close
	// closes. Replica is instead a pool of the caller's, which stays
	// theirs; give one or the other. New takes only Replica.
	ReplicaDSN string
	Replica    *pgxpool.Pool

	// Logger receives the store's few log lines (nil discards them).
	Logger *slog.Logger

	// TracerProvider and MeterProvider receive the span of every append
	// and the count of events appended (nil: the global providers).
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

func (c *Config) setDefaults() {
	if c.Schema == "" {
		c.Schema = "switchyard"
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = store.DefaultMaxEventBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if err := store.CheckName("context", c.Context); err != nil {
		errs = append(errs, err)
	}
	if err := store.CheckName("shard", c.Shard); err != nil {
		errs = append(errs, err)
	}
	if c.Schema != "" {
		if err := store.CheckName("schema", c.Schema); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MaxEventBytes < 0 {
		errs = append(errs, &store.InvalidError{Field: "max event bytes", Value: strconv.Itoa(c.MaxEventBytes), Reason: "negative"})
	}
	if c.ReplicaDSN != "" && c.Replica != nil {
		errs = append(errs, &store.InvalidError{Field: "replica", Value: redact(c.ReplicaDSN), Reason: "both a replica DSN and a replica pool: give one"})
	}
	return errors.Join(errs...)
}

// Store is a store.Store on PostgreSQL.
type Store struct {
	pool       *pgxpool.Pool
	ownPool    bool
	replica    *pgxpool.Pool // nil: reads in the Reading role use pool
	ownReplica bool
	cfg        Config
	name       string // "context/shard" for errors
	sql        statements
	closed     atomic.Bool
	commits    backend.Signal
	tel        *backend.Telemetry
	foreign    foreign // other databases' transactions, for ReadAll
}

var _ store.Outbox = (*Store)(nil)

// Open connects to dsn, migrates the store's schema and returns the store.
// The store owns its pool and closes it on Close.
func Open(ctx context.Context, dsn string, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pcfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	pool, err := connect(ctx, pcfg)
	var pgErr *pgconn.PgError
	if err != nil && cfg.CreateDatabase && errors.As(err, &pgErr) && pgErr.Code == "3D000" {
		if err = CreateDatabase(ctx, dsn); err == nil {
			pool, err = connect(ctx, pcfg)
		}
	}
	if err != nil {
		if errors.As(err, &pgErr) && pgErr.Code == "3D000" && !cfg.CreateDatabase {
			err = fmt.Errorf("%w (to have it created, set create_databases: true for the context, or postgres.Config.CreateDatabase)", err)
		}
		return nil, &store.Error{Op: "connect", Store: cfg.Context + "/" + cfg.Shard, Err: err, Unavailable: unavailable(err)}
	}
	own := cfg.ReplicaDSN != ""
	if own {
		if cfg.Replica, err = replicaPool(cfg.ReplicaDSN); err != nil {
			pool.Close()
			return nil, err
		}
		cfg.ReplicaDSN = ""
	}
	s, err := New(ctx, pool, cfg)
	if err != nil {
		pool.Close()
		if own {
			cfg.Replica.Close()
		}
		return nil, err
	}
	s.ownPool, s.ownReplica = true, own
	return s, nil
}

// replicaPool makes the pool of a replica: it connects when first used,
// so a store opens while its replica is down (reads in the Reading role
// then fail as unavailable).
func replicaPool(dsn string) (*pgxpool.Pool, error) {
	pcfg, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	return pgxpool.NewWithConfig(context.Background(), pcfg)
}

func connect(ctx context.Context, pcfg *pgxpool.Config) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// New returns a store on an existing pool, migrating its schema first. The
// pool stays the caller's: Close does not close it.
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ReplicaDSN != "" {
		return nil, &store.InvalidError{Field: "replica DSN", Value: redact(cfg.ReplicaDSN), Reason: "New takes a replica pool (Config.Replica); Open takes a DSN"}
	}
	cfg.setDefaults()
	s := &Store{pool: pool, replica: cfg.Replica, cfg: cfg, name: cfg.Context + "/" + cfg.Shard, sql: newStatements(cfg.Schema),
		tel: backend.NewTelemetry(cfg.TracerProvider, cfg.MeterProvider, cfg.Context, cfg.Shard)}
	if cfg.NoMigrate {
		if err := checkSchema(ctx, pool, cfg.Schema); err != nil {
			return nil, s.fail("check schema", err)
		}
		return s, nil
	}
	if err := migrate(ctx, pool, cfg.Schema, cfg.Logger); err != nil {
		return nil, s.fail("migrate", err)
	}
	return s, nil
}

// CreateDatabase creates the database named in dsn, connecting to the
// "postgres" database of the same server. An existing database is no error.
func CreateDatabase(ctx context.Context, dsn string) error {
	err := adminExec(ctx, dsn, "CREATE DATABASE %s")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil // already there (23505: a concurrent CREATE DATABASE won)
	}
	return err
}

// DropDatabase drops the database named in dsn, connecting to the "postgres"
// database of the same server and ending its open sessions. A missing
// database is no error.
func DropDatabase(ctx context.Context, dsn string) error {
	return adminExec(ctx, dsn, "DROP DATABASE IF EXISTS %s WITH (FORCE)")
}

// adminExec runs stmt, with the quoted name of dsn's database for %s, on the
// "postgres" database of dsn's server.
func adminExec(ctx context.Context, dsn, stmt string) error {
	// Parsed as a pool's DSN, so that pool settings (pool_max_conns) are
	// not sent to the server as startup parameters.
	pcfg, err := parseDSN(dsn)
	if err != nil {
		return err
	}
	cc := pcfg.ConnConfig
	name := cc.Database
	cc.Database = "postgres"
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, fmt.Sprintf(stmt, pgx.Identifier{name}.Sanitize()))
	return err
}

// CheckDSN reports whether dsn parses as a pool's connection string (URL
// or key=value, with pgxpool's pool_* settings), without connecting: a
// *store.InvalidError naming it, its password hidden, when it does not.
func CheckDSN(dsn string) error {
	_, err := parseDSN(dsn)
	return err
}

func parseDSN(dsn string) (*pgxpool.Config, error) {
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, &store.InvalidError{Field: "postgres dsn", Value: redact(dsn), Reason: redact(err.Error())}
	}
	pcfg.AfterConnect = registerUUID
	return pcfg, nil
}

// redact returns dsn fit for an error message: without its password, even
// when it does not parse.
func redact(dsn string) string {
	return passwordRE.ReplaceAllString(userinfoRE.ReplaceAllString(dsn, "://${1}:***@"), "password=***")
}

var (
	userinfoRE = regexp.MustCompile(`://([^:@/]*):[^@/]*@`)
	passwordRE = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]*)`)
)

// connectTimeout bounds connecting when the caller's ctx has no deadline.
const connectTimeout = 15 * time.Second

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, connectTimeout)
}

// Context returns the store's bounded context.
func (s *Store) Context() string { return s.cfg.Context }

// Shard returns the store's shard.
func (s *Store) Shard() string { return s.cfg.Shard }

// Schema returns the schema holding the store's tables.
func (s *Store) Schema() string { return s.cfg.Schema }

// Pool returns the store's connection pool, for application queries.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the store, and its pool when Open created it.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.ownPool {
		s.pool.Close()
	}
	if s.ownReplica {
		s.replica.Close()
	}
	return nil
}

type txKey struct{ s *Store }

// WithTx returns a context carrying tx: appends and links to s made with it
// join tx and commit or roll back with it. tx must belong to a connection to
// s's database; the caller commits it.
func (s *Store) WithTx(ctx context.Context, tx pgx.Tx) context.Context {
	return backend.WithOpen(context.WithValue(ctx, txKey{s}, tx), s)
}

// Tx returns the transaction of s carried by ctx, if any — inside Transact,
// the handler's transaction, for the application's own SQL.
func (s *Store) Tx(ctx context.Context) (pgx.Tx, bool) {
	tx, ok := ctx.Value(txKey{s}).(pgx.Tx)
	return tx, ok
}

// Transact runs fn in a transaction; see store.Store.
func (s *Store) Transact(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := backend.CheckWrite(ctx, s, "transaction", ""); err != nil {
		return err
	}
	if tx, ok := s.Tx(ctx); ok {
		return s.savepoint(ctx, tx, fn)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.fail("begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // harmless after Commit
	ctx, h := s.hold(s.tel.Transaction(ctx), tx)
	defer h.end()
	if err := fn(ctx); err != nil {
		return err
	}
	if err := s.flush(ctx, true); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return s.failWrite("commit", err, false)
	}
	s.commits.Notify()
	s.tel.Committed(ctx)
	return nil
}

// savepoint runs fn under a savepoint of tx (pgx's nested transaction):
// an error rolls back what fn did, nil releases it. The appends held
// for the transaction are written before the savepoint; those fn
// deferred are held for the savepoint, written before its release, or
// dropped with it.
func (s *Store) savepoint(ctx context.Context, tx pgx.Tx, fn func(ctx context.Context) error) error {
	if err := s.flush(ctx, false); err != nil {
		return err
	}
	sub, err := tx.Begin(ctx)
	if err != nil {
		return s.fail("savepoint", err)
	}
	defer sub.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // harmless after Commit
	ctx, release := s.tel.Savepoint(ctx)
	ctx, h := s.hold(ctx, sub)
	defer h.end()
	if err := fn(ctx); err != nil {
		return err
	}
	if err := s.flush(ctx, true); err != nil {
		return err
	}
	if err := sub.Commit(ctx); err != nil {
		return s.fail("release savepoint", err)
	}
	release()
	return nil
}

func (s *Store) fail(op string, err error) error {
	switch {
	case errors.Is(err, store.ErrClosed):
		return err
	case unavailable(err):
		return &store.Error{Op: op, Store: s.name, Err: err, Unavailable: true}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return &store.Error{Op: op, Store: s.name, Err: err}
}

// failWrite is fail for a write that commits on its own (an append outside
// a transaction, a commit): one sent whose answer was lost — this time, or
// in an earlier attempt (lost) — may have committed.
func (s *Store) failWrite(op string, err error, lost bool) error {
	var pgErr *pgconn.PgError
	if !lost && (errors.As(err, &pgErr) || pgconn.SafeToRetry(err)) {
		return s.fail(op, err) // the server refused it, or it was never sent
	}
	return &store.Error{Op: op, Store: s.name, Err: err, Unavailable: unavailable(err), MaybeWritten: true}
}

// unavailable tells the database being out of reach from a statement
// failing: no connection could be made (whatever stopped it, a timeout
// too), the connection broke, or the server reported a connection,
// resource or shutdown error. A serialization failure or a deadlock is
// not: it is a conflict, worth a bounded retry; nor is ctx ending while a
// statement ran.
func unavailable(err error) bool {
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return true
		}
		return false
	}
	return broken(err)
}

// broken reports the connection failing under a statement: a network
// error, the server closing the connection, or a failure pgconn knows
// happened before anything was sent.
func broken(err error) bool {
	var netErr net.Error
	var connErr *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) || errors.As(err, &connErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// querier is what both a pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// maxAnyRetries bounds how often an Any append retries a lost race on
// (stream, version); in a caller's transaction each retry of several
// events follows the rollback to the append's savepoint, and one event's
// found its conflict skipped (appendOneInTx). Every race lost is another
// transaction's append to the stream committed, so the retries make
// progress; but a transaction that waits behind others holding the
// stream's next versions uncommitted (handlers of many partitions, each
// appending to one shared stream) loses once for each of them ahead, and
// for each newcomer that gets in before it: the bound is far above that.
const maxAnyRetries = 64

// Append appends events; see store.Store. It runs in a producer span
// whose trace context the events carry.
func (s *Store) Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...store.Event) ([]store.Event, error) {
	return s.tel.Append(ctx, stream, len(events), func(ctx context.Context, now time.Time) ([]store.Event, error) {
		return s.append(ctx, stream, expected, events, now)
	})
}

// append appends events, recorded at now, after the appends the
// transaction of ctx holds.
func (s *Store) append(ctx context.Context, stream string, expected store.ExpectedVersion, events []store.Event, now time.Time) ([]store.Event, error) {
	pending, err := s.prepare(ctx, stream, expected, events, now)
	if err != nil {
		return nil, err
	}
	if err := s.flush(ctx, false); err != nil {
		return nil, err
	}
	return s.write(ctx, stream, expected, pending, now)
}

// prepare checks that an append may be made under ctx, and validates and
// stamps its events (backend.Prepare).
func (s *Store) prepare(ctx context.Context, stream string, expected store.ExpectedVersion, events []store.Event, now time.Time) ([]backend.Pending, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := backend.CheckWrite(ctx, s, "append to", stream); err != nil {
		return nil, err
	}
	return backend.Prepare(ctx, stream, expected, events, s.cfg.MaxEventBytes, now)
}

// write writes the prepared events of an append, recorded at now: in the
// transaction of ctx, or on their own.
func (s *Store) write(ctx context.Context, stream string, expected store.ExpectedVersion, pending []backend.Pending, now time.Time) ([]store.Event, error) {
	tx, inTx := s.Tx(ctx)
	stmt, args := s.appendArgs(stream, expected, now, pending, inTx)
	var err error
	lost := false // an attempt whose answer was lost may have committed
	for attempt := 0; ; attempt++ {
		var out []store.Event
		if inTx {
			out, err = s.appendInTx(ctx, tx, stmt, args, pending)
		} else {
			out, err = s.insert(ctx, s.pool, stmt, args, pending)
		}
		if err == nil {
			if !inTx {
				s.commits.Notify()
			}
			return out, nil
		}
		if !inTx && attempt < maxConnRetries && connectionLost(ctx, err) {
			// The events' IDs are fixed: if the lost attempt committed,
			// the retry finds them and succeeds as a replay.
			s.retrying(ctx, "append to "+strconv.Quote(stream), err)
			lost = lost || !pgconn.SafeToRetry(err)
			continue
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			if errors.Is(err, errNoRows) && inTx && len(pending) == 1 && expected == store.Any && attempt < maxAnyRetries && !s.stored(ctx, tx, pending[0]) {
				continue // a concurrent append took the version (appendOneInTx skipped the conflict)
			}
			if errors.Is(err, errNoRows) {
				return s.diagnoseLost(ctx, stream, expected, pending, lost)
			}
			if inTx {
				return nil, s.fail("append to "+strconv.Quote(stream), err) // the caller's commit decides
			}
			return nil, s.failWrite("append to "+strconv.Quote(stream), err, lost)
		}
		if pgErr.ConstraintName == "sw_events_pkey" && expected == store.Any && attempt < maxAnyRetries {
			continue // a concurrent append took the version; Any has no expectation to break
		}
		return s.diagnoseLost(ctx, stream, expected, pending, lost)
	}
}

// diagnoseLost is diagnose after an append that inserted nothing, when an
// earlier attempt's answer may have been lost: a diagnosis that cannot
// look (the connection gone again) then cannot say nothing was written.
func (s *Store) diagnoseLost(ctx context.Context, stream string, expected store.ExpectedVersion, pending []backend.Pending, lost bool) ([]store.Event, error) {
	out, err := s.diagnose(ctx, s.reader(ctx), stream, expected, pending)
	var se *store.Error
	if lost && errors.As(err, &se) {
		se.MaybeWritten = true
	}
	return out, err
}

var errNoRows = errors.New("expected version did not match")

// maxConnRetries bounds retries after a lost connection (a restarted server
// leaves dead connections in the pool; each is found on its next use).
const maxConnRetries = 3

func (s *Store) retrying(ctx context.Context, op string, err error) {
	s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "connection lost; retrying",
		slog.String("store", s.name), slog.String("op", op), slog.String("error", err.Error()))
}

// connectionLost reports whether err is the connection failing rather than
// the statement, with ctx still live: a network error, the server closing
// the connection, or a failure pgconn knows happened before sending.
func connectionLost(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" // admin shutdown, crash, cannot connect now
	}
	return broken(err)
}

// appendInTx appends inside the caller's transaction in one round trip,
// so that a conflict leaves the transaction usable: one event through
// appendOneInTx, which skips a conflict (errNoRows), several under a
// savepoint, since skipping some of them would leave the others written.
func (s *Store) appendInTx(ctx context.Context, tx pgx.Tx, stmt string, args []any, pending []backend.Pending) ([]store.Event, error) {
	if len(pending) == 1 {
		return s.insert(ctx, tx, stmt, args, pending)
	}
	var out []store.Event
	err := underSavepoint(ctx, tx, "sw_append", func(b *pgx.Batch) {
		b.Queue(stmt, args...).Query(func(rows pgx.Rows) error {
			var err error
			out, err = s.collectAppend(rows, pending)
			return err
		})
	})
	if err == nil && out == nil {
		// No row matched the expected version: nothing was inserted, and the
		// savepoint was released. The transaction is fine.
		return nil, errNoRows
	}
	return out, err
}

// statementFailed reports whether err is the server refusing a statement in
// a transaction that was usable before it — the case a savepoint undoes.
func statementFailed(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code != "25P02" && pgErr.Code != "3B001"
}

func (s *Store) insert(ctx context.Context, q querier, stmt string, args []any, pending []backend.Pending) ([]store.Event, error) {
	rows, err := q.Query(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	out, err := s.collectAppend(rows, pending)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, errNoRows
	}
	return out, nil
}

// collectAppend reads the RETURNING rows of an append into the stored events,
// or nil when the expected version did not match. Event i of the append got
// the i-th version.
func (s *Store) collectAppend(rows pgx.Rows, pending []backend.Pending) ([]store.Event, error) {
	defer rows.Close()
	type ret struct{ version, commit, seq int64 }
	var got []ret
	first := int64(1<<63 - 1)
	for rows.Next() {
		var r ret
		if err := rows.Scan(&r.version, &r.commit, &r.seq); err != nil {
			return nil, err
		}
		first = min(first, r.version)
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return nil, nil
	}
	if len(got) != len(pending) {
		return nil, fmt.Errorf("append returned %d rows for %d events", len(got), len(pending))
	}
	out := make([]store.Event, len(pending))
	for _, r := range got {
		i := r.version - first
		ev := pending[i].Event
		ev.Version = r.version
		ev.Position = store.Position{Commit: uint64(r.commit), Seq: r.seq}
		envelope.Complete(&ev, s.cfg.Context, s.cfg.Shard)
		out[i] = ev
	}
	return out, nil
}

// appendArgs returns the statement appending pending and its arguments.
func (s *Store) appendArgs(stream string, expected store.ExpectedVersion, now time.Time, pending []backend.Pending, inTx bool) (string, []any) {
	if len(pending) == 1 {
		p, stmt := pending[0], s.sql.appendOne
		if inTx {
			stmt = s.sql.appendOneInTx
		}
		return stmt, []any{stream, int64(expected), now, pgUUID(p.Event.ID), p.Event.Type, string(p.Event.Data), string(p.Metadata)}
	}
	ids := make([]pgtype.UUID, len(pending))
	types := make([]string, len(pending))
	data := make([]string, len(pending))
	meta := make([]string, len(pending))
	for i, p := range pending {
		ids[i] = pgUUID(p.Event.ID)
		types[i] = p.Event.Type
		data[i] = string(p.Event.Data)
		meta[i] = string(p.Metadata)
	}
	return s.sql.append, []any{stream, int64(expected), now, ids, types, data, meta}
}

// reader returns where to look after a failed append: the caller's
// transaction (rolled back to before the append) when there is one, so its
// own earlier writes count, or the pool.
func (s *Store) reader(ctx context.Context) querier {
	if tx, ok := s.Tx(ctx); ok {
		return tx
	}
	return s.pool
}

// source is where a read under ctx goes, and whether that is the
// replica: the transaction ctx carries, once the appends it holds are
// written (flush), the replica in the Reading role, else the primary.
func (s *Store) source(ctx context.Context) (querier, bool, error) {
	if tx, ok := s.Tx(ctx); ok {
		return tx, false, s.flush(ctx, false)
	}
	if s.replica != nil && store.RoleOf(ctx) == store.Reading {
		return s.replica, true, nil
	}
	return s.pool, false, nil
}

// readOp names a read, and the replica when it goes there: an error then
// says which copy failed.
func readOp(op string, replica bool) string {
	if replica {
		return op + " from the replica"
	}
	return op
}

// diagnose explains a failed append; see backend.Diagnose.
func (s *Store) diagnose(ctx context.Context, q querier, stream string, expected store.ExpectedVersion, pending []backend.Pending) ([]store.Event, error) {
	found, err := s.findIDs(ctx, q, backend.IDs(pending))
	if err != nil {
		return nil, s.fail("append to "+strconv.Quote(stream), err)
	}
	current, err := s.version(ctx, q, stream)
	if err != nil {
		return nil, s.fail("append to "+strconv.Quote(stream), err)
	}
	from, err := backend.Diagnose(stream, expected, pending, found, current)
	if err != nil {
		return nil, err
	}
	return s.Read(ctx, stream, store.Forward, from, len(pending))
}

// pgUUID is id as pgx encodes it directly, in every query mode: a
// uuid.UUID goes through its driver.Valuer (text) after a failed encoding
// plan that formats an error, which cost single-event appends a sixth of
// their client time. Scans likewise go into *[16]byte rather than
// uuid.UUID's sql.Scanner.
func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

func uuidArg(ids []uuid.UUID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		out[i] = pgUUID(id)
	}
	return out
}

// stored reports whether p's event is stored already: what else an
// appendOneInTx that inserted nothing met. An error reads as stored, for
// the caller's diagnosis to report.
func (s *Store) stored(ctx context.Context, q querier, p backend.Pending) bool {
	found, err := s.findIDs(ctx, q, []uuid.UUID{p.Event.ID})
	return err != nil || len(found) > 0
}

func (s *Store) findIDs(ctx context.Context, q querier, ids []uuid.UUID) (map[uuid.UUID]backend.Place, error) {
	rows, err := q.Query(ctx, s.sql.findIDs, uuidArg(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := make(map[uuid.UUID]backend.Place, len(ids))
	for rows.Next() {
		var id uuid.UUID
		var p backend.Place
		if err := rows.Scan((*[16]byte)(&id), &p.Stream, &p.Version); err != nil {
			return nil, err
		}
		found[id] = p
	}
	return found, rows.Err()
}

func (s *Store) version(ctx context.Context, q querier, stream string) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, s.sql.version, stream).Scan(&v)
	return v, err
}

// Link links stored events into stream; see store.Store.
func (s *Store) Link(ctx context.Context, stream string, expected store.ExpectedVersion, ids ...uuid.UUID) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := backend.CheckWrite(ctx, s, "link into", stream); err != nil {
		return err
	}
	if err := backend.CheckLink(stream, expected, ids); err != nil {
		return err
	}
	err := s.Transact(ctx, func(ctx context.Context) error {
		tx, _ := s.Tx(ctx)
		var n int64
		err := underSavepoint(ctx, tx, "sw_link", func(b *pgx.Batch) {
			b.Queue(s.sql.link, stream, int64(expected), time.Now().UTC(), uuidArg(ids), len(ids)).QueryRow(func(row pgx.Row) error {
				return row.Scan(&n)
			})
		})
		if err == nil && n == int64(len(ids)) {
			return nil
		}
		if err != nil && statementFailed(err) {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "sw_events_link" {
				return &store.DuplicateEventError{Stream: stream, ID: "(one of the linked events, already linked here)"}
			}
			if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
				return s.fail("link into "+strconv.Quote(stream), err)
			}
		}
		// Nothing inserted: an event is missing, or the version did not match.
		found, err := s.findIDs(ctx, tx, ids)
		if err != nil {
			return s.fail("link into "+strconv.Quote(stream), err)
		}
		for _, id := range ids {
			if _, ok := found[id]; !ok {
				return fmt.Errorf("store: link %s into %q: %w", id, stream, store.ErrEventNotFound)
			}
		}
		actual, err := s.version(ctx, tx, stream)
		if err != nil {
			return s.fail("link into "+strconv.Quote(stream), err)
		}
		return &store.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
	})
	if err == nil {
		backend.NoteWrite(ctx, s, "link into "+strconv.Quote(stream))
	}
	return err
}

// Read reads a stream; see store.Store. Under a ctx in the store.Reading
// role, with no transaction, it reads the replica (Config.ReplicaDSN) when
// the store has one; so do the catalog's reads.
func (s *Store) Read(ctx context.Context, stream string, dir store.Direction, from int64, limit int) ([]store.Event, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := backend.CheckRead(stream, dir, from, limit); err != nil {
		return nil, err
	}
	q := s.sql.readForward
	if dir == store.Backward {
		q = s.sql.readBackward
		if from < 0 {
			from = 1<<63 - 1
		}
	}
	_, inTx := s.Tx(ctx)
	src, replica, err := s.source(ctx)
	if err != nil {
		return nil, err
	}
	op := func() string { return readOp("read "+strconv.Quote(stream), replica) }
	if touch.On(ctx) {
		backend.NoteRead(ctx, s, op(), replica)
	}
	for attempt := 0; ; attempt++ {
		out, err := s.query(ctx, src, true, q, stream, from, limit)
		if err != nil && !inTx && attempt < maxConnRetries && connectionLost(ctx, err) {
			s.retrying(ctx, op(), err)
			continue
		}
		if err != nil {
			return nil, s.fail(op(), err)
		}
		return out, nil
	}
}

// ReadAll reads the global log; see store.Store.
func (s *Store) ReadAll(ctx context.Context, after store.Position, limit int) ([]store.Event, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := backend.CheckLimit(limit); err != nil {
		return nil, err
	}
	backend.NoteRead(ctx, s, "read all", false)
	for attempt := 0; ; attempt++ {
		out, err := s.readAll(ctx, after, limit)
		if err != nil && attempt < maxConnRetries && connectionLost(ctx, err) {
			s.retrying(ctx, "read all", err)
			continue
		}
		if err != nil {
			return nil, s.fail("read all", err)
		}
		return out, nil
	}
}

// readAll reads the log once, below the watermark (see logReads).
func (s *Store) readAll(ctx context.Context, after store.Position, limit int) ([]store.Event, error) {
	xids, err := s.foreign.current(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	return s.query(ctx, s.pool, false, s.sql.readAll, strconv.FormatUint(after.Commit, 10), after.Seq, limit, xids)
}

func (s *Store) query(ctx context.Context, q querier, withLink bool, sql string, args ...any) ([]store.Event, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return s.scanEvents(rows, withLink)
}

// scanEvents reads rows of the shape of statements.columns; withLink says the
// rows start with the link columns of a stream read.
func (s *Store) scanEvents(rows pgx.Rows, withLink bool) ([]store.Event, error) {
	defer rows.Close()
	// Rows gather in a reused slice; the caller gets a copy of the right
	// size instead of the garbage of growing one.
	scratch := scratches.Get().(*[]store.Event)
	out := (*scratch)[:0]
	defer func() {
		clear(out)
		*scratch = out[:0]
		scratches.Put(scratch)
	}()
	// The destinations are shared by every row: each Scan overwrites them all.
	var (
		ev          store.Event
		linkVersion int64
		commit      int64
		data        []byte
		meta        pgtype.DriverBytes // decoded before the next row
		linkStream  string
		link        bool
	)
	dest := make([]any, 0, 12)
	if withLink {
		dest = append(dest, &linkStream, &linkVersion, &link)
	}
	dest = append(dest, &ev.Stream, &ev.Version, &commit, &ev.Position.Seq, (*[16]byte)(&ev.ID), &ev.Type, &data, &meta, &ev.RecordedAt)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		e := store.Event{ID: ev.ID, Type: ev.Type, Stream: ev.Stream, Version: ev.Version, Data: data,
			Position: store.Position{Commit: uint64(commit), Seq: ev.Position.Seq}, RecordedAt: ev.RecordedAt.UTC()}
		if err := decodeMetadata(meta, &e); err != nil {
			return nil, err
		}
		envelope.Complete(&e, s.cfg.Context, s.cfg.Shard)
		if link {
			backend.LinkedAt(&e, linkStream, linkVersion)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return slices.Clone(out), nil
}

var scratches = sync.Pool{New: func() any { return new([]store.Event) }}
