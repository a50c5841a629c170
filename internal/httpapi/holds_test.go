package httpapi

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Clients whose holds have all ended are forgotten: memory follows the
// clients that hold something now, not every address ever seen.
func TestHoldLimiterForgets(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewHoldLimiter(1, nil, func() time.Time { return now })
	for i := range 1000 {
		done, ok, _ := l.Take(context.Background(), fmt.Sprint("198.51.100.", i), "a1", time.Second)
		if !ok {
			t.Fatalf("client %d refused its first hold", i)
		}
		done("cs_1", now.Add(time.Minute))
	}
	if _, ok, until := l.Take(context.Background(), "198.51.100.7", "a2", time.Second); ok || !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("a client at its cap: ok=%v until %v", ok, until)
	}
	now = now.Add(2 * time.Minute)
	done, ok, _ := l.Take(context.Background(), "203.0.113.1", "a1", time.Second)
	if !ok {
		t.Fatal("a new client refused")
	}
	done("", time.Time{}) // opened nothing: freed
	if n := len(l.holds); n != 0 {
		t.Errorf("%d clients kept after their holds ended", n)
	}
}

// At the cap, the client is told when its first hold ends, not its last.
func TestHoldLimiterSaysWhenTheFirstHoldEnds(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewHoldLimiter(2, nil, func() time.Time { return now })
	for _, h := range []struct {
		artwork string
		ends    time.Duration
	}{{"a1", 30 * time.Minute}, {"a2", 10 * time.Minute}} {
		done, ok, _ := l.Take(context.Background(), "198.51.100.1", h.artwork, time.Second)
		if !ok {
			t.Fatalf("hold of %s refused", h.artwork)
		}
		done("cs_"+h.artwork, now.Add(h.ends))
	}
	if _, ok, until := l.Take(context.Background(), "198.51.100.1", "a3", time.Second); ok || !until.Equal(now.Add(10*time.Minute)) {
		t.Errorf("a third hold: ok=%v, until %v; want refused until the first end, %v", ok, until, now.Add(10*time.Minute))
	}
}
