package httpapi

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"soldout/internal/stock"
)

// ClientLimiter is a per-client token bucket for the storefront routes, so
// that one visitor (or script) cannot make soldout hammer Stripe or Sanity.
// Clients are keyed by remote IP (an IPv6 client by its /64); behind a proxy
// that IP is the proxy's, so size the limit accordingly (see README).
type ClientLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewClientLimiter allows each client perMinute requests a minute, with
// bursts of up to burst.
func NewClientLimiter(perMinute, burst int) *ClientLimiter {
	return &ClientLimiter{rate: float64(perMinute) / 60, burst: float64(max(burst, 1)), now: time.Now, buckets: map[string]*bucket{}}
}

// Allow takes a token for client, or reports how long until one is free.
func (l *ClientLimiter) Allow(client string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[client]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[client] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops buckets that have refilled, so memory stays bounded by the
// number of clients active in the last few minutes.
func (l *ClientLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) > full {
			delete(l.buckets, k)
		}
	}
}

// Limit wraps h: over the limit, the client gets 429 with Retry-After.
func (l *ClientLimiter) Limit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.Allow(clientKey(r)); !ok {
			w.Header().Set("Retry-After", itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, stock.Errorf(stock.RateLimited, "too many requests from this client; retry in %s", wait.Round(time.Second)))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// clientKey is the bucket a request counts against: its IPv4 address, or
// the /64 of its IPv6 address. One IPv6 subscriber or host usually has a
// whole /64, so a key per address would give a script a fresh allowance for
// every address it picks from it.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if addr = addr.Unmap(); addr.Is6() {
		return netip.PrefixFrom(addr.WithZone(""), 64).Masked().String()
	}
	return addr.String()
}

func itoa(n int) string {
	if n < 1 {
		n = 1
	}
	return strconv.Itoa(n)
}
