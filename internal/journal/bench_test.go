package journal

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// Each benchmark runs serially (one webhook at a time: the latency of one
// synchronous commit) and with 32 concurrent callers (a burst of webhooks:
// throughput, where group commit pays off). cpu-µs/op is the process's CPU
// time per operation, user and system: the journal's share of soldout's
// CPU per event (on PostgreSQL without the server's own).
func benchBackends(b *testing.B, fn func(b *testing.B, d *DB, next func() string)) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			be.available(b)
			b.ReportAllocs()
			d := open(b, be.url(b))
			var n atomic.Int64
			next := func() string { return strconv.FormatInt(n.Add(1), 10) }
			b.Run("serial", func(b *testing.B) {
				defer reportCPU(b, cpuTime())
				for b.Loop() {
					fn(b, d, next)
				}
			})
			b.Run("parallel", func(b *testing.B) {
				defer reportCPU(b, cpuTime())
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

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/float64(time.Microsecond), "cpu-µs/op")
}

// samplePayload is the size and shape of a real checkout.session.completed
// body: the journal stores it with every event, and a row that big spills
// into an overflow page.
var samplePayload = stripehook.Sample{EventID: "evt_1QxYzAbCdEfGhIjKlMnOpQrS", Type: stock.CheckoutCompleted,
	SessionID: "cs_live_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V2w3X4y5Z6a7B8c9D0", ArtworkIDs: []string{"artwork-blue-horizon"},
	Email: "buyer@example.com", AmountTotal: 120000, Currency: "eur"}.JSON()

func BenchmarkRecordDelivery(b *testing.B) {
	benchBackends(b, func(b *testing.B, d *DB, next func() string) {
		n := next()
		ev := event("evt_"+n, stock.CheckoutCompleted, "cs_"+n, "art_"+n)
		if _, err := d.RecordDelivery(ctx, ev, t0); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkSaleCycle is the journal's share of one sold artwork, as the
// rules make it: record the event (staged), read the artwork's sales, insert
// the sale, then finish the event with the sale marked applied: two commits
// waited for.
func BenchmarkSaleCycle(b *testing.B) {
	benchBackends(b, func(b *testing.B, d *DB, next func() string) {
		saleCycle(b, d, next(), t0)
	})
}

func saleCycle(b *testing.B, d *DB, n string, at time.Time) {
	ev := event("evt_"+n, stock.CheckoutCompleted, "cs_"+n, "art_"+n)
	ev.Payload = samplePayload
	if _, err := d.RecordDelivery(ctx, ev, at); err != nil {
		b.Error(err)
		return
	}
	if _, err := d.Sales(ctx, "art_"+n); err != nil {
		b.Error(err)
		return
	}
	s := sale("art_"+n, "cs_"+n, stock.SaleSold)
	s.EventIDs, s.Version = []string{ev.ID}, 1
	if err := d.InsertSale(ctx, s); err != nil {
		b.Error(err)
		return
	}
	s.AppliedRev = "rev_" + n
	if err := d.FinishEvent(ctx, ev.ID, stock.OutcomeSold, "art_"+n+"=sold", "", at, s); err != nil {
		b.Error(err)
	}
}

// BenchmarkHistory shows that cost does not grow with history: the sale
// cycle on an empty journal and on one holding a million events over a
// thousand artworks (a thousand events each), and `events list --artwork X`
// on the latter. New events are stamped after the history, so that every
// index grows at its end as in production. The fill takes seconds, and runs
// only when this benchmark is asked for.
func BenchmarkHistory(b *testing.B) {
	const artworks = 1000
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			be.available(b)
			for _, history := range []int{0, 1_000_000} {
				b.Run(fmt.Sprint("events=", history), func(b *testing.B) {
					d := open(b, be.url(b))
					start := time.Now()
					if err := d.FillHistory(ctx, history, artworks); err != nil {
						b.Fatal(err)
					}
					b.Logf("filled %d events in %v", history, time.Since(start).Round(time.Millisecond))
					var seq atomic.Int64
					next := func() string { return strconv.FormatInt(seq.Add(1), 10) }
					b.Run("sale-cycle/serial", func(b *testing.B) {
						b.ReportAllocs()
						for b.Loop() {
							saleCycle(b, d, next(), time.Now())
						}
					})
					b.Run("sale-cycle/parallel", func(b *testing.B) {
						b.ReportAllocs()
						b.SetParallelism(16) // 16 × GOMAXPROCS callers
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								saleCycle(b, d, next(), time.Now())
							}
						})
					})
					if history == 0 {
						return
					}
					for _, limit := range []int{50, 0} {
						b.Run(fmt.Sprint("list-artwork/limit=", limit), func(b *testing.B) {
							b.ReportAllocs()
							i := 0
							for b.Loop() {
								i++
								recs, err := d.ListEvents(ctx, EventFilter{ArtworkID: HistoryArtworkID(i, artworks), Limit: limit})
								if err != nil || len(recs) == 0 {
									b.Fatalf("%d events, %v", len(recs), err)
								}
							}
						})
					}
				})
			}
		})
	}
}
