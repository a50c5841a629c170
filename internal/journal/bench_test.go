package journal

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"soldout/internal/stock"
)

// Each benchmark runs serially (one webhook at a time: the latency of one
// synchronous commit) and with 32 concurrent callers (a burst of webhooks:
// throughput, where group commit pays off).
func benchBackends(b *testing.B, fn func(b *testing.B, d *DB, next func() string)) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			be.available(b)
			d := open(b, be.url(b))
			var n atomic.Int64
			next := func() string { return strconv.FormatInt(n.Add(1), 10) }
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					fn(b, d, next)
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.SetParallelism(16) // 16 × GOMAXPROCS callers
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						fn(b, d, next)
					}
				})
			})
		})
	}
}

func BenchmarkRecordDelivery(b *testing.B) {
	benchBackends(b, func(b *testing.B, d *DB, next func() string) {
		n := next()
		ev := event("evt_"+n, stock.CheckoutCompleted, "cs_"+n, "art_"+n)
		if _, err := d.RecordDelivery(ctx, ev, t0); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkSaleCycle is the journal's share of one sold artwork: record the
// event, insert the held sale, mark it sold, finish the event.
func BenchmarkSaleCycle(b *testing.B) {
	benchBackends(b, func(b *testing.B, d *DB, next func() string) {
		n := next()
		ev := event("evt_"+n, stock.CheckoutCompleted, "cs_"+n, "art_"+n)
		if _, err := d.RecordDelivery(ctx, ev, t0); err != nil {
			b.Error(err)
			return
		}
		s := sale("art_"+n, "cs_"+n, stock.SaleHeld)
		s.EventIDs = []string{ev.ID}
		if err := d.InsertSale(ctx, s); err != nil {
			b.Error(err)
			return
		}
		s.State, s.AppliedRev = stock.SaleSold, "rev_"+n
		if _, err := d.UpdateSale(ctx, s); err != nil {
			b.Error(err)
			return
		}
		if err := d.FinishEvent(ctx, ev.ID, stock.OutcomeSold, "art_"+n+"=sold", "", t0); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkListEventsByArtwork1M measures `events list --artwork X` in a
// journal of a million events over a thousand artworks, a thousand events
// each. The fill is one statement per table, so it takes seconds, and runs
// only when this benchmark is asked for.
func BenchmarkListEventsByArtwork1M(b *testing.B) {
	const events, artworks = 1_000_000, 1000
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			be.available(b)
			d := open(b, be.url(b))
			start := time.Now()
			// Ids of one length sort in the order they are made, so each
			// index grows at its end, as it does in production.
			numbers := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d) `, events, 2*events-1)
			at := fmt.Sprint(t0.UnixMilli(), " + i")
			art := fmt.Sprint(`'art_' || (i % `, artworks, ` + `, artworks, `)`)
			execWrite(b, d, numbers+`INSERT INTO events (id, type, created, livemode, session_id, artwork_ids,
					first_received, last_received, attempts, outcome, detail, last_error, finished_at, payload)
				SELECT 'evt_' || i, 'checkout.session.completed', `+at+`, false, 'cs_' || i, '["' || `+art+` || '"]',
					`+at+`, `+at+`, 1, 'sold', '', '', `+at+`, '{}' FROM n`)
			b.Logf("events: %v", time.Since(start).Round(time.Millisecond))
			execWrite(b, d, numbers+`INSERT INTO event_artworks (artwork_id, first_received, event_id)
				SELECT `+art+`, `+at+`, 'evt_' || i FROM n ORDER BY 1, 2`)
			b.Logf("event_artworks: %v", time.Since(start).Round(time.Millisecond))
			execWrite(b, d, `ANALYZE`)
			b.Logf("filled %d events in %v", events, time.Since(start).Round(time.Millisecond))

			for _, limit := range []int{50, 0} {
				b.Run(fmt.Sprint("limit=", limit), func(b *testing.B) {
					i := 0
					for b.Loop() {
						i++
						recs, err := d.ListEvents(ctx, EventFilter{ArtworkID: fmt.Sprint("art_", i%artworks+artworks), Limit: limit})
						if err != nil || len(recs) == 0 {
							b.Fatalf("%d events, %v", len(recs), err)
						}
					}
				})
			}
		})
	}
}
