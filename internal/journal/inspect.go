package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"

	"soldout/internal/stock"
)

// Inspection is what Inspect found.
type Inspection struct {
	Kind string // sqlite or postgres
	// Missing: there is no SQLite file at Path yet.
	Missing bool
	Path    string
	// Schema is PostgreSQL's current schema, where Open finds or creates
	// the journal's tables.
	Schema string
	// Version is the schema version: 0 where soldout never ran.
	Version int
	// OtherTables are tables found where there is no journal (at most
	// five): another application's database.
	OtherTables []string
	// NotWritable says why a write would fail; nil when it would not (or,
	// for a missing journal, was not asked: see Creatable).
	NotWritable error
	// Settings holds what serve recorded (see Setting); empty before the
	// schema had settings.
	Settings map[string]string
}

// journalTables are the tables soldout writes, the migrations' own included.
var journalTables = []string{"schema_migrations", "events", "event_artworks", "sales", "reservations", "settings"}

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
		cfg, err := postgresConfig(dsn)
		if err != nil {
			return ins, err
		}
		db = stdlib.OpenDB(*cfg)
	}
	defer db.Close()
	err = ins.read(ctx, db)
	if kind == kindSQLite {
		err = explainSQLite(err, ins.Path)
	} else {
		err = explainPostgres(err)
	}
	if err != nil {
		return ins, fail(err, "inspect %s", kind)
	}
	return ins, nil
}

// Creatable says why this process could not create an SQLite journal at
// path: its directory is missing, or refuses a new file (tried with a file
// removed at once). For soldout check, which may run as another user than
// serve.
func Creatable(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".soldout-check-*")
	if err != nil {
		return fmt.Errorf("soldout serve could not create the journal in %s: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

func (ins *Inspection) read(ctx context.Context, db *sql.DB) error {
	if ins.Kind == kindPostgres {
		var schema sql.NullString
		if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return err
		}
		if !schema.Valid {
			// PostgreSQL skips the schemas the user may not use, as if
			// they did not exist.
			var unusable sql.NullString
			if err := db.QueryRowContext(ctx, `SELECT string_agg(nspname, ', ') FROM pg_namespace
				WHERE NOT has_schema_privilege(oid, 'USAGE') AND quote_ident(nspname) = ANY(string_to_array(replace(current_setting('search_path'), ' ', ''), ','))`).Scan(&unusable); err != nil {
				return err
			}
			if unusable.Valid {
				return stock.Errorf(stock.Misconfigured, "the DATABASE_URL user lacks USAGE on schema %s, which its search_path names: GRANT USAGE ON SCHEMA %s TO that user (and CREATE, for the migrations)", unusable.String, unusable.String)
			}
			return stock.Errorf(stock.Misconfigured, "DATABASE_URL's search_path names no schema that exists: create the schema, or fix search_path")
		}
		ins.Schema = schema.String
	}
	// Where Open looks: the file, or the current schema only.
	tables := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if ins.Kind == kindPostgres {
		tables = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`
	}
	rows, err := db.QueryContext(ctx, tables)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		names = append(names, name)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	has := func(table string) bool { return slices.Contains(names, table) }
	if has("schema_migrations") {
		if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&ins.Version); err != nil {
			return err
		}
	} else {
		ins.OtherTables = names[:min(len(names), 5)]
	}
	if has("settings") {
		if ins.Settings, err = readSettings(ctx, db); err != nil {
			return err
		}
	}
	ins.NotWritable = ins.writable(ctx, db, has)
	return nil
}

func readSettings(ctx context.Context, db *sql.DB) (map[string]string, error) {
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

// alterTable finds the tables a migration alters.
var alterTable = regexp.MustCompile(`(?i)\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(\w+)`)

// altered lists the tables that the migrations the journal lacks alter.
func (ins *Inspection) altered() []string {
	var tables []string
	for _, m := range migrations {
		if m.version <= ins.Version {
			continue
		}
		for _, match := range alterTable.FindAllStringSubmatch(m.sql, -1) {
			if !slices.Contains(tables, match[1]) {
				tables = append(tables, match[1])
			}
		}
	}
	return tables
}

// writable asks for what a write needs, keeping nothing: on SQLite, the
// write lock and a write (user_version set to itself, in a transaction
// rolled back), since a read-only file grants the lock; on PostgreSQL, a
// database that takes writes (not a standby), then the privileges Open and
// the pipeline use, one by one: CREATE on the schema (the migrations'
// CREATE TABLE IF NOT EXISTS runs at every start of serve), ownership of
// each table a pending migration alters, and SELECT, INSERT and UPDATE on
// each journal table there is.
func (ins *Inspection) writable(ctx context.Context, db *sql.DB, has func(string) bool) error {
	if ins.Kind == kindSQLite {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return explainSQLite(err, ins.Path)
		}
		defer tx.Rollback()
		var v int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			return explainSQLite(err, ins.Path)
		}
		_, err = tx.ExecContext(ctx, `PRAGMA user_version = `+strconv.Itoa(v))
		return explainSQLite(err, ins.Path)
	}
	var missing []string
	check := func(q, what string, args ...any) error {
		var ok bool
		if err := db.QueryRowContext(ctx, q, args...).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			missing = append(missing, what)
		}
		return nil
	}
	var readOnly bool
	if err := db.QueryRowContext(ctx, `SELECT current_setting('transaction_read_only') = 'on' OR pg_is_in_recovery()`).Scan(&readOnly); err != nil {
		return err
	}
	if readOnly {
		return errors.New("the database only takes reads (a standby, or default_transaction_read_only): point DATABASE_URL at the primary")
	}
	if err := check(`SELECT has_schema_privilege(current_schema(), 'CREATE')`, "CREATE on schema "+ins.Schema); err != nil {
		return err
	}
	// A migration still to run that alters a table needs to own it.
	for _, table := range ins.altered() {
		if !has(table) {
			continue
		}
		if err := check(`SELECT pg_has_role((SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1), 'USAGE')`,
			"ownership of "+table+" (a migration alters it: connect as its owner, or ALTER TABLE "+table+" OWNER TO this user)", table); err != nil {
			return err
		}
	}
	for _, table := range journalTables {
		if !has(table) {
			continue
		}
		for _, privilege := range []string{"SELECT", "INSERT", "UPDATE"} {
			if err := check(`SELECT has_table_privilege(quote_ident(current_schema()) || '.' || quote_ident($1), $2)`, privilege+" on "+table, table, privilege); err != nil {
				return err
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the DATABASE_URL user lacks %s: grant them", strings.Join(missing, ", "))
	}
	return nil
}
