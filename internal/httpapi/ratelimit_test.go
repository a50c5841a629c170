package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestClientLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewClientLimiter(60, 3) // one a second, bursts of three
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("fourth: ok=%v wait=%s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another client was limited")
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("no token after a second")
	}
	now = now.Add(10 * time.Minute)
	l.Allow("c")
	if _, kept := l.buckets["b"]; kept {
		t.Fatal("idle buckets are never dropped")
	}
}

// TestSharedLimiter: a second's worth at once, then one token per
// 1/rate; the refusals are logged at most once per refusalLogEvery, with
// how many there were.
func TestSharedLimiter(t *testing.T) {
	var logged bytes.Buffer
	now := time.Unix(1000, 0)
	l := NewSharedLimiter(2, slog.New(slog.NewTextHandler(&logged, nil)))
	l.now = func() time.Time { return now }
	for i := range 2 {
		if ok, _ := l.Allow(); !ok {
			t.Fatalf("request %d of the first second refused", i)
		}
	}
	ok, wait := l.Allow()
	if ok || wait <= 0 || wait > time.Second/2 {
		t.Fatalf("third: ok=%v wait=%s, want refused for at most half a second", ok, wait)
	}
	l.Allow() // refused: not logged again
	if n := strings.Count(logged.String(), "SOLDOUT_STOREFRONT_RATE=2"); n != 1 {
		t.Fatalf("%d log lines for two refusals in a burst, want 1:\n%s", n, logged.String())
	}
	now = now.Add(time.Second / 2)
	if ok, _ := l.Allow(); !ok {
		t.Fatal("no token after half a second at 2 a second")
	}
	l.Allow() // refused: the second since the line
	now = now.Add(refusalLogEvery)
	l.Allow() // refilled: allowed
	l.Allow()
	l.Allow() // the third since the line, reported with the two before
	if !strings.Contains(logged.String(), "refused=3") {
		t.Errorf("the second line does not count the refusals since the first:\n%s", logged.String())
	}
}

func TestLimitAnswers429(t *testing.T) {
	l := NewClientLimiter(1, 1)
	h := l.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	codes := []int{}
	for range 2 {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/checkout", nil)
		req.RemoteAddr = "203.0.113.7:5555"
		h.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
		if rec.Code == http.StatusTooManyRequests && rec.Header().Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if codes[0] != http.StatusNoContent || codes[1] != http.StatusTooManyRequests {
		t.Fatalf("codes %v", codes)
	}
}

func TestClientKey(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"203.0.113.7:5555", "203.0.113.7"},
		{"[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb:cccc:dddd:eeee]:443", "2001:db8:1:2::/64"}, // the same subscriber
		{"[2001:db8:1:3::1]:443", "2001:db8:1:3::/64"},
		{"[::ffff:203.0.113.7]:5555", "203.0.113.7"}, // IPv4 on a dual-stack socket
		{"[fe80::1%eth0]:443", "fe80::/64"},
		{"not-an-address", "not-an-address"},
	} {
		req := httptest.NewRequest(http.MethodPost, "/api/checkout", nil)
		req.RemoteAddr = tt.remote
		if got := clientKey(req); got != tt.want {
			t.Errorf("clientKey(%s) = %s, want %s", tt.remote, got, tt.want)
		}
	}
}
