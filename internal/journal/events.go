package journal

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"soldout/internal/stock"
)

// RecordDelivery records that ev arrived at at. The first delivery stores the
// row, the payload and one event_artworks row per artwork; later ones bump
// attempts and last_received. It returns the row as stored, whose Outcome is
// the one from before this delivery. The returned record carries no payload:
// the caller holds it, and Event reads it back.
//
// On SQLite, a delivery still to be processed returns before its row is
// committed: FinishEvent, which the webhook waits for before its 2xx, fails
// if this row was lost with its batch, so the answer to Stripe still means
// that both are on disk. A delivery of a finished event, answered at once,
// waits for the commit.
func (d *DB) RecordDelivery(ctx context.Context, ev stock.Event, at time.Time) (stock.EventRecord, error) {
	ids, evID := stock.Texts(ev.Session.ArtworkIDs), stock.Text(ev.ID)
	received := millis(at)
	args := storable(evID, ev.Type, millis(ev.Created), ev.Livemode, ev.Session.ID, encodeList(ids), received, string(ev.Payload))
	rec, err := stage(ctx, d, func(ctx context.Context) (stock.EventRecord, error) {
		if d.kind == kindPostgres {
			return scanEvent(d.st.recordEvent.QueryRowContext(ctx, append(args, ids)...), nil)
		}
		rec, err := scanEvent(d.st.recordEvent.QueryRowContext(ctx, args...), nil)
		if err != nil || rec.Attempts > 1 {
			return rec, err
		}
		for _, id := range ids {
			if _, err := d.st.addEventArtwork.ExecContext(ctx, id, received, evID); err != nil {
				return rec, err
			}
		}
		return rec, nil
	}, func(rec stock.EventRecord) bool { return !rec.Outcome.Final() })
	if err != nil {
		return stock.EventRecord{}, fail(err, "record event %s", ev.ID)
	}
	return rec, nil
}

// FinishEvent stores the outcome of processing an event and, in the same
// transaction, the sale rows the processing settled, each under UpdateSale's
// version check: if one was written by somebody else meanwhile, nothing is
// stored and the error wraps ErrStale. An event that is not in the journal
// is an Unavailable error, so that Stripe delivers it again: its recorded
// delivery was lost with a failed commit.
func (d *DB) FinishEvent(ctx context.Context, eventID string, outcome stock.Outcome, detail, lastError string, at time.Time, settled ...stock.Sale) error {
	finished := millis(at)
	// Rows in one order for every transaction: two that settle the same
	// rows (a release also records the other buyers' rows it decided from)
	// would otherwise lock them in opposite orders on PostgreSQL and wait on
	// each other until its deadlock check, a second later.
	settled = slices.SortedFunc(slices.Values(settled), func(a, b stock.Sale) int {
		return cmp.Or(strings.Compare(a.ArtworkID, b.ArtworkID), strings.Compare(a.SessionID, b.SessionID))
	})
	err := d.atomically(ctx, len(settled) > 0, func(ctx context.Context, st func(*sql.Stmt) *sql.Stmt) error {
		for _, s := range settled {
			if err := settleSale(ctx, st(d.st.settleSale), s, millisOr(s.UpdatedAt, at)); err != nil {
				return err
			}
		}
		// detail and lastError may quote what an event or Sanity sent.
		res, err := st(d.st.finishEvent).ExecContext(ctx, storable(eventID, string(outcome), detail, lastError, finished)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = stock.Errorf(stock.Unavailable, "journal: finish event %s: its delivery is not in the journal (the commit that recorded it failed); Stripe will deliver it again", eventID)
		}
		return err
	})
	if err != nil {
		return fail(err, "finish event %s", eventID)
	}
	return nil
}

// EventFilter selects events for ListEvents and CountEvents. Zero fields do
// not filter.
type EventFilter struct {
	Since     time.Time // first received at or after
	Before    time.Time // first received before
	Type      string
	Outcomes  []stock.Outcome // any of these; "" is an unfinished event
	ArtworkID string
	Limit     int // at most this many; 0 for all
}

