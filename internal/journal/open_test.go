package journal

import (
	"context"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"soldout/internal/journal/pgtest"
	"soldout/internal/stock"
)

func TestOpenForms(t *testing.T) {
	dir := t.TempDir()
	for _, url := range []string{
		filepath.Join(dir, "plain.db"),
		"sqlite:" + filepath.Join(dir, "scheme.db"),
		"sqlite://" + filepath.Join(dir, "slashes.db"),
		"file:" + filepath.Join(dir, "uri.db") + "?cache=private",
		filepath.Join(dir, "odd?name#1.db"),
	} {
		d := open(t, url)
		if d.Kind() != kindSQLite {
			t.Errorf("%s: kind %q", url, d.Kind())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "odd?name#1.db")); err != nil {
		t.Errorf("a path with URI characters: %v", err)
	}
	t.Run("postgres", func(t *testing.T) {
		if d := open(t, postgresURL(t)); d.Kind() != kindPostgres {
			t.Errorf("postgres: kind %q", d.Kind())
		}
	})
}

func TestOpenRejects(t *testing.T) {
	for _, url := range []string{
		"",
		"mysql://root:hunter2@db/soldout",
		"sqlite:",
		":memory:",
		"sqlite::memory:",
		"file::memory:?cache=shared",
		"file:x.db?mode=memory",
	} {
		_, err := Open(context.Background(), url)
		if err == nil {
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if !strings.Contains(err.Error(), "DATABASE_URL") || stock.ErrorCode(err) != stock.Misconfigured {
			t.Errorf("Open(%q): %v; want a misconfigured error naming DATABASE_URL", url, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) leaks the password: %v", url, err)
		}
	}
	_, err := Open(context.Background(), "mysql://x")
	if !strings.Contains(err.Error(), "sqlite:<path>") || !strings.Contains(err.Error(), "postgres://") {
		t.Errorf("the error does not list the accepted forms: %v", err)
	}
}

// The writer connection must run with the durability and locking settings
// the package comment promises.
func TestSQLiteSettings(t *testing.T) {
	d := open(t, sqliteURL(t))
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": busyTimeout, "page_size": "2048"}
	err := d.write(context.Background(), func(ctx context.Context) error {
		for pragma, v := range want {
			var got string
			if err := d.w.conn.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				return err
			}
			if got != v {
				t.Errorf("writer: PRAGMA %s = %s, want %s", pragma, got, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var queryOnly string
	if err := d.read.QueryRow("PRAGMA query_only").Scan(&queryOnly); err != nil || queryOnly != "1" {
		t.Errorf("reader: query_only = %s, %v", queryOnly, err)
	}
}

func TestMigrationNames(t *testing.T) {
	if LatestSchemaVersion() != len(migrations) || migrations[0].version != 1 {
		t.Fatalf("embedded migrations: %+v", migrations)
	}
	for _, files := range []fstest.MapFS{
		{"migrations/0002_gap.sql": {}},
		{"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}},
		{"migrations/init.sql": {}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%v: loaded without complaint", files)
				}
			}()
			mustLoadMigrations(files)
		}()
	}
}

// A journal created with SQLite's default 4 KiB pages (by an earlier
// soldout) opens as it is: the page size is fixed when a file is created.
func TestOpenKeepsAnExistingPageSize(t *testing.T) {
	url := sqliteURL(t)
	_, dsn, err := parseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	old, err := openSQLitePool(dsn + "?_pragma=page_size(4096)&_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	// A journal begun by a version that made 4 KiB pages: its first table.
	if _, err := old.Exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	old.Close()
	d := open(t, url)
	var size int
	if err := d.read.QueryRow("PRAGMA page_size").Scan(&size); err != nil || size != 4096 {
		t.Errorf("page_size %d, %v; want the file's own 4096", size, err)
	}
	record(t, d, event("evt_old", stock.CheckoutCompleted, "cs_old", "art_old"), t0)
}

// A new journal's migrations commit together or not at all: one that fails
// leaves none applied, so that the next start, with the mistake fixed,
// begins from nothing rather than from a half-built schema.
func TestMigrationsAllOrNothing(t *testing.T) {
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = append(slices.Clone(saved), migration{version: len(saved) + 1, name: "9999_broken.sql", sql: `CREATE TABLE nonsense (`})
	path := filepath.Join(t.TempDir(), "j.db")
	if _, err := Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "9999_broken.sql") {
		t.Fatalf("Open with a broken migration: %v", err)
	}
	raw, err := openSQLitePool("file:" + path)
	if err != nil {
		t.Fatal(err)
	}
	var tables int
	err = raw.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'sales', 'settings')`).Scan(&tables)
	raw.Close()
	if err != nil || tables != 0 {
		t.Fatalf("after a failed migration, %d of the earlier migrations' tables exist (%v): half a schema", tables, err)
	}
	migrations = saved
	d := open(t, path)
	if v, err := d.SchemaVersion(context.Background()); err != nil || v != len(saved) {
		t.Fatalf("after the fix: schema version %d, %v; want %d", v, err, len(saved))
	}
	var n int
	if err := d.read.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(saved) {
		t.Errorf("%d migrations recorded, %v; want %d, each once", n, err, len(saved))
	}
}

// A journal that a newer soldout migrated is refused: this build does not
// know what its tables have become.
func TestOpenRefusesANewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	open(t, path).Close()
	rawExec(t, path, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, '9999_future.sql', 0)`, len(migrations)+1)
	_, err := Open(context.Background(), path)
	if stock.ErrorCode(err) != stock.Misconfigured || !strings.Contains(err.Error(), "newer than this soldout's") {
		t.Fatalf("Open of a journal at version %d: %v, want Misconfigured naming the newer schema", len(migrations)+1, err)
	}
}

// A PostgreSQL server that accepts connections and never answers fails the
// open within the connect timeout, naming the address, instead of hanging.
func TestOpenPostgresThatNeverAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	saved := postgresConnectTimeout
	postgresConnectTimeout = 200 * time.Millisecond
	t.Cleanup(func() { postgresConnectTimeout = saved })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = Open(ctx, "postgres://soldout@"+ln.Addr().String()+"/test?sslmode=disable")
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Open against a silent server: %v (context: %v), want a prompt error naming %s", err, ctx.Err(), ln.Addr())
	}
}

