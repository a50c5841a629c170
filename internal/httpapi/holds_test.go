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
