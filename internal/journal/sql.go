package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"soldout/internal/stock"
)

// Column lists, in the order the scan functions read them.
const (
	eventCols = `id, type, created, livemode, session_id, artwork_ids, first_received, last_received, attempts, outcome, detail, last_error`
	saleCols  = `artwork_id, session_id, state, email, amount, currency, event_ids, applied_rev, lease_owner, lease_until, created_at, updated_at, version, waits_for`
)

// eventColsE is eventCols for a query that aliases events as e.
var eventColsE = "e." + strings.ReplaceAll(eventCols, ", ", ", e.")

// statements are prepared once, at Open. On SQLite the writes are prepared on
// the committer's connection and the reads on the read pool.
type statements struct {
	recordEvent                  *sql.Stmt
	addEventArtwork              *sql.Stmt // SQLite only
	finishEvent, insertSale      *sql.Stmt
	updateSale, settleSale       *sql.Stmt
	event, sales, salesBySession *sql.Stmt
}

// saleUpdate is the versioned rewrite of a sale row. UpdateSale returns the
// row it wrote; FinishEvent, which has no use for it, skips reading it back.
const saleUpdate = `UPDATE sales SET state = $3, email = $4, amount = $5, currency = $6, event_ids = $7,
		applied_rev = $8, lease_owner = $9, lease_until = $10, updated_at = $11, waits_for = $13, version = version + 1
	WHERE artwork_id = $1 AND session_id = $2 AND version = $12`

// keepOutcome is true when FinishEvent must leave the stored outcome alone.
const keepOutcome = `(outcome NOT IN ('', 'failed') AND $2 IN ('failed', 'duplicate'))`

type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// upsertEvent records a delivery: the first inserts the row, a redelivery
// only counts itself, so RETURNING gives the outcome from before it.
// last_received never moves back, whichever replica's clock is behind.
const upsertEvent = `INSERT INTO events (id, type, created, livemode, session_id, artwork_ids,
		first_received, last_received, attempts, outcome, detail, last_error, finished_at, payload)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1, '', '', '', 0, $8)
	ON CONFLICT (id) DO UPDATE SET
		attempts = events.attempts + 1,
		last_received = CASE WHEN excluded.last_received > events.last_received
			THEN excluded.last_received ELSE events.last_received END
	RETURNING ` + eventCols

// pgRecordEvent also writes event_artworks on the first delivery, from the
// artwork ids in $9, atomically with the event: one statement instead of a
// transaction's four round trips on the hottest write. SQLite, in process,
// runs addEventArtwork per artwork inside the committer's transaction.
const pgRecordEvent = `WITH e AS (` + upsertEvent + `),
	a AS (INSERT INTO event_artworks (artwork_id, first_received, event_id)
		SELECT art.id, e.first_received, e.id FROM e, unnest($9::text[]) AS art (id)
		WHERE e.attempts = 1
		ON CONFLICT DO NOTHING)
	SELECT ` + eventCols + ` FROM e`

type prepared struct {
	on  preparer
	st  **sql.Stmt
	sql string
}

func (st *statements) prepare(ctx context.Context, kind string, w, r preparer) error {
	ps := []prepared{{w, &st.recordEvent, pgRecordEvent}}
	if kind == kindSQLite {
		ps = []prepared{
			{w, &st.recordEvent, upsertEvent},
			// An event may name an artwork twice.
			{w, &st.addEventArtwork, `INSERT INTO event_artworks (artwork_id, first_received, event_id)
				VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`},
		}
	}
	ps = append(ps, []prepared{
		// A final outcome is never replaced by "failed" or "duplicate": a
		// replica that lost the race for an event (or merely saw it done)
		// must not overwrite what the winner recorded.
		{w, &st.finishEvent, `UPDATE events SET
				outcome = CASE WHEN ` + keepOutcome + ` THEN outcome ELSE $2 END,
				detail = CASE WHEN ` + keepOutcome + ` THEN detail ELSE $3 END,
				last_error = CASE WHEN ` + keepOutcome + ` THEN last_error ELSE $4 END,
				finished_at = $5
			WHERE id = $1`},
		// The primary key is the conflict target, so an existing (artwork,
		// session) row shows as no row inserted, never as a unique
		// violation. That matters because SQLite checks sales_one_active
		// first and would otherwise report an active duplicate as taken.
		{w, &st.insertSale, `INSERT INTO sales (` + saleCols + `)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			ON CONFLICT (artwork_id, session_id) DO NOTHING`},
		{w, &st.updateSale, saleUpdate + ` RETURNING ` + saleCols},
		{w, &st.settleSale, saleUpdate},
		{r, &st.event, `SELECT ` + eventCols + `, payload FROM events WHERE id = $1`},
		{r, &st.sales, `SELECT ` + saleCols + ` FROM sales WHERE artwork_id = $1 ORDER BY created_at, session_id`},
		{r, &st.salesBySession, `SELECT ` + saleCols + ` FROM sales WHERE session_id = $1 ORDER BY artwork_id`},
	}...)
	for _, p := range ps {
		var err error
		if *p.st, err = p.on.PrepareContext(ctx, p.sql); err != nil {
			return err
		}
	}
	return nil
}

// storable returns args with every string made stock.Text, in place.
// PostgreSQL's text refuses NUL and bytes that are not UTF-8, which a value
// from outside can hold (a Sanity revision, an id typed on the command
// line): refused, a write would fail on every retry, and a lookup would
// report the journal unavailable instead of "not found". Events arrive
// cleaned already (stock.Event.Clean), so lookups by their ids match.
func storable(args ...any) []any {
	for i, a := range args {
		if s, ok := a.(string); ok && !stock.IsText(s) {
			args[i] = stock.Text(s)
		}
	}
	return args
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// millis and fromMillis store times as unix milliseconds, 0 for the zero
// time.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// millisOr is millis(t), or millis(fallback) for the zero time.
func millisOr(t, fallback time.Time) int64 {
	if t.IsZero() {
		return millis(fallback)
	}
	return millis(t)
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// encodeList stores a list as a JSON array: ids come from Stripe metadata as
// sent, so no separator character is safe.
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

func decodeList(s string) ([]string, error) {
	if s == "[]" {
		return nil, nil
	}
	var l []string
	return l, json.Unmarshal([]byte(s), &l)
}

// filter builds the WHERE and LIMIT of a listing.
type filter struct {
	conds []string
	args  []any
}

// add appends a condition such as "type =" compared with v.
func (f *filter) add(cond string, v any) {
	f.args = append(f.args, storable(v)...)
	f.conds = append(f.conds, cond+" $"+strconv.Itoa(len(f.args)))
}

// addIn appends the condition that column is one of vs.
func (f *filter) addIn(column string, vs []string) {
	marks := make([]string, len(vs))
	for i, v := range stock.Texts(vs) {
		f.args = append(f.args, v)
		marks[i] = "$" + strconv.Itoa(len(f.args))
	}
	f.conds = append(f.conds, column+" IN ("+strings.Join(marks, ", ")+")")
}

func (f *filter) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// limit returns the LIMIT clause; n <= 0 means no limit.
func (f *filter) limit(n int) string {
	if n <= 0 {
		return ""
	}
	f.args = append(f.args, int64(n))
	return " LIMIT $" + strconv.Itoa(len(f.args))
}
