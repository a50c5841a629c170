package journal

import (
	"context"
	"fmt"
)

// HistoryArtworkID names the k-th artwork (0 ≤ k < artworks) of FillHistory.
func HistoryArtworkID(k, artworks int) string { return fmt.Sprint("art_history_", k%artworks+artworks) }

// FillHistory appends n finished, sold checkout events spread evenly over
// artworks artwork ids (see HistoryArtworkID), with their event_artworks rows,
// received one millisecond apart and ending at the journal's clock, and the
// sale of each: n sales rows, each of a piece of its own (one artwork is
// sold once), so that the sales table and its indexes are as large as the
// events'. Payloads are 2.4 KB, a real Checkout event's size. It gives
// benchmarks a journal with a long past, so that they can show that the cost
// of an event does not grow with history. It writes with one statement per
// table, so a million events take seconds, not the hours that a million
// webhooks would.
func (d *DB) FillHistory(ctx context.Context, n, artworks int) error {
	if n <= 0 || artworks <= 0 {
		return nil
	}
	// Numbers of one length, n to 2n-1, make ids that sort in the order
	// they are made, so each index grows at its end, as in production.
	numbers := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d) `, n, 2*n-1)
	at := fmt.Sprint(d.now().UnixMilli()-int64(2*n), " + i")
	art := fmt.Sprint(`'art_history_' || (i % `, artworks, ` + `, artworks, `)`)
	// 2,400 characters that neither backend compresses away (PostgreSQL
	// compresses any pattern that repeats within 4 KB: 75 different md5s).
	payload := `hex(randomblob(1200))`
	if d.kind == kindPostgres {
		payload = `(SELECT string_agg(md5(i::text || '.' || j::text), '') FROM generate_series(1, 75) AS j)`
	}
	for _, q := range []string{
		numbers + `INSERT INTO events (id, type, created, livemode, session_id, artwork_ids,
				first_received, last_received, attempts, outcome, detail, last_error, finished_at, payload)
			SELECT 'evt_history_' || i, 'checkout.session.completed', ` + at + `, false, 'cs_history_' || i,
				'["' || ` + art + ` || '"]', ` + at + `, ` + at + `, 1, 'sold', ` + art + ` || '=sold', '', ` + at + `, ` + payload + ` FROM n`,
		numbers + `INSERT INTO event_artworks (artwork_id, first_received, event_id)
			SELECT ` + art + `, ` + at + `, 'evt_history_' || i FROM n ORDER BY 1, 2`,
		numbers + `INSERT INTO sales (` + saleCols + `)
			SELECT 'art_history_sold_' || i, 'cs_history_' || i, 'sold', 'buyer' || i || '@example.com', 120000, 'eur',
				'["evt_history_' || i || '"]', 'soldout-history-' || i, '', 0, ` + at + `, ` + at + `, 2, '' FROM n`,
		`ANALYZE`,
	} {
		err := d.write(ctx, func(ctx context.Context) error {
			exec := d.db.ExecContext
			if d.w != nil {
				exec = d.w.conn.ExecContext // inside the committer's transaction
			}
			_, err := exec(ctx, q)
			return err
		})
		if err != nil {
			return fail(err, "fill history")
		}
	}
	return nil
}
