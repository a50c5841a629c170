package httpapi

import (
	"fmt"
	"log/slog"
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

// take refills b for the time since its last use and takes a token, or
// reports how long until one is free.
func (b *bucket) take(now time.Time, rate, burst float64) (ok bool, retryAfter time.Duration) {
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
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
	return b.take(now, l.rate, l.burst)
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

// SharedLimiter caps the storefront requests of all clients together. The
// per-client limit bounds one visitor; this bounds the crowd (or a script
// spread over many addresses), each of whose requests costs a Sanity read:
// without it, page loads alone could spend the project's API rate limit,
// and Sanity's 429s would pause the webhook's writes too (see
// sanity.Client). Over the cap a request gets 503 with Retry-After, as from
// an overloaded server: the client itself did nothing wrong.
type SharedLimiter struct {
	perSecond int
	lines     *refusals
	now       func() time.Time

	mu sync.Mutex
	b  bucket
}

// NewSharedLimiter allows perSecond storefront requests a second, with
// bursts of a second's worth; log hears about refusals, at most every
// refusalLogEvery.
func NewSharedLimiter(perSecond int, log *slog.Logger) *SharedLimiter {
	perSecond = max(perSecond, 1)
	return &SharedLimiter{perSecond: perSecond, lines: newRefusals(log), now: time.Now, b: bucket{tokens: float64(perSecond)}}
}

// Allow takes a token, or reports how long until one is free.
func (l *SharedLimiter) Allow() (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	if l.b.last.IsZero() {
		l.b.last = now
	}
	rate := float64(l.perSecond)
	ok, retryAfter = l.b.take(now, rate, rate)
	l.mu.Unlock()
	if !ok {
		if logNow, held := l.lines.allow("", now); logNow {
			refused := held + 1
			l.lines.log.Warn(fmt.Sprintf("storefront over SOLDOUT_STOREFRONT_RATE=%d requests a second, all clients together: %d answered 503 since the last such line; if these are buyers, raise it (Sanity allows about 500 API calls a second per client IP, the webhook's included; a checkout costs two), else something is loading the shop's pages in bulk", l.perSecond, refused),
				"refused", refused)
		}
	}
	return ok, retryAfter
}

// Limit wraps h: over the cap, 503 with Retry-After.
func (l *SharedLimiter) Limit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.Allow(); !ok {
			w.Header().Set("Retry-After", itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, stock.Errorf(stock.Unavailable, "the shop is busy; retry in a second"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