// SQLite's refusals to open a file name the file and what to do.
func TestOpenExplainsSQLiteRefusals(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a journal\n", 512)), 0o644); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, path, hint string }{
		{"not a database", garbage, "not an SQLite database"},
		{"a directory", folder, "the path is a file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(context.Background(), tt.path)
			if stock.ErrorCode(err) != stock.Misconfigured || !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.hint) {
				t.Fatalf("Open(%s): %v, want Misconfigured naming the file and %q", tt.path, err, tt.hint)
			}
		})
	}
}

// An SQLite file of another application is refused, not given a journal
// beside its tables.
func TestOpenRefusesAnotherApplicationsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop.db")
	rawExec(t, path, `CREATE TABLE customers (id INTEGER PRIMARY KEY)`)
	if _, err := Open(context.Background(), path); stock.ErrorCode(err) != stock.Misconfigured || !strings.Contains(err.Error(), "customers") {
		t.Fatalf("Open of another application's file: %v, want Misconfigured naming its tables", err)
	}
	if ins, err := Inspect(context.Background(), path); err != nil || !slices.Equal(ins.OtherTables, []string{"customers"}) {
		t.Errorf("after the refusal: %+v, %v; want the file as it was", ins, err)
	}
}

// A database whose default isolation is stricter than READ COMMITTED (set by
// a DBA with ALTER DATABASE, or in DATABASE_URL) still lets replicas that
// start together migrate it once: the journal's sessions run at READ
// COMMITTED, which its statements are written for.
func TestPostgresStricterDefaultIsolation(t *testing.T) {
	for _, iso := range []string{"repeatable%20read", "serializable"} {
		t.Run(iso, func(t *testing.T) {
			testConcurrentOpen(t, postgresURL(t)+"&default_transaction_isolation="+iso)
		})
	}
}

