package journal

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"soldout/internal/stock"
)

// Sales returns every sale row of an artwork, oldest first.
func (d *DB) Sales(ctx context.Context, artworkID string) ([]stock.Sale, error) {
	sales, err := scanSales(d.st.sales.QueryContext(ctx, storable(artworkID)...))
	if err != nil {
		return nil, fail(err, "read sales of %s", artworkID)
	}
	return sales, nil
}

// InsertSale adds s as it is, version included, so that s can be passed to
// UpdateSale next; a zero CreatedAt or UpdatedAt is stamped with the
// journal's clock. It fails with ErrSaleTaken if s is active while another active row
// exists for the artwork, and with ErrSaleExists if the (artwork, session)
// row exists.
func (d *DB) InsertSale(ctx context.Context, s stock.Sale) error {
	err := d.write(ctx, func(ctx context.Context) error { return d.execInsertSale(ctx, d.st.insertSale, s) })
	if err != nil {
		return fail(err, "insert sale %s/%s", s.ArtworkID, s.SessionID)
	}
	return nil
}

// InsertDoubleSale inserts s, a double sale, and rewrites winner's row
// unchanged under its version check, in one transaction: both or neither.
// A release of winner that read the artwork's rows before s existed then
// fails to record itself (ErrStale) and decides again, seeing s; and if
// the release was recorded first, this fails with ErrStale instead.
// winner may be nil: s alone is inserted.
func (d *DB) InsertDoubleSale(ctx context.Context, s stock.Sale, winner *stock.Sale) error {
	err := d.atomically(ctx, winner != nil, func(ctx context.Context, st func(*sql.Stmt) *sql.Stmt) error {
		if winner != nil {
			if err := settleSale(ctx, st(d.st.settleSale), *winner, millisOr(winner.UpdatedAt, d.now())); err != nil {
				return err
			}
		}
		return d.execInsertSale(ctx, st(d.st.insertSale), s)
	})
	if err != nil {
		return fail(err, "insert double sale %s/%s", s.ArtworkID, s.SessionID)
	}
	return nil
}

// execInsertSale runs the insert of s on st (the prepared statement, or its
// copy in a transaction) and turns the database's answers into verdicts.
func (d *DB) execInsertSale(ctx context.Context, st *sql.Stmt, s stock.Sale) error {
	now := d.now()
	created, updated := millisOr(s.CreatedAt, now), millisOr(s.UpdatedAt, now)
	res, err := st.ExecContext(ctx, storable(s.ArtworkID, s.SessionID, string(s.State), s.Email,
		s.Amount, s.Currency, encodeList(s.EventIDs), s.AppliedRev, s.LeaseOwner, millis(s.LeaseUntil), created, updated, s.Version, s.WaitsFor)...)
	if violatesOneActive(err) {
		return conflict(stock.ErrSaleTaken, "insert sale %s/%s", s.ArtworkID, s.SessionID)
	}
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = conflict(stock.ErrSaleExists, "insert sale %s/%s", s.ArtworkID, s.SessionID)
	}
	return err
}

// UpdateSale rewrites the row of (s.ArtworkID, s.SessionID) if its version is
// still s.Version, and returns the row with its new version. UpdatedAt is
// stored as given, or stamped with the journal's clock when zero. It fails with ErrStale when another writer came first (or the row
// does not exist), and with ErrSaleTaken when s becomes active while another
// active row exists. CreatedAt is never rewritten.
func (d *DB) UpdateSale(ctx context.Context, s stock.Sale) (stock.Sale, error) {
	updated := millisOr(s.UpdatedAt, d.now())
	var out stock.Sale
	err := d.write(ctx, func(ctx context.Context) error {
		var err error
		out, err = updateSale(ctx, d.st.updateSale, s, updated)
		return err
	})
	if err != nil {
		return stock.Sale{}, fail(err, "update sale %s/%s", s.ArtworkID, s.SessionID)
	}
	return out, nil
}

// updateSale runs the versioned update of s on st (the prepared statement,
// or its copy in a transaction), stamping updated.
func updateSale(ctx context.Context, st *sql.Stmt, s stock.Sale, updated int64) (stock.Sale, error) {
	out, err := scanSale(st.QueryRowContext(ctx, saleUpdateArgs(s, updated)...))
	if errors.Is(err, sql.ErrNoRows) {
		err = errStaleSale(s)
	}
	return out, saleUpdateError(err, s)
}

