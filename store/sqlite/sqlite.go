package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/backend"
	"github.com/switchyard-go/switchyard/internal/envelope"
	"github.com/switchyard-go/switchyard/internal/flatjson"
	"github.com/switchyard-go/switchyard/internal/touch"
	"github.com/switchyard-go/switchyard/store"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"modernc.org/sqlite"
)

// Config configures a Store. Context and Shard are required; the zero value of
// every other field works.
type Config struct {
	Context string // bounded context, e.g. "visits"
	Shard   string // shard, e.g. "default"

	// Dir is the data folder (default "data"); the store's file is
	// Dir/<context>/<shard>.db. Path, when set, names the file instead.
	Dir  string
	Path string

	// MustExist makes Open fail, with an error matching fs.ErrNotExist
	// that names the file, when the file does not exist, instead of
	// creating it; NoMigrate makes it check that the schema is at this
	// build's version instead of migrating it (a missing or older schema:
	// store.ErrNotMigrated). For tools that only look.
	MustExist bool
	NoMigrate bool

	// MaxEventBytes limits one event's data plus metadata
	// (default store.DefaultMaxEventBytes, 1 MiB − 8 KiB).
	MaxEventBytes int

	// Synchronous is SQLite's synchronous setting: "full" (the default: a
	// commit survives power loss) or "normal" (survives a crash of the
	// process, not of the machine; faster).
	Synchronous string

	// Logger receives the store's few log lines (nil discards them).
	Logger *slog.Logger

	// TracerProvider and MeterProvider receive the span of every append
	// and the count of events appended (nil: the global providers).
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

func (c *Config) setDefaults() {
	if c.Dir == "" {
		c.Dir = "data"
	}
	if c.Path == "" {
		c.Path = filepath.Join(c.Dir, c.Context, c.Shard+".db")
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = store.DefaultMaxEventBytes
	}
	if c.Synchronous == "" {
		c.Synchronous = "full"
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
	switch strings.ToLower(c.Synchronous) {
	case "", "full", "normal":
	default:
		errs = append(errs, &store.InvalidError{Field: "sqlite synchronous", Value: c.Synchronous, Reason: `want "full" or "normal"`})
	}
	if c.MaxEventBytes < 0 {
		errs = append(errs, &store.InvalidError{Field: "max event bytes", Value: strconv.Itoa(c.MaxEventBytes), Reason: "negative"})
	}
	return errors.Join(errs...)
}

// Store is a store.Store in one SQLite file.
type Store struct {
	writer  *sql.DB // one connection: SQLite has one writer
	reader  *sql.DB // WAL readers, committed data only
	cfg     Config
	name    string
	closed  atomic.Bool
	commits backend.Signal
	// savepoints numbers savepoints, so nested ones have names of their own.
	savepoints atomic.Uint64
	tel        *backend.Telemetry
}

var _ store.Outbox = (*Store)(nil)

// Open opens (creating it and its folder when missing) the store's file in
// WAL mode and migrates its schema.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s := &Store{cfg: cfg, name: cfg.Context + "/" + cfg.Shard,
		tel: backend.NewTelemetry(cfg.TracerProvider, cfg.MeterProvider, cfg.Context, cfg.Shard)}
	if cfg.MustExist {
		if _, err := os.Stat(cfg.Path); err != nil {
			return nil, fmt.Errorf("sqlite: store %s: %w", s.name, err) // *fs.PathError names the file
		}
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
		return nil, s.fail("open", err)
	}
	base := "file:" + (&url.URL{Path: cfg.Path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + strings.ToUpper(cfg.Synchronous) + ")"
	var err error
	if s.writer, err = sql.Open("sqlite", base+"&_txlock=immediate"); err != nil {
		return nil, s.fail("open", err)
	}
	s.writer.SetMaxOpenConns(1)
	if s.reader, err = sql.Open("sqlite", base+"&_pragma=query_only(1)"); err != nil {
		s.writer.Close()
		return nil, s.fail("open", err)
	}
	s.reader.SetMaxOpenConns(4)
	if err := s.migrate(ctx); err != nil {
		s.writer.Close()
		s.reader.Close()
		return nil, s.fail("migrate", err)
	}
	return s, nil
}

// checkSchema checks, changing nothing, that the file's schema is at this
// build's version.
func (s *Store) checkSchema(ctx context.Context) error {
	var current int
	err := s.reader.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM sw_schema_version`).Scan(&current)
	if err != nil && strings.Contains(err.Error(), "no such table") {
		err, current = nil, 0
	}
	switch {
	case err != nil:
		return err
	case current > len(migrations):
		return fmt.Errorf("%s is at schema version %d, newer than this build knows (%d)", s.cfg.Path, current, len(migrations))
	case current < len(migrations):
		return fmt.Errorf("%s is at schema version %d, this build's is %d: migrate it first: %w", s.cfg.Path, current, len(migrations), store.ErrNotMigrated)
	}
	return nil
}

// migrations, in order; migrations[i] brings the schema to version i+1.
var migrations = []string{
	`CREATE TABLE sw_events (
		position    INTEGER PRIMARY KEY,
		stream      TEXT NOT NULL,
		version     INTEGER NOT NULL,
		event_id    TEXT NOT NULL,
		event_type  TEXT NOT NULL,
		data        TEXT,
		metadata    TEXT,
		recorded_at INTEGER NOT NULL,
		link        INTEGER NOT NULL DEFAULT 0,
		UNIQUE (stream, version)
	);
	CREATE UNIQUE INDEX sw_events_event_id ON sw_events (event_id) WHERE link = 0;
	CREATE UNIQUE INDEX sw_events_link ON sw_events (stream, event_id) WHERE link = 1;`,
	// 2: relay state (see store.Outbox).
	`CREATE TABLE sw_relay_checkpoints (
		relay      TEXT PRIMARY KEY,
		position   INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	);
	CREATE TABLE sw_relay_quarantine (
		relay      TEXT NOT NULL,
		event_id   TEXT NOT NULL,
		event_type TEXT NOT NULL,
		stream     TEXT NOT NULL,
		version    INTEGER NOT NULL,
		position   INTEGER NOT NULL,
		size       INTEGER NOT NULL,
		reason     TEXT NOT NULL,
		at         INTEGER NOT NULL,
		PRIMARY KEY (relay, event_id)
	);`,
	// 3: the handlers' inbox (see store.Inbox).
	`CREATE TABLE sw_inbox (
		group_name TEXT NOT NULL,
		event_id   TEXT NOT NULL,
		handled_at INTEGER NOT NULL,
		PRIMARY KEY (group_name, event_id)
	);`,
	// 4: correlation chains (see store.Catalog).
	`CREATE INDEX sw_events_correlation ON sw_events (json_extract(metadata, '$.correlation_id')) WHERE link = 0;`,
}

func (s *Store) migrate(ctx context.Context) error {
	if s.cfg.NoMigrate {
		return s.checkSchema(ctx)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // harmless after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS sw_schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM sw_schema_version`).Scan(&current); err != nil {
		return err
	}
	if current > len(migrations) {
		return fmt.Errorf("%s is at schema version %d, newer than this build knows (%d)", s.cfg.Path, current, len(migrations))
	}
	for v := current; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sw_schema_version VALUES (?, ?)`, v+1, time.Now().UTC().Format(time.RFC3339)); err != nil {
			return err
		}
		s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "schema migrated", slog.String("file", s.cfg.Path), slog.Int("version", v+1))
	}
	return tx.Commit()
}

// SchemaVersion is the schema version this package migrates to.
func SchemaVersion() int { return len(migrations) }

// Context returns the store's bounded context.
func (s *Store) Context() string { return s.cfg.Context }

// Shard returns the store's shard.
func (s *Store) Shard() string { return s.cfg.Shard }

// Path returns the store's file.
func (s *Store) Path() string { return s.cfg.Path }

// DB returns the store's writing database handle, for the application's own
// tables. It has one connection: begin transactions with it and pass them
// to WithTx, and do not hold one while appending without it.
func (s *Store) DB() *sql.DB { return s.writer }

// Close closes the store's file.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return errors.Join(s.writer.Close(), s.reader.Close())
}

type txKey struct{ s *Store }

// WithTx returns a context carrying tx (begun on DB()): appends and links to s
// made with it join tx. The caller commits it.
func (s *Store) WithTx(ctx context.Context, tx *sql.Tx) context.Context {
	return backend.WithOpen(context.WithValue(ctx, txKey{s}, tx), s)
}

// Tx returns the transaction of s carried by ctx, if any.
func (s *Store) Tx(ctx context.Context) (*sql.Tx, bool) {
	tx, ok := ctx.Value(txKey{s}).(*sql.Tx)
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
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return s.fail("begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // harmless after Commit
	ctx = s.tel.Transaction(ctx)
	if err := fn(s.WithTx(ctx, tx)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.fail("commit", err)
	}
	s.commits.Notify()
	s.tel.Committed(ctx)
	return nil
}

// savepoint runs fn under a savepoint of tx: an error rolls back what fn
// did, nil releases it.
func (s *Store) savepoint(ctx context.Context, tx *sql.Tx, fn func(ctx context.Context) error) error {
	name := "sw_" + strconv.FormatUint(s.savepoints.Add(1), 10)
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return s.fail("savepoint", err)
	}
	ctx, release := s.tel.Savepoint(ctx)
	done := false
	defer func() {
		if !done { // fn panicked: undo what it did, as for an error
			_, _ = tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO "+name+"; RELEASE "+name)
		}
	}()
	if err := fn(ctx); err != nil {
		done = true
		if _, rerr := tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO "+name+"; RELEASE "+name); rerr != nil {
			return errors.Join(err, s.fail("roll back to savepoint", rerr))
		}
		return err
	}
	done = true
	if _, err := tx.ExecContext(ctx, "RELEASE "+name); err != nil {
		return s.fail("release savepoint", err)
	}
	release()
	return nil
}

func (s *Store) fail(op string, err error) error {
	if errors.Is(err, store.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var se *store.WrongExpectedVersionError
	var de *store.DuplicateEventError
	var ie *store.InvalidError
	if errors.As(err, &se) || errors.As(err, &de) || errors.As(err, &ie) || errors.Is(err, store.ErrEventNotFound) {
		return err
	}
	return &store.Error{Op: op, Store: s.name, Err: err}
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inWriteTx runs fn in the caller's transaction under a savepoint, or in a
// transaction of its own.
func (s *Store) inWriteTx(ctx context.Context, fn func(q querier) error) error {
	if tx, ok := s.Tx(ctx); ok {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT sw_write"); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_, rbErr := tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO SAVEPOINT sw_write; RELEASE SAVEPOINT sw_write")
			return errors.Join(err, rbErr)
		}
		_, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT sw_write")
		return err
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // harmless after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.commits.Notify()
	return nil
}

const insertSQL = `INSERT INTO sw_events (stream, version, event_id, event_type, data, metadata, recorded_at, link)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING position`

// Append appends events; see store.Store. It runs in a producer span
// whose trace context the events carry.
func (s *Store) Append(ctx context.Context, stream string, expected store.ExpectedVersion, events ...store.Event) ([]store.Event, error) {
	return s.tel.Append(ctx, stream, len(events), func(ctx context.Context, now time.Time) ([]store.Event, error) {
		return s.append(ctx, stream, expected, events, now)
	})
}

// append appends events, recorded at now.
func (s *Store) append(ctx context.Context, stream string, expected store.ExpectedVersion, events []store.Event, now time.Time) ([]store.Event, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := backend.CheckWrite(ctx, s, "append to", stream); err != nil {
		return nil, err
	}
	pending, err := backend.Prepare(ctx, stream, expected, events, s.cfg.MaxEventBytes, now)
	if err != nil {
		return nil, err
	}
	var out []store.Event
	err = s.inWriteTx(ctx, func(q querier) error {
		cur, err := version(ctx, q, stream)
		if err != nil {
			return err
		}
		if !expected.Matches(cur) {
			out, err = s.diagnose(ctx, q, stream, expected, pending, cur)
			return err
		}
		out = make([]store.Event, len(pending))
		for i, p := range pending {
			ev := p.Event
			ev.Version = cur + 1 + int64(i)
			err := q.QueryRowContext(ctx, insertSQL, stream, ev.Version, ev.ID.String(), ev.Type,
				string(ev.Data), string(p.Metadata), ev.RecordedAt.UnixMicro(), 0).Scan(&ev.Position.Seq)
			if isUnique(err) {
				out, err = nil, errUnique
				return err
			}
			if err != nil {
				return err
			}
			envelope.Complete(&ev, s.cfg.Context, s.cfg.Shard)
			out[i] = ev
		}
		return nil
	})
	if errors.Is(err, errUnique) {
		// An ID is stored already: the savepoint or transaction was rolled
		// back; look again from outside it.
		err = s.inWriteTx(ctx, func(q querier) error {
			cur, err := version(ctx, q, stream)
			if err != nil {
				return err
			}
			out, err = s.diagnose(ctx, q, stream, expected, pending, cur)
			return err
		})
	}
	if err != nil {
		return nil, s.fail("append to "+strconv.Quote(stream), err)
	}
	return out, nil
}

var errUnique = errors.New("unique violation")

func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == 2067 || c == 1555 // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY
	}
	return false
}

func version(ctx context.Context, q querier, stream string) (int64, error) {
	var v int64
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), -1) FROM sw_events WHERE stream = ?`, stream).Scan(&v)
	return v, err
}

