package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for schemas

	"soldout/internal/journal"
)

// journals hands out empty journal locations: a file in a fresh temporary
// directory for SQLite, a fresh schema (through search_path) for PostgreSQL,
// so that every run starts from nothing and leaves nothing behind.
type journals struct {
	base string // -database-url; "" for SQLite
	dir  string // SQLite: where the files go
}

func (j journals) kind() string {
	if j.base == "" {
		return "sqlite"
	}
	return "postgres"
}

// fresh returns an empty journal's URL and a function that removes it.
func (j journals) fresh(ctx context.Context) (url string, cleanup func(), err error) {
	if j.base == "" {
		dir, err := os.MkdirTemp(j.dir, "soldout-bench-")
		if err != nil {
			return "", nil, err
		}
		return filepath.Join(dir, "journal.db"), func() { _ = os.RemoveAll(dir) }, nil
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "soldout_bench_" + hex.EncodeToString(b)
	if err := j.admin(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("creating a schema for the run: %w", err)
	}
	sep := "?"
	if strings.Contains(j.base, "?") {
		sep = "&"
	}
	return j.base + sep + "search_path=" + schema, func() {
		if err := j.admin(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "soldout-bench: dropping schema %s: %v\n", schema, err)
		}
	}, nil
}

func (j journals) admin(ctx context.Context, stmt string) error {
	db, err := sql.Open("pgx", j.base)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// historyArtworks spreads a filled history over this many artworks.
const historyArtworks = 1000

// fillHistory migrates the journal at url and appends n finished events.
func fillHistory(ctx context.Context, url string, n int) (time.Duration, error) {
	start := time.Now()
	d, err := journal.Open(ctx, url)
	if err != nil {
		return 0, err
	}
	if err := d.FillHistory(ctx, n, historyArtworks); err != nil {
		d.Close()
		return 0, err
	}
	return time.Since(start), d.Close()
}

// listTimes is how long listing one artwork's events takes in a journal
// with history, the median over several artworks.
type listTimes struct {
	Limit50Ms float64 `json:"limit_50_ms"`
	AllMs     float64 `json:"all_ms"` // every event of the artwork, about n/1000
	// CLIMs is `soldout events list --artwork ID` end to end (exec, open,
	// query, print), when the binary has that command.
	CLIMs    float64 `json:"cli_ms,omitempty"`
	CLIError string  `json:"cli_error,omitempty"`
}

func timeListing(ctx context.Context, o *options, url string) (listTimes, error) {
	d, err := journal.Open(ctx, url)
	if err != nil {
		return listTimes{}, err
	}
	defer d.Close()
	var lt listTimes
	for _, l := range []struct {
		limit int
		out   *float64
	}{{50, &lt.Limit50Ms}, {0, &lt.AllMs}} {
		var ds []time.Duration
		for k := range 21 {
			start := time.Now()
			recs, err := d.ListEvents(ctx, journal.EventFilter{ArtworkID: journal.HistoryArtworkID(k, historyArtworks), Limit: l.limit})
			if err != nil {
				return lt, err
			}
			if len(recs) == 0 {
				return lt, fmt.Errorf("no events listed for %s", journal.HistoryArtworkID(k, historyArtworks))
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		*l.out = ms(ds[len(ds)/2])
	}

	// The command is someone else's to add; measure it once it exists.
	var ds []time.Duration
	for k := range 5 {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cmd := exec.CommandContext(cctx, o.binary, "events", "list", "--artwork", journal.HistoryArtworkID(k, historyArtworks))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + url}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		ds = append(ds, time.Since(start))
		cancel()
		if err != nil {
			first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			lt.CLIError = fmt.Sprintf("%v: %s", err, first)
			return lt, nil
		}
	}
	slices.Sort(ds)
	lt.CLIMs = ms(ds[len(ds)/2])
	return lt, nil
}