// A migration that must wait for a table another session holds (an open
// transaction reading sales) gives up after migrationLockTimeout, changes
// nothing and says how to find the blocker, instead of queueing every
// running replica's statements behind its lock.
func TestPostgresMigrationGivesUpOnALock(t *testing.T) {
	url := postgresURL(t)
	d := open(t, url)
	// Back to schema version 2: 0003 alters sales, 0004 creates settings.
	if _, err := d.db.Exec(`ALTER TABLE sales DROP COLUMN waits_for; DROP TABLE settings; DELETE FROM schema_migrations WHERE version >= 3`); err != nil {
		t.Fatal(err)
	}
	reader, err := d.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback()
	if _, err := reader.Exec(`SELECT count(*) FROM sales`); err != nil {
		t.Fatal(err)
	}
	defer func(was time.Duration) { migrationLockTimeout = was }(migrationLockTimeout)
	migrationLockTimeout = 200 * time.Millisecond
	_, err = Open(context.Background(), url)
	if stock.ErrorCode(err) != stock.Unavailable || !strings.Contains(err.Error(), "pg_stat_activity") {
		t.Fatalf("Open while sales is held: %v, want Unavailable naming pg_stat_activity", err)
	}
	if v, err := d.SchemaVersion(context.Background()); err != nil || v != 2 {
		t.Errorf("schema version %d, %v after the refused migration, want 2 left as it was", v, err)
	}
}

// PostgreSQL's key=value connection string is PostgreSQL, not a file name:
// taken for one, every replica would get a journal of its own named after
// the password. An unreachable server is refused without the password.
func TestKeywordConnectionString(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, dsn := range []string{
		"host=127.0.0.1 port=1 user=shop password=hunter2 dbname=soldout connect_timeout=1",
		"  dbname=soldout host=127.0.0.1 port=1 password=hunter2",
	} {
		if kind, _, err := parseURL(dsn); kind != kindPostgres || err != nil {
			t.Errorf("parseURL(%q) = %q, %v; want postgres", dsn, kind, err)
		}
		_, err := Open(context.Background(), dsn)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q): %v; want a refusal without the password", dsn, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files created: %v", entries)
	}
}

// TestPostgresNotReachable: a journal soldout cannot connect to is named,
// with what to check, above pgx's report of each attempt.
func TestPostgresNotReachable(t *testing.T) {
	const url = "postgres://soldout:secret@127.0.0.1:1/journal?sslmode=disable&connect_timeout=2"
	_, openErr := Open(ctx, url)
	_, inspectErr := Inspect(ctx, url)
	for what, err := range map[string]error{"Open": openErr, "Inspect": inspectErr} {
		if stock.ErrorCode(err) != stock.Unavailable || !strings.Contains(fmt.Sprint(err), "cannot connect to PostgreSQL at 127.0.0.1:1: check that the server runs") {
			t.Errorf("%s: %v, want an unavailable error naming 127.0.0.1:1", what, err)
		}
		if strings.Contains(fmt.Sprint(err), "secret") {
			t.Errorf("%s: the error shows the password: %v", what, err)
		}
	}
}

// TestPostgresRefusal: a server's own refusal (no such database) is left as
// the server words it, not taken for a server that is not there.
func TestPostgresRefusal(t *testing.T) {
	u, err := neturl.Parse(pgtest.Server(t, "a refusal by the PostgreSQL server"))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/soldout_no_such_database"
	_, err = Inspect(ctx, u.String())
	if msg := fmt.Sprint(err); !strings.Contains(msg, `database "soldout_no_such_database" does not exist`) || strings.Contains(msg, "cannot connect") {
		t.Errorf("Inspect of a missing database: %v", err)
	}
}
