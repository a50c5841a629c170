package httpapi

import (
	"sync"
	"time"
)

// HoldLimiter caps the pieces one client holds in checkout at once, so that
// a script cannot reserve the whole catalogue for the length of a session:
// the request rate alone lets one address hold a thousand pieces. Clients
// are keyed as the rate limit keys them (IPv4 address, IPv6 /64). Each
// replica counts its own holds, so with several the cap is per replica.
type HoldLimiter struct {
	max int
	now func() time.Time

	mu    sync.Mutex
	holds map[string][]time.Time // client → when each of its holds ends
	swept time.Time
}

// NewHoldLimiter allows max holds per client; now is the clock (nil:
// time.Now).
func NewHoldLimiter(max int, now func() time.Time) *HoldLimiter {
	if now == nil {
		now = time.Now
	}
	return &HoldLimiter{max: max, now: now, holds: map[string][]time.Time{}}
}

// Allow reports whether client may take one more hold; when not, until is
// when its first hold ends.
func (l *HoldLimiter) Allow(client string) (ok bool, until time.Time) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	live := l.live(client, now)
	if len(live) < l.max {
		return true, time.Time{}
	}
	first := live[0]
	for _, t := range live[1:] {
		if t.Before(first) {
			first = t
		}
	}
	return false, first
}

// Add records a hold of client that lasts until until.
func (l *HoldLimiter) Add(client string, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holds[client] = append(l.live(client, l.now()), until)
}

// live drops client's ended holds and returns the others.
func (l *HoldLimiter) live(client string, now time.Time) []time.Time {
	var live []time.Time
	for _, t := range l.holds[client] {
		if t.After(now) {
			live = append(live, t)
		}
	}
	if len(live) == 0 {
		delete(l.holds, client)
	} else {
		l.holds[client] = live
	}
	return live
}

// sweep forgets the clients whose holds have all ended, once a minute, so
// that memory follows the clients holding something now.
func (l *HoldLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	for client := range l.holds {
		l.live(client, now)
	}
}