// settleSale is updateSale without reading the row back.
func settleSale(ctx context.Context, st *sql.Stmt, s stock.Sale, updated int64) error {
	res, err := st.ExecContext(ctx, saleUpdateArgs(s, updated)...)
	if err == nil {
		if n, e := res.RowsAffected(); e != nil {
			err = e
		} else if n == 0 {
			err = errStaleSale(s)
		}
	}
	return saleUpdateError(err, s)
}

func saleUpdateArgs(s stock.Sale, updated int64) []any {
	return storable(s.ArtworkID, s.SessionID, string(s.State), s.Email,
		s.Amount, s.Currency, encodeList(s.EventIDs), s.AppliedRev, s.LeaseOwner, millis(s.LeaseUntil), updated, s.Version, s.WaitsFor)
}

func errStaleSale(s stock.Sale) error {
	return conflict(stock.ErrStale, "update sale %s/%s at version %d", s.ArtworkID, s.SessionID, s.Version)
}

func saleUpdateError(err error, s stock.Sale) error {
	if violatesOneActive(err) {
		return conflict(stock.ErrSaleTaken, "update sale %s/%s", s.ArtworkID, s.SessionID)
	}
	return err
}

// SaleFilter selects sales for ListSales. Zero fields do not filter.
type SaleFilter struct {
	State     stock.SaleState
	ArtworkID string
	Limit     int // at most this many; 0 for all
}

// ListSales returns the sales that match f, newest first.
func (d *DB) ListSales(ctx context.Context, f SaleFilter) ([]stock.Sale, error) {
	var q filter
	if f.State != "" {
		q.add("state =", string(f.State))
	}
	if f.ArtworkID != "" {
		q.add("artwork_id =", f.ArtworkID)
	}
	query := "SELECT " + saleCols + " FROM sales" + q.where() +
		" ORDER BY created_at DESC, artwork_id, session_id" + q.limit(f.Limit)
	sales, err := scanSales(d.read.QueryContext(ctx, query, q.args...))
	if err != nil {
		return nil, fail(err, "list sales")
	}
	return sales, nil
}

// SaleBySession returns the sale rows of one Checkout Session, one per
// artwork it bought, ordered by artwork id.
func (d *DB) SaleBySession(ctx context.Context, sessionID string) ([]stock.Sale, error) {
	sales, err := scanSales(d.st.salesBySession.QueryContext(ctx, storable(sessionID)...))
	if err != nil {
		return nil, fail(err, "read sales of session %s", sessionID)
	}
	return sales, nil
}

// violatesOneActive reports whether err is a unique violation of
// sales_one_active, the index allowing one held or sold row per artwork.
func violatesOneActive(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" && pe.ConstraintName == "sales_one_active" // unique_violation
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		// SQLite names the index's columns, not the index: sales_one_active
		// reads "sales.artwork_id", the primary key "sales.artwork_id,
		// sales.session_id".
		_, rest, ok := strings.Cut(se.Error(), "UNIQUE constraint failed: sales.artwork_id")
		return ok && !strings.HasPrefix(rest, ",")
	}
	return false
}

func scanSales(rows *sql.Rows, err error) ([]stock.Sale, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var sales []stock.Sale
	for rows.Next() {
		s, err := scanSale(rows)
		if err != nil {
			return nil, err
		}
		sales = append(sales, s)
	}
	return sales, rows.Err()
}

func scanSale(sc scanner) (stock.Sale, error) {
	var (
		s                            stock.Sale
		ids                          string
		leaseUntil, created, updated int64
	)
	if err := sc.Scan(&s.ArtworkID, &s.SessionID, (*string)(&s.State), &s.Email, &s.Amount, &s.Currency, &ids,
		&s.AppliedRev, &s.LeaseOwner, &leaseUntil, &created, &updated, &s.Version, &s.WaitsFor); err != nil {
		return stock.Sale{}, err
	}
	var err error
	if s.EventIDs, err = decodeList(ids); err != nil {
		return stock.Sale{}, err
	}
	s.LeaseUntil, s.CreatedAt, s.UpdatedAt = fromMillis(leaseUntil), fromMillis(created), fromMillis(updated)
	return s, nil
}
