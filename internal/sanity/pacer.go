package sanity

import (
	"context"
	"math"
	"sync"
	"time"

	"soldout/internal/stock"
)

// pacer spaces mutations evenly, one per interval: a burst would let twice
// the rate through in the second after an idle period (the burst, then the
// steady rate), over a limit that Sanity counts per second. tat is the next
// free slot. One pacer serves every goroutine, so a rate limit reported to
// one request slows them all.
//
// A rate limit's pause moves every slot reserved so far, and the free one,
// later by the same shift, so that callers keep their order and spacing:
// the longest waiters, the nearest to their deadline, still go first, and
// the end of the pause brings no burst.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration // between two mutations; 0 disables pacing
	tat      time.Time
	paused   time.Time     // no request starts before: a rate limit's reset
	shifted  time.Duration // all the pauses' shifts so far
}

func newPacer(perSecond float64) *pacer {
	if math.IsInf(perSecond, 1) {
		return &pacer{}
	}
	return &pacer{interval: time.Duration(float64(time.Second) / perSecond)}
}

// reserve claims the next slot and returns when it starts, and the shift
// so far (for moved). If the slot is after latest (zero: no limit) nothing
// is claimed and ok is false.
func (p *pacer) reserve(now, latest time.Time) (at time.Time, mark time.Duration, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at = p.tat
	if at.Before(now) {
		at = now
	}
	if !latest.IsZero() && at.After(latest) {
		return at, p.shifted, false
	}
	p.tat = at.Add(p.interval)
	return at, p.shifted, true
}

// moved returns where the pauses reported since mark moved a slot reserved
// at mark, and the new mark. A slot that had already come when the pause
// began, its caller not yet on its way, goes at the pause's end.
func (p *pacer) moved(at time.Time, mark time.Duration) (time.Time, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shifted == mark {
		return at, mark
	}
	at = at.Add(p.shifted - mark)
	if at.Before(p.paused) {
		at = p.paused
	}
	return at, p.shifted
}

// pause lets no request start before until, reported at now: every slot
// not yet started moves past it by the same shift.
func (p *pacer) pause(now, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := now
	if p.paused.After(from) {
		from = p.paused // what an earlier pause already covers
	}
	if !until.After(from) {
		return
	}
	shift := until.Sub(from)
	p.shifted += shift
	p.paused = until
	if p.tat.Before(now) {
		p.tat = until
	} else {
		p.tat = p.tat.Add(shift)
	}
}

// wait blocks until the caller may send a mutation. It refuses at once when
// the slot would start too late for the request to finish before ctx's
// deadline.
func (p *pacer) wait(ctx context.Context) error {
	var latest time.Time
	if dl, ok := ctx.Deadline(); ok {
		latest = dl.Add(-minAttemptBudget)
	}
	now := time.Now()
	at, mark, ok := p.reserve(now, latest)
	for {
		if !ok {
			return p.tooLate(now, at)
		}
		if d := at.Sub(now); d >= minSleep || d > 0 && p.interval >= minSleep {
			if err := sleep(ctx, d); err != nil {
				return stock.Wrap(stock.Unavailable, err, "sanity mutate: waiting for the rate limit")
			}
		}
		// A pause reported while this caller slept moved its slot.
		moved, newMark := p.moved(at, mark)
		if newMark == mark {
			return nil
		}
		at, mark, now = moved, newMark, time.Now()
		ok = latest.IsZero() || !at.After(latest)
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

// minSleep: at rates of over a thousand a second, a slot less than this
// ahead is taken at once. Sleeping a few microseconds costs a timer and two
// goroutine switches, more than a mutation's share of such a rate (the
// benchmark's 1e6 a second lost 6 % of its CPU per event to it), and the
// timer is not that precise anyway. The schedule itself does not move, so
// the rate holds on average. At lower rates, Sanity's 25 a second among
// them, every slot is waited for exactly.
const minSleep = time.Millisecond

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
