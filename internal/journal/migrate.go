package journal

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"soldout/internal/stock"
)

// Migrations are numbered files, 0001_name.sql onwards, applied in order.
// Never edit one that has shipped; add the next.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

var migrations = mustLoadMigrations(migrationFiles)

// mustLoadMigrations panics on a misnamed file: the files are compiled in,
// so that is a build mistake that any test run reveals.
func mustLoadMigrations(fsys fs.FS) []migration {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	ms := make([]migration, 0, len(names))
	for i, path := range names { // Glob sorts, and the numbers are zero-padded
		name := strings.TrimPrefix(path, "migrations/")
		prefix, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if err != nil || v != i+1 {
			panic(fmt.Sprintf("journal: migration %s: want number %04d", name, i+1))
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	return ms
}

// LatestSchemaVersion is the version this build migrates to: the number of
// embedded migrations.
func LatestSchemaVersion() int { return len(migrations) }

// SchemaVersion reports the newest migration applied to the database.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := d.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fail(err, "read schema version")
	}
	return v, nil
}

// migrationLock is the PostgreSQL advisory lock key that serialises
// migrations: "soldout" in ASCII.
const migrationLock = 0x736f6c646f7574

// notAnotherApplicationsFile refuses an SQLite file that holds tables but
// no journal: DATABASE_URL names another application's database, to which
// the migrations would add soldout's tables. (A PostgreSQL schema may well
// be shared; soldout check warns of one.)
func notAnotherApplicationsFile(ctx context.Context, tx *sql.Tx) error {
	var migrated bool
	var others []string
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		migrated = migrated || name == "schema_migrations"
		others = append(others, name)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if migrated || len(others) == 0 {
		return nil
	}
	return stock.Errorf(stock.Misconfigured, "journal: the file holds another application's tables (%s), not a journal: point DATABASE_URL at soldout's journal, or at a new file", strings.Join(others[:min(len(others), 5)], ", "))
}

// migrationLockTimeout bounds how long a migration on PostgreSQL waits for
// a table's lock. A var for tests.
var migrationLockTimeout = 5 * time.Second

// pgLockNotAvailable is the SQLSTATE of a lock_timeout.
const pgLockNotAvailable = "55P03"

// migrate applies the migrations the journal lacks, all in one
// transaction: a new journal costs one commit (one fsync) instead of one per
// migration, and a failure leaves none of them applied. Replicas that start
// together take turns: on SQLite the transaction begins IMMEDIATE (see
// sqliteWriterParams), so it holds the write lock before reading the
// version; on PostgreSQL an advisory lock, released at commit, plays that
// part.
func (d *DB) migrate(ctx context.Context) error {
	var opts *sql.TxOptions
	if d.kind == kindPostgres {
		opts = pgTx
	}
	tx, err := d.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d.kind == kindPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		// An ALTER waits for every open transaction on its table, and the
		// running replicas' statements queue behind it: better give up and
		// say who is in the way than stall their webhooks.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, migrationLockTimeout.Milliseconds())); err != nil {
			return err
		}
	} else if err := notAnotherApplicationsFile(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	if current > len(migrations) {
		// Its tables may have changed in ways this build does not know.
		return stock.Errorf(stock.Misconfigured, "journal: schema version %d is newer than this soldout's %d: a newer soldout migrated it; run that version (or restore the backup taken before the upgrade)", current, len(migrations))
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == pgLockNotAvailable {
				return stock.Wrap(stock.Unavailable, err, "journal: migration %s waited %v for a table that another session's open transaction holds (a long query, a psql session left in a transaction?); nothing was changed: find it with SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database(), end it, and start soldout serve again",
					m.name, migrationLockTimeout)
			}
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, d.now().UnixMilli()); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return tx.Commit()
}
