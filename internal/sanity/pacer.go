package sanity

import (
	"context"
	"math"
	"sync"
	"time"

	"soldout/internal/stock"
)

// pacer is a token bucket kept as a "theoretical arrival time" (GCRA): tat
// is when the bucket will be full again, and a request may go once tat is
// no more than tau ahead of it. One pacer serves every goroutine, so a rate
// limit reported to one request slows them all.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration // one token; 0 disables pacing
	tau      time.Duration // (burst-1) tokens: how far tat may run ahead
	tat      time.Time
	paused   time.Time // no request starts before: a rate limit's reset
}

func newPacer(perSecond float64) *pacer {
	if math.IsInf(perSecond, 1) {
		return &pacer{}
	}
	burst := max(1, math.Ceil(perSecond))
	interval := time.Duration(float64(time.Second) / perSecond)
	return &pacer{interval: interval, tau: time.Duration(burst-1) * interval}
}

// reserve claims the next slot and returns when it starts. If that is after
// latest (zero: no limit) nothing is claimed and ok is false.
func (p *pacer) reserve(now, latest time.Time) (at time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tat := p.tat
	if tat.Before(now) {
		tat = now
	}
	at = tat.Add(-p.tau)
	if at.Before(now) {
		at = now
	}
	if !latest.IsZero() && at.After(latest) {
		return at, false
	}
	p.tat = tat.Add(p.interval)
	return at, true
}

// pause lets no request start before until, and then resumes at the steady
// rate rather than with a burst that would hit the limit again.
func (p *pacer) pause(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.paused) {
		p.paused = until
	}
	if t := until.Add(p.tau); t.After(p.tat) {
		p.tat = t
	}
}

// stillPaused reports whether a slot starting at at falls inside a pause:
// one reported after the slot was reserved, while its caller slept.
func (p *pacer) stillPaused(at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return at.Before(p.paused)
}

// wait blocks until the caller may send a mutation. It refuses at once when
// the slot would start too late for the request to finish before ctx's
// deadline.
func (p *pacer) wait(ctx context.Context) error {
	var latest time.Time
	if dl, ok := ctx.Deadline(); ok {
		latest = dl.Add(-minAttemptBudget)
	}
	for {
		now := time.Now()
		at, ok := p.reserve(now, latest)
		if !ok {
			return p.tooLate(now, at)
		}
		if d := at.Sub(now); d > 0 {
			if err := sleep(ctx, d); err != nil {
				return stock.Wrap(stock.Unavailable, err, "sanity mutate: waiting for the rate limit")
			}
		}
		// A slot reserved before a pause began is given up for one after
		// it: reserve places every new slot there.
		if !p.stillPaused(at) {
			return nil
		}
	}
}

// tooLate says why no slot before the deadline was free: Sanity's own rate
// limit, which an operator should look into if it lasts, or soldout's
// pacing of a burst of sales, which Stripe's retries spread out by
// themselves.
func (p *pacer) tooLate(now, at time.Time) error {
	p.mu.Lock()
	paused := p.paused.After(now)
	p.mu.Unlock()
	if paused {
		return stock.Errorf(stock.Unavailable, "sanity mutate: Sanity's rate limit (a 429 or ratelimit-remaining: 0) pauses writes until about %s, past the request deadline", at.Format(time.RFC3339Nano))
	}
	return stock.Wrap(stock.Unavailable, stock.ErrPaced, "sanity mutate: soldout's own pacing (SOLDOUT_SANITY_RATE, %.3g writes a second) has no slot before the request deadline; the next delivery gets one",
		float64(time.Second)/float64(p.interval))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