// where builds the FROM and WHERE of f into q, and returns them with the
// ORDER BY of newest first by first delivery.
func (f EventFilter) where(q *filter) (from, order string) {
	from, received, order := " FROM events e", "e.first_received", " ORDER BY e.first_received DESC, e.id DESC"
	if f.ArtworkID != "" {
		// Walk the artwork's slice of event_artworks' primary key, newest
		// first, and stop at the limit.
		from = " FROM event_artworks a JOIN events e ON e.id = a.event_id"
		received, order = "a.first_received", " ORDER BY a.first_received DESC, a.event_id DESC"
		q.add("a.artwork_id =", f.ArtworkID)
	}
	if !f.Since.IsZero() {
		q.add(received+" >=", millis(f.Since))
	}
	if !f.Before.IsZero() {
		q.add(received+" <", millis(f.Before))
	}
	if f.Type != "" {
		q.add("e.type =", f.Type)
	}
	if len(f.Outcomes) > 0 {
		outcomes := make([]string, len(f.Outcomes))
		for i, o := range f.Outcomes {
			outcomes[i] = string(o)
		}
		q.addIn("e.outcome", outcomes)
	}
	return from + q.where(), order
}

// ListEvents returns the events that match f, newest first by first
// delivery, without their payloads.
func (d *DB) ListEvents(ctx context.Context, f EventFilter) ([]stock.EventRecord, error) {
	var q filter
	from, order := f.where(&q)
	query := "SELECT " + eventColsE + from + order + q.limit(f.Limit)
	rows, err := d.read.QueryContext(ctx, query, q.args...)
	if err != nil {
		return nil, fail(err, "list events")
	}
	defer rows.Close()
	var recs []stock.EventRecord
	for rows.Next() {
		r, err := scanEvent(rows, nil)
		if err != nil {
			return nil, fail(err, "list events")
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(err, "list events")
	}
	return recs, nil
}

// CountEvents counts the events that match f, its Limit aside.
func (d *DB) CountEvents(ctx context.Context, f EventFilter) (int, error) {
	var q filter
	from, _ := f.where(&q)
	var n int
	if err := d.read.QueryRowContext(ctx, "SELECT count(*)"+from, q.args...).Scan(&n); err != nil {
		return 0, fail(err, "count events")
	}
	return n, nil
}

// Event returns one event with its payload, or a NotFound error.
func (d *DB) Event(ctx context.Context, id string) (stock.EventRecord, error) {
	var payload []byte
	r, err := scanEvent(d.st.event.QueryRowContext(ctx, storable(id)...), &payload)
	if errors.Is(err, sql.ErrNoRows) {
		return stock.EventRecord{}, stock.Errorf(stock.NotFound, "journal: no event %s", id)
	}
	if err != nil {
		return stock.EventRecord{}, fail(err, "read event %s", id)
	}
	r.Payload = payload
	return r, nil
}

// scanEvent reads eventCols and, if payload is not nil, the payload after
// them.
func scanEvent(sc scanner, payload *[]byte) (stock.EventRecord, error) {
	var (
		r                    stock.EventRecord
		created, first, last int64
		ids                  string
	)
	dest := []any{&r.ID, &r.Type, &created, &r.Livemode, &r.SessionID, &ids, &first, &last,
		&r.Attempts, (*string)(&r.Outcome), &r.Detail, &r.LastError}
	if payload != nil {
		dest = append(dest, payload)
	}
	if err := sc.Scan(dest...); err != nil {
		return stock.EventRecord{}, err
	}
	var err error
	if r.ArtworkIDs, err = decodeList(ids); err != nil {
		return stock.EventRecord{}, err
	}
	r.Created, r.FirstReceived, r.LastReceived = fromMillis(created), fromMillis(first), fromMillis(last)
	return r, nil
}
