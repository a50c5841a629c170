package journal

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"soldout/internal/stock"
)

var _ stock.Reservations = (*DB)(nil)

const reservationCols = `artwork_id, claim_id, session_id, state, expires_at, held_until, created_at, updated_at`

// claimReservation is the whole decision between buyers: it inserts the
// artwork's row, or overwrites one that no longer holds, in one atomic
// statement. A concurrent claim of the same artwork waits for the row (both
// databases lock it) and then sees the winner's open row, so its WHERE is
// false and it returns no row. $5 is the claimer's now.
const claimReservation = `INSERT INTO reservations (` + reservationCols + `)
	VALUES ($1, $2, NULL, 'open', $3, $4, $5, $5)
	ON CONFLICT (artwork_id) DO UPDATE SET
		claim_id = excluded.claim_id, session_id = NULL, state = 'open',
		expires_at = excluded.expires_at, held_until = excluded.held_until,
		created_at = excluded.created_at, updated_at = excluded.updated_at
	WHERE reservations.state <> 'open' OR reservations.held_until <= excluded.created_at
	RETURNING claim_id`

// ClaimReservation implements stock.Reservations: r is stored as the open
// claim unless another reservation of the artwork holds at r.CreatedAt, in
// which case that one is returned.
func (d *DB) ClaimReservation(ctx context.Context, r stock.Reservation) (stock.Reservation, bool, error) {
	var claimed bool
	err := d.write(ctx, func(ctx context.Context) error {
		var id string
		err := d.writer().QueryRowContext(ctx, claimReservation, storable(r.ArtworkID, r.ClaimID,
			millis(r.ExpiresAt), millis(r.HeldUntil), millis(r.CreatedAt))...).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		claimed = err == nil
		return err
	})
	if err != nil {
		return stock.Reservation{}, false, fail(err, "claim reservation of %s", r.ArtworkID)
	}
	if claimed {
		return r, true, nil
	}
	holder, err := d.Reservation(ctx, r.ArtworkID)
	switch {
	case err != nil:
		return stock.Reservation{}, false, err
	case holder == nil:
		// Rows are never deleted: a claim cannot lose to no row.
		return stock.Reservation{}, false, stock.Errorf(stock.Internal, "journal: claim of %s lost, but the artwork has no reservation", r.ArtworkID)
	}
	return *holder, false, nil
}

// SetReservationSession implements stock.Reservations.
func (d *DB) SetReservationSession(ctx context.Context, artworkID, claimID, sessionID string, at time.Time) error {
	return d.updateReservation(ctx, "set session of", artworkID,
		`UPDATE reservations SET session_id = $3, updated_at = $4 WHERE artwork_id = $1 AND claim_id = $2 AND state = 'open'`,
		artworkID, claimID, sessionID, millis(at))
}

// ReleaseReservation implements stock.Reservations.
func (d *DB) ReleaseReservation(ctx context.Context, artworkID, claimID string, at time.Time) error {
	err := d.updateReservation(ctx, "release", artworkID,
		`UPDATE reservations SET state = 'released', updated_at = $3 WHERE artwork_id = $1 AND claim_id = $2 AND state = 'open'`,
		artworkID, claimID, millis(at))
	if errors.Is(err, stock.ErrStale) {
		return nil // already ended or taken over: nothing of this claim to release
	}
	return err
}

// updateReservation runs an UPDATE of one open claim; ErrStale if no row
// matched.
func (d *DB) updateReservation(ctx context.Context, what, artworkID, query string, args ...any) error {
	err := d.write(ctx, func(ctx context.Context) error {
		res, err := d.writer().ExecContext(ctx, query, storable(args...)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = conflict(stock.ErrStale, "%s reservation of %s: the claim no longer holds", what, artworkID)
		}
		return err
	})
	if err != nil {
		return fail(err, "%s reservation of %s", what, artworkID)
	}
	return nil
}

// EndReservation implements stock.Reservations.
func (d *DB) EndReservation(ctx context.Context, sessionID string, state stock.ReservationState, at time.Time) (stock.Reservation, bool, error) {
	var (
		r     stock.Reservation
		ended bool
	)
	err := d.write(ctx, func(ctx context.Context) error {
		var err error
		r, err = scanReservation(d.writer().QueryRowContext(ctx,
			`UPDATE reservations SET state = $2, updated_at = $3 WHERE session_id = $1 AND state = 'open' RETURNING `+reservationCols,
			storable(sessionID, string(state), millis(at))...))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		ended = err == nil
		return err
	})
	if err != nil {
		return stock.Reservation{}, false, fail(err, "end reservation of session %s", sessionID)
	}
	return r, ended, nil
}

// Reservation implements stock.Reservations.
func (d *DB) Reservation(ctx context.Context, artworkID string) (*stock.Reservation, error) {
	r, err := scanReservation(d.read.QueryRowContext(ctx, `SELECT `+reservationCols+` FROM reservations WHERE artwork_id = $1`, storable(artworkID)...))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fail(err, "read reservation of %s", artworkID)
	}
	return &r, nil
}

// writer is where a write passed to d.write runs its statements: inside the
// committer's transaction on SQLite, on the pool on PostgreSQL.
func (d *DB) writer() interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
} {
	if d.w != nil {
		return d.w.conn
	}
	return d.db
}

func scanReservation(row *sql.Row) (stock.Reservation, error) {
	var (
		r                               stock.Reservation
		session                         sql.NullString
		expires, held, created, updated int64
	)
	if err := row.Scan(&r.ArtworkID, &r.ClaimID, &session, (*string)(&r.State), &expires, &held, &created, &updated); err != nil {
		return stock.Reservation{}, err
	}
	r.SessionID = session.String
	r.ExpiresAt, r.HeldUntil, r.CreatedAt, r.UpdatedAt = fromMillis(expires), fromMillis(held), fromMillis(created), fromMillis(updated)
	return r, nil
}
