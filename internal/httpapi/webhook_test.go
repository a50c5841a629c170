package httpapi

import (
	"log/slog"
	"testing"
	"time"

	"soldout/internal/stock"
)

// An event not applied is an ERROR, except when nothing is wrong and the
// retry settles it by itself: an operator woken at 3 a.m. by a burst of
// sales would find nothing to do.
func TestNotAppliedLevel(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want slog.Level
	}{
		{stock.Wrap(stock.Unavailable, stock.ErrBusy, "artwork a1"), slog.LevelWarn},
		{stock.Wrap(stock.Unavailable, stock.ErrPaced, "sanity mutate"), slog.LevelWarn},
		{stock.Errorf(stock.Unavailable, "sanity mutate: Sanity's rate limit pauses writes"), slog.LevelError},
		{stock.Errorf(stock.Misconfigured, "token refused"), slog.LevelError},
	} {
		if got := notAppliedLevel(tt.err); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.err, got, tt.want)
		}
	}
}

// The pipeline gets most of the budget, never all of it: a margin is left
// for recording the outcome and writing the answer before the sender (and
// Checkout's redirect) stops waiting.
func TestProcessingBudget(t *testing.T) {
	for _, budget := range []time.Duration{time.Second, 2 * time.Second, DefaultBudget, time.Minute} {
		got := processingBudget(budget)
		margin := min(time.Second, budget/2)
		if got > budget-margin || got < budget/2 {
			t.Errorf("processingBudget(%s) = %s, want between %s and %s: a margin of %s before the budget ends",
				budget, got, budget/2, budget-margin, margin)
		}
	}
}
