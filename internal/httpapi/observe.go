package httpapi

import (
	"sync/atomic"
	"time"
)

// Observer is told what the HTTP layer did, for metrics; *metrics.Metrics
// implements it. It is an interface declared here, rather than the metrics
// type itself, so that httpapi and its tests build without Prometheus and a
// nil Config.Observer simply means "not observed".
type Observer interface {
	// ObserveWebhook counts a webhook request: the event's outcome
	// (OutcomeRejected when no event reached the pipeline, "failed" when
	// it was not applied) and the status answered.
	ObserveWebhook(outcome string, status int)
	SignatureFailure(reason string)
	// ObserveEvent times one run of Fulfiller.Handle; source is
	// SourceWebhook or SourceFulfil.
	ObserveEvent(source string, d time.Duration)
	// ObserveFulfil counts a POST /api/fulfil request, rate-limited ones
	// included.
	ObserveFulfil(outcome string, status int)
}

// Label values this package reports.
const (
	OutcomeRejected    = "rejected"     // the request never reached the pipeline
	OutcomeNotPaid     = "not_paid"     // /api/fulfil: the session is open or expired
	OutcomeRateLimited = "rate_limited" // /api/fulfil: 429
	SourceWebhook      = "webhook"
	SourceFulfil       = "fulfil"
)

type nopObserver struct{}

func (nopObserver) ObserveWebhook(string, int)         {}
func (nopObserver) SignatureFailure(string)            {}
func (nopObserver) ObserveEvent(string, time.Duration) {}
func (nopObserver) ObserveFulfil(string, int)          {}

// SanityContact remembers when soldout last heard a successful answer from
// Sanity, for /readyz. Its Observe method has the signature of
// sanity.Config.Observe; it costs one atomic store per request.
type SanityContact struct{ unixNano atomic.Int64 }

// Observe records a successful attempt; other results are ignored.
func (c *SanityContact) Observe(_, result string, _ time.Duration) {
	if result == "ok" {
		c.unixNano.Store(time.Now().UnixNano())
	}
}

// Last is the time of the last successful request, zero if none yet.
func (c *SanityContact) Last() time.Time {
	if n := c.unixNano.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// sinceMS is the duration_ms of a log line: milliseconds since start, to
// the microsecond.
func sinceMS(start time.Time) float64 { return float64(time.Since(start).Microseconds()) / 1000 }
