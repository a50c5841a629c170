// Package journal is soldout's durable record of Stripe events and sales: the
// stock.Journal on SQLite (one file, one host) or on PostgreSQL (several
// replicas). Both share the schema and nearly all SQL, since SQLite accepts
// PostgreSQL's $1-style placeholders; they differ in how connections are set
// up, how migrations are serialised and how a unique violation names its
// index.
package journal

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"soldout/internal/stock"
)

const (
	kindSQLite   = "sqlite"
	kindPostgres = "postgres"
)

// Pool sizes. One PostgreSQL connection per concurrent write lets the server
// flush many commits with one WAL write; 16 covers a busy replica without
// crowding max_connections when several replicas run. SQLite readers never
// block each other or the writer in WAL mode, and a read of an artwork's
// sales takes tens of microseconds, so two cover the rules' reads. With four,
// an event cost about 5 % more CPU and the process 0.4 MiB more memory at 16
// concurrent webhooks (six interleaved runs of the bench), probably because
// each connection's page cache, which every commit invalidates, is refilled
// on its own.
const (
	postgresConns = 16
	sqliteReaders = 2
)

// postgresConnectTimeout bounds each new connection, its TLS and
// authentication included, when DATABASE_URL sets no connect_timeout: a
// server that accepts and never answers (a wrong port, a stuck proxy) would
// otherwise hold soldout's start, silently, for ever. A var for tests.
var postgresConnectTimeout = 10 * time.Second

// busyTimeout is how long an SQLite connection waits for a lock another
// process holds before giving up with SQLITE_BUSY; it stays below Stripe's
// webhook timeout so that the answer is a retryable 5xx, not a hang.
const busyTimeout = "5000"

// busyWait is busyTimeout as a duration.
const busyWait = 5 * time.Second

// SQLite settings. synchronous=FULL fsyncs the WAL on every commit, so an
// event answered 2xx survives a power cut; WAL lets readers work while the
// writer commits. The writer's transactions begin IMMEDIATE (the migrations'
// through _txlock, the committer's explicitly): they take the write lock up
// front, waiting under busy_timeout, instead of failing with SQLITE_BUSY when
// a read transaction tries to become a write.
//
// Page caches are a quarter (the writer: 1 MiB) and an eighth (each reader)
// of SQLite's default 2 MiB: the writer appends to B-trees whose interior
// pages fit many times over, readers walk one artwork's rows, and the OS
// caches the file anyway. It keeps the server's peak RSS 1.6–2.3 MiB lower
// at no measurable cost in events per second (BENCHMARKS.md).
//
// A new journal gets pages of 2 KiB instead of 4: an event dirties about
// five index leaves at random places (ids, artworks, sessions), each written
// whole to the WAL at every commit, so smaller pages write a third fewer
// bytes per event (and fsync them), for 2–3 % less CPU and 1.1–1.4 MiB less
// peak RSS. 1 KiB was slower: the event's payload then spans three pages.
// SQLite fixes the size when it creates the file; existing journals keep
// theirs.
const (
	sqliteWriterParams = "_txlock=immediate&_busy_timeout=" + busyTimeout +
		"&_pragma=page_size(2048)&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_pragma=temp_store(MEMORY)&_pragma=cache_size(-1024)"
	sqliteReaderParams = "_busy_timeout=" + busyTimeout + "&_foreign_keys=1&_query_only=1&_pragma=cache_size(-512)"
)

// DB is the journal. It implements stock.Journal and the read side the
// operator CLI needs. It is safe for concurrent use.
type DB struct {
	kind string
	// db writes. PostgreSQL: the pool, used for reads too. SQLite: a pool of
	// one connection, which w keeps for itself after migrating.
	db   *sql.DB
	read *sql.DB    // PostgreSQL: db; SQLite: a query-only pool
	w    *committer // SQLite only
	st   statements
	now  func() time.Time // stamps sales rows and migrations; replaced in tests

	closeOnce sync.Once
	closeErr  error
}

var _ stock.Journal = (*DB)(nil)

