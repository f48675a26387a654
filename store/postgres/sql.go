package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/flatjson"
	"github.com/switchyard-go/switchyard/store"
)

// migrations, in order; migrations[i] brings the schema to version i+1.
// {{schema}} stands for the store's quoted schema. Never edit one that has shipped: add
// another.
var migrations = []string{
	// 1: the event log. One row per stream entry: an event where it was
	// appended (link = false), or a link to it (link = true, no data).
	// commit_key orders the global log (see store.Position): the appending
	// transaction's id, raised to the previous entry's key of the same
	// stream, so one stream's events never sort out of version order.
	`CREATE TABLE {{schema}}.sw_events (
		position    bigint GENERATED ALWAYS AS IDENTITY,
		commit_key  xid8 NOT NULL,
		stream      text NOT NULL,
		version     bigint NOT NULL,
		event_id    uuid NOT NULL,
		event_type  text NOT NULL,
		data        json,
		metadata    json,
		recorded_at timestamptz NOT NULL,
		link        boolean NOT NULL DEFAULT false,
		CONSTRAINT sw_events_pkey PRIMARY KEY (stream, version)
	);
	CREATE UNIQUE INDEX sw_events_event_id ON {{schema}}.sw_events (event_id) WHERE NOT link;
	CREATE UNIQUE INDEX sw_events_link ON {{schema}}.sw_events (stream, event_id) WHERE link;
	CREATE INDEX sw_events_log ON {{schema}}.sw_events (commit_key, position) WHERE NOT link;`,
	// 2: relay state: how far each relay has delivered the log, and the
	// events it set aside.
	`CREATE TABLE {{schema}}.sw_relay_checkpoints (
		relay      text PRIMARY KEY,
		commit_key bigint NOT NULL,
		position   bigint NOT NULL,
		updated_at timestamptz NOT NULL
	);
	CREATE TABLE {{schema}}.sw_relay_quarantine (
		relay      text NOT NULL,
		event_id   uuid NOT NULL,
		event_type text NOT NULL,
		stream     text NOT NULL,
		version    bigint NOT NULL,
		commit_key bigint NOT NULL,
		position   bigint NOT NULL,
		size       int NOT NULL,
		reason     text NOT NULL,
		at         timestamptz NOT NULL,
		PRIMARY KEY (relay, event_id)
	);`,
	// 3: the handlers' inbox: which events each consumer group has handled.
	`CREATE TABLE {{schema}}.sw_inbox (
		group_name text NOT NULL,
		event_id   uuid NOT NULL,
		handled_at timestamptz NOT NULL,
		PRIMARY KEY (group_name, event_id)
	);`,
	// 4: for the browser (store.Catalog). Stream names in byte order, so
	// names that share a prefix sort together whatever the database's
	// collation (and compare as fast as bytes do): this rebuilds the
	// primary key. The events of one correlation_id through an index; on a
	// big store an operator may build it first, without blocking appends,
	// with CREATE INDEX CONCURRENTLY of the same name and definition.
	`ALTER TABLE {{schema}}.sw_events ALTER COLUMN stream SET DATA TYPE text COLLATE "C";
	CREATE INDEX IF NOT EXISTS sw_events_correlation ON {{schema}}.sw_events ((metadata->>'correlation_id')) WHERE NOT link;`,
}

// SchemaVersion is the schema version this package migrates to.
func SchemaVersion() int { return len(migrations) }

// migrate brings the schema up to date, once, however many processes start
// together (an advisory lock serialises them).
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, logger *slog.Logger) error {
	ident := pgx.Identifier{schema}.Sanitize()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('switchyard.migrate.' || $1, 0))`, schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident+`;
			CREATE TABLE IF NOT EXISTS `+ident+`.sw_schema_version (
				version int PRIMARY KEY,
				applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+ident+`.sw_schema_version`).Scan(&current); err != nil {
			return err
		}
		if current > len(migrations) {
			return fmt.Errorf("schema %s is at version %d, newer than this build knows (%d)", schema, current, len(migrations))
		}
		for v := current; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, strings.ReplaceAll(migrations[v], "{{schema}}", ident)); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+ident+`.sw_schema_version (version) VALUES ($1)`, v+1); err != nil {
				return err
			}
			logger.LogAttrs(ctx, slog.LevelInfo, "schema migrated", slog.String("schema", schema), slog.Int("version", v+1))
		}
		return nil
	})
}

// checkSchema checks, without changing anything, that the schema is at
// the version this build migrates to: store.ErrNotMigrated when it is
// missing or older.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	var current int
	err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+pgx.Identifier{schema}.Sanitize()+`.sw_schema_version`).Scan(&current)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") { // no such table, no such schema
		err, current = nil, 0
	}
	switch {
	case err != nil:
		return err
	case current > len(migrations):
		return fmt.Errorf("schema %s is at version %d, newer than this build knows (%d)", schema, current, len(migrations))
	case current < len(migrations):
		return fmt.Errorf("schema %s is at version %d, this build's is %d: migrate it first: %w", schema, current, len(migrations), store.ErrNotMigrated)
	}
	return nil
}

