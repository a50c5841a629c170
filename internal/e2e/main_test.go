// Package e2e proves what soldout promises to a shop that runs several
// replicas, by running the real binary: two or three `soldout serve`
// processes share one PostgreSQL journal and one fake Sanity dataset served
// from the test process, and a driver delivers signed events the way Stripe
// does. The package holds tests only.
//
// The suite needs SOLDOUT_TEST_POSTGRES (see the README) and skips without
// it. The replicas are built with -race: this is the one place where the
// server's goroutines meet real concurrent load from several sides, and it
// costs about a third more time; a race report fails the test.
package e2e

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create and drop test schemas
)

const postgresEnv = "SOLDOUT_TEST_POSTGRES"

// soldoutBin is the binary under test, built once by TestMain; empty when
// the suite skips.
var soldoutBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Getenv(postgresEnv) == "" {
		return m.Run() // every test skips, saying why
	}
	dir, err := os.MkdirTemp("", "soldout-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	soldoutBin = filepath.Join(dir, "soldout")
	// go test puts its own go first on PATH.
	build := exec.Command("go", "build", "-race", "-o", soldoutBin, "soldout/cmd/soldout")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building soldout:", err)
		return 1
	}
	return m.Run()
}

// postgresURL skips the test without SOLDOUT_TEST_POSTGRES; otherwise it
// creates a schema of the test's own and returns a URL whose search_path
// points at it (the journal tests do the same), dropped when the test ends.
// Call it before starting replicas, so that they stop before the drop.
func postgresURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv(postgresEnv)
	if base == "" {
		t.Skip(postgresEnv + " is not set: the end-to-end suite runs several soldout replicas on one PostgreSQL journal; " +
			"set it to a URL such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable (.ci/run does)")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "soldout_e2e_" + hex.EncodeToString(b)
	exec := func(query string) error {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return err
		}
		defer admin.Close()
		_, err = admin.Exec(query)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}
