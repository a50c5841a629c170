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
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"soldout/internal/journal/pgtest"
)

// soldoutBin is the binary under test, built once by TestMain; empty when
// the suite skips.
var soldoutBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Getenv(pgtest.Env) == "" {
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

// postgresURL is a journal URL on a schema of the test's own, dropped when
// the test ends, or skips. Call it before starting replicas, so that they
// stop before the drop.
func postgresURL(t *testing.T) string {
	t.Helper()
	return pgtest.URL(t, "the end-to-end suite, several soldout replicas on one PostgreSQL journal")
}