type statements struct {
	append, appendOne, appendOneInTx, appendHeld, link, findIDs, version, readForward, readBackward, readAll, heldBack string
}

// The columns every read returns, for scanEvents: the original event.
const eventColumns = `o.stream, o.version, (o.commit_key::text)::bigint, o.position, o.event_id, o.event_type, o.data, o.metadata, o.recorded_at`

func newStatements(schema string) statements {
	t := pgx.Identifier{schema}.Sanitize() + ".sw_events"
	// head and cur: the stream's last entry, and the expected-version check
	// plus commit key computed from it. $1 stream, $2 expected.
	head := `WITH head AS (
		SELECT version, commit_key FROM ` + t + ` WHERE stream = $1 ORDER BY version DESC LIMIT 1
	), cur AS (
		SELECT coalesce((SELECT version FROM head), -1) AS v,
		       greatest(pg_current_xact_id(), (SELECT commit_key FROM head)) AS ck
	) `
	expect := ` CASE $2::bigint WHEN -2 THEN true WHEN -1 THEN cur.v = -1 WHEN -4 THEN cur.v >= 0 ELSE cur.v = $2::bigint END`
	insertOne := head + `INSERT INTO ` + t + ` (commit_key, stream, version, event_id, event_type, data, metadata, recorded_at)
			SELECT cur.ck, $1, cur.v + 1, $4::uuid, $5::text, $6::text::json, $7::text::json, $3
			FROM cur
			WHERE` + expect
	const returning = ` RETURNING version, (commit_key::text)::bigint, position`
	readAll, heldBack := logReads(t)
	streamRead := `SELECT e.stream, e.version, e.link, ` + eventColumns + `
		FROM ` + t + ` e JOIN ` + t + ` o ON o.event_id = e.event_id AND NOT o.link
		WHERE e.stream = $1 AND `
	return statements{
		append: head + `INSERT INTO ` + t + ` (commit_key, stream, version, event_id, event_type, data, metadata, recorded_at)
			SELECT cur.ck, $1, cur.v + e.n, e.id, e.typ, e.data::json, e.meta::json, $3
			FROM cur, unnest($4::uuid[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS e(id, typ, data, meta, n)
			WHERE` + expect + `
			ORDER BY e.n` + returning,
		// The same for one event, with scalar parameters: encoding arrays
		// costs the client more than the whole statement costs the server.
		appendOne: insertOne + returning,
		// appendOne inside a transaction: a conflict on the version or the
		// event id inserts nothing instead of failing the statement, which
		// would leave the transaction unusable (see appendInTx).
		appendOneInTx: insertOne + ` ON CONFLICT DO NOTHING` + returning,
		appendHeld:    heldInsert(t),
		// $3 recorded_at, $4 ids, $5 len(ids): all events must exist, or nothing is linked.
		link: head + `, ins AS (
			INSERT INTO ` + t + ` (commit_key, stream, version, event_id, event_type, recorded_at, link)
			SELECT cur.ck, $1, cur.v + e.n, o.event_id, o.event_type, $3, true
			FROM cur, unnest($4::uuid[]) WITH ORDINALITY AS e(id, n)
			JOIN ` + t + ` o ON o.event_id = e.id AND NOT o.link
			WHERE` + expect + `
			  AND (SELECT count(*) FROM ` + t + ` x WHERE x.event_id = ANY($4::uuid[]) AND NOT x.link) = $5
			ORDER BY e.n
			RETURNING 1
		) SELECT count(*) FROM ins`,
		findIDs:      `SELECT event_id, stream, version FROM ` + t + ` WHERE event_id = ANY($1::uuid[]) AND NOT link`,
		version:      `SELECT coalesce(max(version), -1) FROM ` + t + ` WHERE stream = $1`,
		readForward:  streamRead + `e.version >= $2 ORDER BY e.version LIMIT $3`,
		readBackward: streamRead + `e.version <= $2 ORDER BY e.version DESC LIMIT $3`,
		readAll:      readAll,
		heldBack:     heldBack,
	}
}

