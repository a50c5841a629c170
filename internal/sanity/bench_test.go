package sanity_test

import (
	"errors"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"soldout/internal/sanity/memlake"
	"soldout/internal/stock"
)

// BenchmarkArtworkAndSetAvailable is soldout's hot path against memlake over
// loopback: read an artwork (two concurrent requests), then flip it with one
// guarded transaction. Collisions between goroutines on one artwork show up
// as revision mismatches and are counted, not failed.
func BenchmarkArtworkAndSetAvailable(b *testing.B) {
	lake := memlake.New("production", token)
	const artworks = 4096
	ids := make([]string, artworks)
	for i := range ids {
		ids[i] = "artwork-" + strconv.Itoa(i)
		putArtwork(lake, ids[i], map[string]any{"isAvailable": true})
		if i%4 == 0 {
			putArtwork(lake, "drafts."+ids[i], map[string]any{"isAvailable": true})
		}
	}
	srv := httptest.NewServer(lake) // no recorder or fault wrapper in the way
	defer srv.Close()
	c := newClient(b, srv.URL)
	var seq, mismatches atomic.Int64
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			art, err := c.Artwork(ctx, ids[n%artworks])
			if err != nil {
				b.Error(err)
				return
			}
			err = c.SetAvailable(ctx, "bench-"+strconv.FormatInt(n, 10), !art.Published.IsAvailable(), art.Variants())
			switch {
			case errors.Is(err, stock.ErrRevisionMismatch):
				mismatches.Add(1)
			case err != nil:
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(mismatches.Load())/float64(b.N), "mismatches/op")
}
