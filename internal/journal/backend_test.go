package journal

import (
	"context"
	"path/filepath"
	"testing"

	"soldout/internal/journal/pgtest"
)

// A backend hands out fresh, empty journal locations. Every test and
// benchmark runs against each; available skips when it cannot.
type backend struct {
	name      string
	available func(tb testing.TB)
	url       func(tb testing.TB) string
}

var backends = []backend{
	{"sqlite", func(testing.TB) {}, sqliteURL},
	{"postgres", func(tb testing.TB) { pgtest.Server(tb, postgresTests) }, postgresURL},
}

func sqliteURL(tb testing.TB) string {
	return "sqlite:" + filepath.Join(tb.TempDir(), "journal.db")
}

// postgresURL is a fresh schema on SOLDOUT_TEST_POSTGRES, or skips.
func postgresURL(tb testing.TB) string { return pgtest.URL(tb, postgresTests) }

const postgresTests = "the journal's PostgreSQL tests"

// rawExec runs stmt on the SQLite file at path, beside the journal's own
// connections: to make a file another application's, or a journal of
// another schema version.
func rawExec(tb testing.TB, path, stmt string, args ...any) {
	tb.Helper()
	raw, err := openSQLitePool("file:" + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(stmt, args...); err != nil {
		tb.Fatal(err)
	}
}

// open opens url and closes it when tb ends.
func open(tb testing.TB, url string) *DB {
	tb.Helper()
	d, err := Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return d
}
