package main

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"soldout/internal/httpapi"
	"soldout/internal/journal"
	"soldout/internal/sanity"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// BenchmarkWebhook is one full webhook in process, the pipeline `soldout
// serve` wires, minus the inbound TCP connection: the handler reads,
// verifies, decodes and fulfils a paid event for a fresh artwork, with the
// journal on SQLite in b.TempDir() (synchronous commits) and Sanity the
// zero-latency fake over loopback HTTP. Profile it with
//
//	go test ./cmd/soldout-bench -run '^$' -bench Webhook -benchmem -cpuprofile cpu.out
//	go tool pprof -top cpu.out
func BenchmarkWebhook(b *testing.B) {
	for _, bb := range []struct {
		name        string
		parallelism int // × GOMAXPROCS goroutines; 0 runs serially
	}{{"serial", 0}, {"parallel-16", 8}} {
		b.Run(bb.name, func(b *testing.B) {
			h, send := newInProcess(b, b.N)
			var seq atomic.Int64
			webhook := func() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, send(int(seq.Add(1))-1))
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"outcome":"sold"`) {
					b.Errorf("%d %s", rec.Code, rec.Body)
				}
			}
			b.ReportAllocs()
			b.ResetTimer() // the setup seeded and built b.N events
			if bb.parallelism == 0 {
				for range b.N {
					webhook()
				}
				return
			}
			b.SetParallelism(bb.parallelism)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					webhook()
				}
			})
		})
	}
}

// newInProcess wires soldout's handler to a fresh journal and a fake seeded
// with n artworks, and returns it with a function that makes the i-th signed
// request (0 ≤ i < n).
func newInProcess(b *testing.B, n int) (http.Handler, func(i int) *http.Request) {
	fk, prefix, err := startSeeded(0, n)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fk.close)
	events := makeEvents(prefix, 0, n)
	db, err := journal.Open(context.Background(), filepath.Join(b.TempDir(), "journal.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewJSONHandler(discard{}, nil))
	catalog, err := sanity.New(sanity.Config{ProjectID: "bench", Dataset: fakeDataset, Token: fakeToken, Host: fk.url,
		MutationsPerSecond: math.Inf(1), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	secret := "whsec_bench_" + randomHex(16)
	verifier, err := stripehook.NewVerifier([]string{secret}, stripehook.DefaultTolerance)
	if err != nil {
		b.Fatal(err)
	}
	h := httpapi.NewServer(httpapi.Config{
		Logger: log, Verifier: verifier, Journal: db,
		Fulfiller: &stock.Fulfiller{Catalog: catalog, Journal: db, Logger: log, Owner: "bench"},
	})
	return h, func(i int) *http.Request {
		body := events[i].body
		req := httptest.NewRequest(http.MethodPost, "/api/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", stripehook.Sign(body, secret, time.Now()))
		return req
	}
}

// discard is io.Discard with a Write of its own, so that the logger pays for
// formatting a line, as it does on stdout.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
