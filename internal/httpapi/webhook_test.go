package httpapi

import (
	"log/slog"
	"testing"

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