// diagnose explains an append that cannot go ahead; see backend.Diagnose.
func (s *Store) diagnose(ctx context.Context, q querier, stream string, expected store.ExpectedVersion, pending []backend.Pending, current int64) ([]store.Event, error) {
	found, err := findIDs(ctx, q, backend.IDs(pending))
	if err != nil {
		return nil, err
	}
	from, err := backend.Diagnose(stream, expected, pending, found, current)
	if err != nil {
		return nil, err
	}
	return s.read(ctx, q, stream, store.Forward, from, len(pending))
}

func findIDs(ctx context.Context, q querier, ids []uuid.UUID) (map[uuid.UUID]backend.Place, error) {
	args := make([]any, len(ids))
	marks := make([]string, len(ids))
	for i, id := range ids {
		args[i] = id.String()
		marks[i] = "?"
	}
	rows, err := q.QueryContext(ctx, `SELECT event_id, stream, version FROM sw_events WHERE link = 0 AND event_id IN (`+strings.Join(marks, ",")+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := make(map[uuid.UUID]backend.Place, len(ids))
	for rows.Next() {
		var id string
		var p backend.Place
		if err := rows.Scan(&id, &p.Stream, &p.Version); err != nil {
			return nil, err
		}
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, err
		}
		found[u] = p
	}
	return found, rows.Err()
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
	err := s.inWriteTx(ctx, func(q querier) error {
		found, err := findIDs(ctx, q, ids)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, ok := found[id]; !ok {
				return fmt.Errorf("store: link %s into %q: %w", id, stream, store.ErrEventNotFound)
			}
		}
		cur, err := version(ctx, q, stream)
		if err != nil {
			return err
		}
		if !expected.Matches(cur) {
			return &store.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: cur}
		}
		now := time.Now().UTC().UnixMicro()
		for i, id := range ids {
			var typ string
			if err := q.QueryRowContext(ctx, `SELECT event_type FROM sw_events WHERE link = 0 AND event_id = ?`, id.String()).Scan(&typ); err != nil {
				return err
			}
			var pos int64
			err := q.QueryRowContext(ctx, insertSQL, stream, cur+1+int64(i), id.String(), typ, nil, nil, now, 1).Scan(&pos)
			if isUnique(err) {
				return &store.DuplicateEventError{Stream: stream, ID: id.String()}
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.fail("link into "+strconv.Quote(stream), err)
	}
	backend.NoteWrite(ctx, s, "link into "+strconv.Quote(stream))
	return nil
}

// Read reads a stream; see store.Store.
func (s *Store) Read(ctx context.Context, stream string, dir store.Direction, from int64, limit int) ([]store.Event, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := backend.CheckRead(stream, dir, from, limit); err != nil {
		return nil, err
	}
	if touch.On(ctx) {
		backend.NoteRead(ctx, s, "read "+strconv.Quote(stream), false)
	}
	out, err := s.read(ctx, s.readerFor(ctx), stream, dir, from, limit)
	if err != nil {
		return nil, s.fail("read "+strconv.Quote(stream), err)
	}
	return out, nil
}

// readerFor is where a read under ctx looks: the transaction ctx carries,
// or the committed data. A SQLite store has no replica: the Reading role
// reads the same file.
func (s *Store) readerFor(ctx context.Context) querier {
	if tx, ok := s.Tx(ctx); ok {
		return tx
	}
	return s.reader
}

const eventColumns = `o.stream, o.version, o.position, o.event_id, o.event_type, o.data, o.metadata, o.recorded_at`

func (s *Store) read(ctx context.Context, q querier, stream string, dir store.Direction, from int64, limit int) ([]store.Event, error) {
	query := `SELECT e.stream, e.version, e.link, ` + eventColumns + `
		FROM sw_events e JOIN sw_events o ON o.event_id = e.event_id AND o.link = 0
		WHERE e.stream = ? AND `
	if dir == store.Forward {
		query += `e.version >= ? ORDER BY e.version LIMIT ?`
	} else {
		query += `e.version <= ? ORDER BY e.version DESC LIMIT ?`
		if from < 0 {
			from = 1<<63 - 1
		}
	}
	rows, err := q.QueryContext(ctx, query, stream, from, limit)
	if err != nil {
		return nil, err
	}
	return s.scanEvents(rows, true)
}

// ReadAll reads the global log; see store.Store. SQLite commits one
// transaction at a time, so position order is commit order.
func (s *Store) ReadAll(ctx context.Context, after store.Position, limit int) ([]store.Event, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := backend.CheckLimit(limit); err != nil {
		return nil, err
	}
	if after.Commit != 0 {
		return nil, &store.InvalidError{Field: "position", Value: after.String(), Reason: "SQLite positions have commit 0"}
	}
	backend.NoteRead(ctx, s, "read all", false)
	rows, err := s.reader.QueryContext(ctx, `SELECT `+eventColumns+` FROM sw_events o
		WHERE o.link = 0 AND o.position > ? ORDER BY o.position LIMIT ?`, after.Seq, limit)
	if err != nil {
		return nil, s.fail("read all", err)
	}
	out, err := s.scanEvents(rows, false)
	if err != nil {
		return nil, s.fail("read all", err)
	}
	return out, nil
}

func (s *Store) scanEvents(rows *sql.Rows, withLink bool) ([]store.Event, error) {
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var (
			ev                       store.Event
			linkStream, origStream   string
			linkVersion, origVersion int64
			link                     bool
			id                       string
			data, meta               sql.NullString
			recorded                 int64
			dest                     []any
		)
		if withLink {
			dest = append(dest, &linkStream, &linkVersion, &link)
		}
		dest = append(dest, &origStream, &origVersion, &ev.Position.Seq, &id, &ev.Type, &data, &meta, &recorded)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, err
		}
		ev.ID = u
		ev.Data = []byte(data.String)
		ev.RecordedAt = time.UnixMicro(recorded).UTC()
		ev.Metadata = make(correlation.Metadata, 12)
		if meta.Valid && meta.String != "" {
			if err := flatjson.Decode([]byte(meta.String), ev.Metadata); err != nil {
				return nil, fmt.Errorf("event %s: metadata: %w", id, err)
			}
		}
		ev.Stream, ev.Version = origStream, origVersion
		envelope.Complete(&ev, s.cfg.Context, s.cfg.Shard)
		if link {
			backend.LinkedAt(&ev, linkStream, linkVersion)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}
