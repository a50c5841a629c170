package journal

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	{"postgres", func(tb testing.TB) { postgresServer(tb) }, postgresURL},
}

func sqliteURL(tb testing.TB) string {
	return "sqlite:" + filepath.Join(tb.TempDir(), "journal.db")
}

// postgresURL creates a schema of its own on SOLDOUT_TEST_POSTGRES and
// returns a URL whose search_path points at it, so that runs never collide.
func postgresURL(tb testing.TB) string {
	base := postgresServer(tb)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	schema := "soldout_test_" + hex.EncodeToString(randomBytes(tb, 6))
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			tb.Error(err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			tb.Errorf("drop schema: %v", err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// postgresServer returns SOLDOUT_TEST_POSTGRES, or skips.
func postgresServer(tb testing.TB) string {
	base := os.Getenv("SOLDOUT_TEST_POSTGRES")
	if base == "" {
		tb.Skip("SOLDOUT_TEST_POSTGRES is not set; set it to a PostgreSQL URL such as " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL tests")
	}
	return base
}

func randomBytes(tb testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
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