// Open connects to the journal named by url (DATABASE_URL) and brings its
// schema up to date. A plain path, sqlite:<path>, sqlite://<path> or a
// file: URI opens an SQLite file (created if missing); postgres:// and
// postgresql:// URLs open PostgreSQL.
func Open(ctx context.Context, url string) (*DB, error) { return openJournal(ctx, url, true) }

// openJournal is Open, bringing the schema up to date only when migrate is set.
func openJournal(ctx context.Context, url string, migrate bool) (*DB, error) {
	kind, dsn, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	d := &DB{kind: kind, now: time.Now}
	if kind == kindSQLite {
		err = explainSQLite(d.openSQLite(ctx, dsn, migrate), sqlitePath(dsn))
	} else {
		err = explainPostgres(d.openPostgres(ctx, dsn, migrate))
	}
	if err != nil {
		d.Close()
		return nil, fail(err, "open %s", kind)
	}
	return d, nil
}

func (d *DB) openSQLite(ctx context.Context, dsn string, migrate bool) error {
	// SQLite creates the file, not its directory, and says only "unable to
	// open database file".
	if dir := filepath.Dir(sqlitePath(dsn)); dir != "" {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return stock.Errorf(stock.Misconfigured, "journal: the directory %s does not exist: create it, or point DATABASE_URL at a file in a directory that does", dir)
		}
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	var err error
	if d.db, err = openSQLitePool(dsn + sep + sqliteWriterParams); err != nil {
		return err
	}
	// Writes in one process never contend for SQLite's lock: they all go
	// through the committer on this one connection, which turns concurrency
	// into group commits instead of SQLITE_BUSY retries.
	d.db.SetMaxOpenConns(1)
	d.db.SetMaxIdleConns(1)
	if migrate {
		if err = migrateWhenFree(ctx, d.migrate); err != nil {
			return err
		}
	}
	if d.read, err = openSQLitePool(dsn + sep + sqliteReaderParams); err != nil {
		return err
	}
	d.read.SetMaxOpenConns(sqliteReaders)
	d.read.SetMaxIdleConns(sqliteReaders)
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return err
	}
	if d.w, err = newCommitter(ctx, conn); err != nil {
		conn.Close()
		return err
	}
	return d.st.prepare(ctx, kindSQLite, conn, d.read)
}

