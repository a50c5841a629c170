package httpapi

import (
	"context"
	"slices"
	"sync"
	"time"

	"soldout/internal/stock"
)

// HoldLimiter caps the pieces one client holds in checkout at once, so that
// a script cannot reserve the whole catalogue for the length of a session:
// the request rate alone lets one address hold a thousand pieces. Clients
// are keyed as the rate limit keys them (IPv4 address, IPv6 /64). Each
// replica counts its own holds, so with several the cap is per replica.
//
// A hold is counted from the moment its checkout starts to be opened, so
// that concurrent requests cannot all pass the check before any is
// counted, and it ends when its session's reservation does: paid, expired,
// released, or at the latest its HeldUntil.
type HoldLimiter struct {
	max          int
	reservations stock.Reservations // nil: a hold ends only with its time
	now          func() time.Time

	mu    sync.Mutex
	holds map[string][]*hold // by client
	swept time.Time
}

type hold struct {
	artworkID string
	sessionID string    // "" while its checkout is being opened
	until     time.Time // when it ends at the latest
}

// NewHoldLimiter allows perClient holds per client (at least one). reservations, when set, is
// asked at the cap which holds ended before their time (a buyer who paid
// may buy the next piece at once); now is the clock (nil: time.Now).
func NewHoldLimiter(perClient int, reservations stock.Reservations, now func() time.Time) *HoldLimiter {
	if now == nil {
		now = time.Now
	}
	return &HoldLimiter{max: max(perClient, 1), reservations: reservations, now: now, holds: map[string][]*hold{}}
}

// Take counts a hold of client for the checkout of artworkID it is about to
// open, which may take up to opening. When ok, the caller must call done
// once: with the session it opened and when that session's hold ends, or
// with "" when it opened none, which frees the hold. When not ok, until is
// when the client's first hold ends.
func (l *HoldLimiter) Take(ctx context.Context, client, artworkID string, opening time.Duration) (done func(sessionID string, until time.Time), ok bool, until time.Time) {
	now := l.now()
	h, first := l.tryTake(client, artworkID, now.Add(opening), now)
	if h == nil {
		l.dropEnded(ctx, client, now)
		h, first = l.tryTake(client, artworkID, now.Add(opening), now)
	}
	if h == nil {
		return nil, false, first
	}
	return l.done(client, h), true, time.Time{}
}

// tryTake adds a hold for client if it is under the cap; if not, it
// returns when the client's first hold ends.
func (l *HoldLimiter) tryTake(client, artworkID string, until, now time.Time) (*hold, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	live := l.live(client, now)
	if len(live) >= l.max {
		first := live[0].until
		for _, h := range live[1:] {
			if h.until.Before(first) {
				first = h.until
			}
		}
		return nil, first
	}
	h := &hold{artworkID: artworkID, until: until}
	l.holds[client] = append(live, h)
	return h, time.Time{}
}

func (l *HoldLimiter) done(client string, h *hold) func(string, time.Time) {
	var once sync.Once
	return func(sessionID string, until time.Time) {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if sessionID == "" {
				if left := slices.DeleteFunc(l.holds[client], func(o *hold) bool { return o == h }); len(left) > 0 {
					l.holds[client] = left
				} else {
					delete(l.holds, client)
				}
				return
			}
			h.sessionID, h.until = sessionID, until
		})
	}
}

// dropEnded asks the journal about client's opened holds and forgets those
// whose reservation is no longer this session's, open and live. A hold the
// journal cannot answer for stays: the cap errs towards holding.
func (l *HoldLimiter) dropEnded(ctx context.Context, client string, now time.Time) {
	if l.reservations == nil {
		return
	}
	l.mu.Lock()
	var opened []hold
	for _, h := range l.live(client, now) {
		if h.sessionID != "" {
			opened = append(opened, *h)
		}
	}
	l.mu.Unlock()
	var ended []hold
	for _, h := range opened {
		r, err := l.reservations.Reservation(ctx, h.artworkID)
		if err == nil && (r == nil || r.SessionID != h.sessionID || !r.Live(now)) {
			ended = append(ended, h)
		}
	}
	if len(ended) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holds[client] = slices.DeleteFunc(l.holds[client], func(o *hold) bool {
		return slices.ContainsFunc(ended, func(e hold) bool { return e.artworkID == o.artworkID && e.sessionID == o.sessionID })
	})
}

// live drops client's ended holds and returns the others.
func (l *HoldLimiter) live(client string, now time.Time) []*hold {
	live := slices.DeleteFunc(l.holds[client], func(h *hold) bool { return !h.until.After(now) })
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
