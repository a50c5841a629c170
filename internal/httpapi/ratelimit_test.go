package httpapi

import (
	"net/http"
	"net/http/httptest"
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
