// Package pgtest gives tests a PostgreSQL journal of their own: a fresh
// schema on the server SOLDOUT_TEST_POSTGRES names, reached through
// search_path and dropped when the test ends, so that tests and packages
// running at once never see each other's rows. Without the variable the
// test skips, saying how to run it.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Env names the PostgreSQL server the tests may use.
const Env = "SOLDOUT_TEST_POSTGRES"

// Server returns SOLDOUT_TEST_POSTGRES, or skips tb; what completes the skip
// message ("… to run <what>").
func Server(tb testing.TB, what string) string {
	tb.Helper()
	base := os.Getenv(Env)
	if base == "" {
		tb.Skip(Env + " is not set; set it to a PostgreSQL URL such as " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run " + what + " (.ci/run does)")
	}
	return base
}

// URL creates a schema of tb's own on the server and returns a URL whose
// search_path points at it; see Server for what. Start what uses it after
// calling URL, so that it stops before the schema is dropped.
func URL(tb testing.TB, what string) string {
	tb.Helper()
	base := Server(tb, what)
	schema := "soldout_test_" + strings.ToLower(rand.Text()[:12])
	if err := exec(base, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if err := exec(base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema: %v", err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func exec(base, stmt string) error {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(stmt)
	return err
}
