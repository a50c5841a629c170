package journal

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"soldout/internal/stock"
)

// OpenExisting is Open for the operator's read-only commands: a SQLite
// journal that does not exist is an error instead of a new empty file, so
// that a mistyped DATABASE_URL cannot show an empty history as if nothing
// had happened.
func OpenExisting(ctx context.Context, databaseURL string) (*DB, error) {
	kind, dsn, err := parseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	if kind == kindSQLite {
		path := sqlitePath(dsn)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, stock.Errorf(stock.NotFound, "journal: there is no journal at %s: check DATABASE_URL (run the command where soldout serve runs, or give its path); soldout serve creates the journal on its first start", path)
		}
	}
	return Open(ctx, databaseURL)
}

// sqlitePath is the file a file: URI names.
func sqlitePath(dsn string) string {
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if p, err := url.PathUnescape(path); err == nil {
		return p
	}
	return path
}
