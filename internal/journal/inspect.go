package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Inspection is what Inspect found.
type Inspection struct {
	Kind string // sqlite or postgres
	// Missing: there is no SQLite file at Path yet.
	Missing bool
	Path    string
	// Version is the schema version: 0 for a database soldout never ran on.
	Version int
	// NotWritable says why a write would fail; nil when it would not.
	NotWritable error
	// Settings holds what serve recorded (see Setting); empty before the
	// schema had settings.
	Settings map[string]string
}

// Inspect reads the journal at url without changing it, for soldout check:
// Open would create a journal at a mistyped path, and migrate the live
// journal that a new version is being checked against before an upgrade,
// after which the running version could not use it.
func Inspect(ctx context.Context, url string) (Inspection, error) {
	kind, dsn, err := parseURL(url)
	if err != nil {
		return Inspection{}, err
	}
	ins := Inspection{Kind: kind}
	var db *sql.DB
	if kind == kindSQLite {
		ins.Path = sqlitePath(dsn)
		if _, err := os.Stat(ins.Path); errors.Is(err, fs.ErrNotExist) {
			ins.Missing = true
			return ins, nil
		}
		// No journal_mode or page_size: they would change a file that is
		// not soldout's yet.
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		if db, err = openSQLitePool(dsn + sep + "_txlock=immediate&_busy_timeout=" + busyTimeout); err != nil {
			return ins, err
		}
		db.SetMaxOpenConns(1)
	} else {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return ins, fail(err, "DATABASE_URL")
		}
		if cfg.ConnectTimeout == 0 {
			cfg.ConnectTimeout = postgresConnectTimeout
		}
		db = stdlib.OpenDB(*cfg)
	}
	defer db.Close()
	err = ins.read(ctx, db)
	if kind == kindSQLite {
		err = explainSQLite(err, ins.Path)
	}
	if err != nil {
		return ins, fail(err, "inspect %s", kind)
	}
	return ins, nil
}

func (ins *Inspection) read(ctx context.Context, db *sql.DB) error {
	has := func(table string) (bool, error) {
		q := `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = $1`
		if ins.Kind == kindPostgres {
			q = `SELECT to_regclass($1) IS NOT NULL`
		}
		var ok bool
		return ok, db.QueryRowContext(ctx, q, table).Scan(&ok)
	}
	migrated, err := has("schema_migrations")
	if err != nil {
		return err
	}
	if migrated {
		if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&ins.Version); err != nil {
			return err
		}
	}
	if ins.Settings, err = readSettings(ctx, db, has); err != nil {
		return err
	}
	ins.NotWritable = ins.writable(ctx, db, migrated)
	return nil
}

func readSettings(ctx context.Context, db *sql.DB, has func(string) (bool, error)) (map[string]string, error) {
	if ok, err := has("settings"); !ok || err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT name, value FROM settings`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	settings := map[string]string{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, err
		}
		settings[name] = value
	}
	return settings, rows.Err()
}

// writable asks for what a write needs, writing nothing: SQLite's write
// lock (a transaction begun IMMEDIATE, then rolled back), PostgreSQL's
// privileges on the tables, or to create them.
func (ins *Inspection) writable(ctx context.Context, db *sql.DB, migrated bool) error {
	if ins.Kind == kindSQLite {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return explainSQLite(err, ins.Path)
		}
		return tx.Rollback()
	}
	q := `SELECT has_schema_privilege(current_schema(), 'CREATE')`
	if migrated {
		q = `SELECT has_table_privilege('events', 'INSERT, UPDATE') AND has_table_privilege('sales', 'INSERT, UPDATE')`
	}
	var ok bool
	if err := db.QueryRowContext(ctx, q).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the DATABASE_URL user may not write the journal's tables (or, for a new journal, create them in its schema): grant it INSERT and UPDATE on them (or CREATE on the schema)")
	}
	return nil
}