// migrateWhenFree runs migrate, trying again while SQLite answers
// SQLITE_BUSY, up to the busy timeout. The first connections to a new file
// race to switch it to WAL, and SQLite tells the losers BUSY at once,
// without waiting in its busy handler: processes starting together (a
// serve and an operator command) would otherwise fail for nothing.
func migrateWhenFree(ctx context.Context, migrate func(context.Context) error) error {
	deadline := time.Now().Add(busyWait)
	for {
		err := migrate(ctx)
		var se *sqlite.Error
		if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(time.Duration(10+rand.IntN(40)) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// explainSQLite names the file and what to do about SQLite's terse
// refusals to open it ("database is locked (5)").
func explainSQLite(err error, path string) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	var hint string
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		hint = "another process has held its write lock for over " + busyTimeout + " ms (an sqlite3 shell with a transaction open?): close it and start again"
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN:
		hint = "check that this user may read and write the file and its directory (SQLite creates -wal and -shm files beside it), and that the path is a file"
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		hint = "the file is not an SQLite database, or is damaged: check that DATABASE_URL names the journal (restore it from a backup if it is)"
	case sqlite3.SQLITE_FULL:
		hint = "the disk is full: free space and start again"
	default:
		return stock.Wrap(stock.Unavailable, err, "journal %s", path)
	}
	return stock.Wrap(stock.Misconfigured, err, "journal %s: %s", path, hint)
}

// explainPostgres says where soldout tried to connect, and what to check,
// above pgx's report of each attempt, when no server answered there. A
// server's own refusal (no such database, a wrong password) says itself what
// is wrong, and is left as it is.
func explainPostgres(err error) error {
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	if !errors.As(err, &ce) || ce.Config == nil || errors.As(err, &pe) {
		return err
	}
	return stock.Wrap(stock.Unavailable, err, "journal: cannot connect to PostgreSQL at %s: check that the server runs and takes connections there, and DATABASE_URL's host and port",
		net.JoinHostPort(ce.Config.Host, strconv.Itoa(int(ce.Config.Port))))
}

func openSQLitePool(dsn string) (*sql.DB, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// pgTx begins the journal's transactions on PostgreSQL at READ COMMITTED,
// the default its statements are written for, whatever the database's: a
// database set to REPEATABLE READ or SERIALIZABLE would take a migration's
// snapshot before its lock wait (replicas starting together would run a
// migration twice), and turn lost races into serialization failures. Said
// in each BEGIN rather than as a startup parameter, which pgbouncer
// refuses.
var pgTx = &sql.TxOptions{Isolation: sql.LevelReadCommitted}

// postgresConfig reads DATABASE_URL for every connection soldout opens.
func postgresConfig(url string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, stock.Wrap(stock.Misconfigured, err, "journal: DATABASE_URL")
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = postgresConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		// Lets a DBA tell soldout's sessions apart in pg_stat_activity.
		cfg.RuntimeParams["application_name"] = "soldout"
	}
	return cfg, nil
}

func (d *DB) openPostgres(ctx context.Context, url string, migrate bool) error {
	cfg, err := postgresConfig(url)
	if err != nil {
		return err
	}
	d.db = stdlib.OpenDB(*cfg)
	d.read = d.db
	d.db.SetMaxOpenConns(postgresConns)
	d.db.SetMaxIdleConns(postgresConns)
	d.db.SetConnMaxIdleTime(5 * time.Minute)
	if err := d.db.PingContext(ctx); err != nil {
		return err
	}
	if migrate {
		if err := d.migrate(ctx); err != nil {
			return err
		}
	}
	return d.st.prepare(ctx, kindPostgres, d.db, d.db)
}

// parseURL tells SQLite from PostgreSQL and turns an SQLite path into the
// file: URI the driver takes.
func parseURL(url string) (kind, dsn string, err error) {
	var path string
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return kindPostgres, url, nil
	case strings.HasPrefix(url, "file:"):
		if strings.Contains(url, "mode=memory") || strings.HasPrefix(url, "file::memory:") {
			return "", "", errMemory
		}
		return kindSQLite, url, nil
	case strings.HasPrefix(url, "sqlite://"):
		path = url[len("sqlite://"):]
	case strings.HasPrefix(url, "sqlite:"):
		path = url[len("sqlite:"):]
	case url == "":
		return "", "", stock.Errorf(stock.Misconfigured, "journal: DATABASE_URL is empty; %s", acceptedURLs)
	case keywordDSN.MatchString(url):
		// PostgreSQL's key=value form (host=… dbname=…), which pgx reads
		// too: taken for a file name, it would give every replica a journal
		// of its own, named after the password.
		return kindPostgres, url, nil
	case strings.Contains(url, "://"):
		// Only the scheme: the rest may hold a password.
		scheme, _, _ := strings.Cut(url, "://")
		return "", "", stock.Errorf(stock.Misconfigured, "journal: DATABASE_URL scheme %q is not supported; %s", scheme, acceptedURLs)
	default:
		path = url
	}
	switch path {
	case "":
		return "", "", stock.Errorf(stock.Misconfigured, "journal: DATABASE_URL names no file; %s", acceptedURLs)
	case ":memory:":
		return "", "", errMemory
	}
	return kindSQLite, "file:" + uriPathEscaper.Replace(path), nil
}

const acceptedURLs = "use a file path, sqlite:<path>, file:<path>, postgres://user@host/db or host=… dbname=…"

// keywordDSN matches PostgreSQL's key=value connection strings.
var keywordDSN = regexp.MustCompile(`^\s*(host|hostaddr|port|dbname|user|password|sslmode|service|connect_timeout)\s*=`)

// errMemory: every connection to an in-memory SQLite database sees its own
// empty database, and nothing survives a restart.
var errMemory = stock.Errorf(stock.Misconfigured, "journal: DATABASE_URL names an in-memory SQLite database, which is not durable; give a file path")

// uriPathEscaper escapes what would end or corrupt the path of a file: URI.
var uriPathEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// Kind reports the backend: "sqlite" or "postgres".
func (d *DB) Kind() string { return d.kind }

