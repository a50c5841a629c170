package journal

import (
	"context"
	"net/url"
	"strings"

	"soldout/internal/stock"
)

// OpenExisting is Open for the operator's commands: where there is no
// journal yet (no SQLite file, or a database or schema soldout never ran
// on) it fails instead of creating one, so that a mistyped DATABASE_URL
// cannot show an empty history as if nothing had happened, nor let
// reconcile --apply replay every sale into a new journal. Nor does it
// migrate an older journal: only serve does, so that a new version's
// commands run before the upgrade cannot change the live journal under
// the running server.
func OpenExisting(ctx context.Context, databaseURL string) (*DB, error) {
	ins, err := Inspect(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	const where = "check DATABASE_URL (run the command where soldout serve runs, or give its path); soldout serve creates the journal on its first start"
	switch {
	case ins.Missing:
		return nil, stock.Errorf(stock.NotFound, "journal: there is no journal at %s: %s", ins.Path, where)
	case ins.Version == 0 && ins.Kind == kindSQLite:
		return nil, stock.Errorf(stock.NotFound, "journal: there is no journal in %s: %s", ins.Path, where)
	case ins.Version == 0:
		return nil, stock.Errorf(stock.NotFound, "journal: there is no journal in schema %s of that database: %s", ins.Schema, where)
	case ins.Version < LatestSchemaVersion():
		return nil, stock.Errorf(stock.Misconfigured, "journal: schema version %d, and this soldout's is %d: restart soldout serve with this version first (it migrates the journal at start; back it up before), or run the commands of the version serve runs", ins.Version, LatestSchemaVersion())
	}
	// Up to date: opened without migrating, which would take the migration
	// lock and need CREATE on the schema, a right a read-only role lacks.
	return openJournal(ctx, databaseURL, false)
}

// sqlitePath is the file a file: URI names.
func sqlitePath(dsn string) string {
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if p, err := url.PathUnescape(path); err == nil {
		return p
	}
	return path
}