// heldInsert writes the appends a transaction held (see flush) to the
// log t, all or none: event by event $1 its stream, $2 its append's
// expected version for the first of it, -3 (follows) for the others, $3
// id, $4 type, $5 data, $6 metadata, $7 recorded_at. r numbers each
// stream's events in order, so the expectation of the r-th is checked
// against the stream's head plus the r-1 before it.
func heldInsert(t string) string {
	return `WITH e AS (
				SELECT u.*, row_number() OVER (PARTITION BY u.stream ORDER BY u.n) AS r
				FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
					WITH ORDINALITY AS u(stream, expected, id, typ, data, meta, at, n)
			), h AS (
				SELECT s.stream, coalesce(l.version, -1) AS v, greatest(pg_current_xact_id(), l.commit_key) AS ck
				FROM (SELECT DISTINCT stream FROM e) s
				LEFT JOIN LATERAL (SELECT version, commit_key FROM ` + t + ` x WHERE x.stream = s.stream ORDER BY version DESC LIMIT 1) l ON true
			), x AS (
				SELECT e.*, h.v + e.r - 1 AS cur, h.ck FROM e JOIN h USING (stream)
			)
			INSERT INTO ` + t + ` (commit_key, stream, version, event_id, event_type, data, metadata, recorded_at)
			SELECT x.ck, x.stream, x.cur + 1, x.id, x.typ, x.data::json, x.meta::json, x.at
			FROM x
			WHERE (SELECT bool_and(CASE x.expected WHEN -3 THEN true WHEN -2 THEN true WHEN -1 THEN x.cur = -1
				WHEN -4 THEN x.cur >= 0 ELSE x.cur = x.expected END) FROM x)
			ORDER BY x.n`
}

// logReads are the reads of the global log t in commit order: readAll,
// the entries after $1, $2 (up to $3) below the watermark, and heldBack,
// the first committed entry after $1, $2 at or above it and the
// transaction the watermark is, the one holding readAll back.
//
// The watermark w is the oldest transaction still running that could
// write here, or the snapshot's xmax when none is. Anything that commits
// later has a commit_key at or above it, so a reader never skips an event
// (see store.Position). Transactions of another database cannot write
// here and do not hold the watermark back: heldBack asks pg_stat_activity
// which they are; readAll is given them ($4, see foreignXids), as last
// looked up, because asking pg_stat_activity costs more than the read
// when many sessions are open. A transaction of another database that
// began since holds readAll back until it ends or the store looks again
// (see foreign); a transaction once of another database always is, so a
// list however old never lets readAll past one of its own.
func logReads(t string) (readAll, heldBack string) {
	snap := `WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
			`
	// mark is the watermark, the running transactions x that running
	// holds true of, the ones that could write here.
	mark := func(running string) string {
		return `mark AS (
				SELECT coalesce(
					(SELECT min(x) FROM snap, pg_snapshot_xip(snap.s) AS x WHERE ` + running + `),
					(SELECT pg_snapshot_xmax(s) FROM snap)) AS w
			)`
	}
	readAll = snap + mark(`x <> ALL (coalesce($4::text[], '{}')::xid8[])`) + `
			SELECT ` + eventColumns + ` FROM ` + t + ` o, mark
			WHERE NOT o.link
			  AND (o.commit_key, o.position) > ($1::text::xid8, $2::bigint)
			  AND o.commit_key < mark.w
			ORDER BY o.commit_key, o.position
			LIMIT $3`
	heldBack = snap + `other AS MATERIALIZED (` + otherDatabases + `),
			` + mark(`x::xid NOT IN (SELECT backend_xid FROM other)`) + `, first AS (
				SELECT o.recorded_at FROM ` + t + ` o, mark
				WHERE NOT o.link
				  AND (o.commit_key, o.position) > ($1::text::xid8, $2::bigint)
				  AND o.commit_key >= mark.w
				ORDER BY o.commit_key, o.position
				LIMIT 1
			)
			SELECT first.recorded_at, mark.w::text::bigint, coalesce(a.pid, 0), coalesce(p.gid, ''), coalesce(p.database, ''), coalesce(a.application_name, ''),
				coalesce(a.state, ''), coalesce(a.xact_start, p.prepared), coalesce(left(a.query, 200), '')
			FROM first, mark
			LEFT JOIN pg_stat_activity a ON a.backend_xid = mark.w::xid
			LEFT JOIN pg_prepared_xacts p ON p.transaction = mark.w::xid`
	return readAll, heldBack
}

// otherDatabases selects the transaction ids pg_stat_activity shows
// running in other databases than this one.
const otherDatabases = `SELECT backend_xid FROM pg_stat_activity
				WHERE backend_xid IS NOT NULL
				  AND datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())`

// foreignXids lists the transactions running now, as xid8 text, that
// pg_stat_activity shows in other databases: readAll's $4. Keeping only
// the ids of a snapshot taken before pg_stat_activity is read is what
// makes the list safe: a session slot of another database that one of
// this database took over meanwhile may pair that database with an id of
// ours, but an id given out after the snapshot is not in it.
const foreignXids = `SELECT coalesce(array_agg(x::text), '{}') FROM pg_snapshot_xip(pg_current_snapshot()) AS x
			WHERE x::xid IN (` + otherDatabases + `)`

func decodeMetadata(b []byte, ev *store.Event) error {
	ev.Metadata = make(correlation.Metadata, 12)
	if len(b) == 0 {
		return nil
	}
	if err := flatjson.Decode(b, ev.Metadata); err != nil {
		return fmt.Errorf("event %s: metadata: %w", ev.ID, err)
	}
	return nil
}