// Ping checks that the database answers reads and, through the same path as
// every write, that a write could start now. On SQLite, once a write has
// failed other than with a verdict (a full disk), that is not enough: an
// empty transaction commits on a full disk too. Until a real write commits
// again, each Ping makes one, a probe row in settings: /readyz then says
// not ready exactly while writes fail, at no cost while they do not.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.read.PingContext(ctx); err != nil {
		return fail(err, "ping")
	}
	if d.w == nil {
		return nil
	}
	probe := func(context.Context) error { return nil }
	failed := d.w.failed.Load()
	if failed {
		// Larger than a page, so that it needs pages of its own, as the
		// writes that failed did.
		value := strconv.FormatInt(d.now().UnixMilli(), 10) + strings.Repeat(" ", 4096)
		probe = func(ctx context.Context) error {
			_, err := d.w.conn.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('writer_probe', $1)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, value)
			if err == nil {
				// Cleared here, on the committer's loop, where a later
				// failure (of this batch's commit, or of the next batch)
				// sets it again.
				d.w.failed.Store(false)
			}
			return err
		}
	}
	if err := d.w.do(ctx, probe); err != nil {
		if failed {
			return fail(err, "ping writer: writes fail (a full disk? an I/O error?)")
		}
		return fail(err, "ping writer")
	}
	return nil
}

// Close waits for writes in progress and closes every connection.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.w != nil {
			errs = append(errs, d.w.close())
		}
		if d.read != nil && d.read != d.db {
			errs = append(errs, d.read.Close())
		}
		if d.db != nil {
			errs = append(errs, d.db.Close())
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// write runs fn, a write of one statement or, on SQLite, of a few that must
// commit together. On SQLite it joins the committer's next group commit; on
// PostgreSQL every write is a single atomic statement on the pool.
func (d *DB) write(ctx context.Context, fn func(context.Context) error) error {
	if d.w != nil {
		return d.w.do(ctx, fn)
	}
	return fn(ctx)
}

// atomically runs fn so that its statements all commit or none does; fn runs
// each statement st gives it. several says fn may run more than one. On
// SQLite, every write already is one transaction of the committer's, which
// also undoes a verdict reached after a change (see partial). On PostgreSQL,
// where write runs one self-committing statement, several statements get a
// transaction of their own.
func (d *DB) atomically(ctx context.Context, several bool, fn func(ctx context.Context, st func(*sql.Stmt) *sql.Stmt) error) error {
	same := func(s *sql.Stmt) *sql.Stmt { return s }
	if d.w != nil {
		return d.write(ctx, func(ctx context.Context) error {
			err := fn(ctx, same)
			if _, ok := errors.AsType[*stock.Error](err); ok && several {
				return partial{err} // an earlier statement may have written
			}
			return err
		})
	}
	if !several {
		return fn(ctx, same)
	}
	tx, err := d.db.BeginTx(ctx, pgTx)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	if err := fn(ctx, func(s *sql.Stmt) *sql.Stmt { return tx.StmtContext(ctx, s) }); err != nil {
		return err
	}
	return tx.Commit()
}

// stage is write for a write that a later write of the caller may depend
// on: on SQLite, when early says so of fn's result, it returns that result
// once fn has run, before the group commit (see committer.stage).
func stage[T any](ctx context.Context, d *DB, fn func(context.Context) (T, error), early func(T) bool) (T, error) {
	if d.w == nil {
		return fn(ctx)
	}
	var out T
	ran := false
	err := d.w.stage(ctx, func(ctx context.Context) (bool, error) {
		v, err := fn(ctx)
		// The committer may run fn again (its batch rerun with savepoints)
		// after the caller has taken out: only the first run answers.
		if !ran {
			out, ran = v, true
		}
		return err == nil && early(out), err
	})
	return out, err
}

// fail passes the journal's own classified errors through and marks anything
// else as the database failing, which the caller answers with a 5xx so that
// Stripe retries.
func fail(err error, format string, args ...any) error {
	var e *stock.Error
	if errors.As(err, &e) {
		return err
	}
	return stock.Wrap(stock.Unavailable, err, "journal: "+format, args...)
}

// conflict wraps one of stock's sentinels so that errors.Is finds it.
func conflict(sentinel error, format string, args ...any) error {
	return stock.Wrap(stock.Conflict, sentinel, "journal: "+format, args...)
}
