package httpapi

import (
	"fmt"
	"testing"
	"time"
)

// Clients whose holds have all ended are forgotten: memory follows the
// clients that hold something now, not every address ever seen.
func TestHoldLimiterForgets(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewHoldLimiter(1, func() time.Time { return now })
	for i := range 1000 {
		l.Add(fmt.Sprint("198.51.100.", i), now.Add(time.Minute))
	}
	if ok, until := l.Allow("198.51.100.7"); ok || !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("a client at its cap: ok=%v until %v", ok, until)
	}
	now = now.Add(2 * time.Minute)
	if ok, _ := l.Allow("203.0.113.1"); !ok {
		t.Fatal("a new client refused")
	}
	if n := len(l.holds); n != 0 {
		t.Errorf("%d clients kept after their holds ended", n)
	}
}
