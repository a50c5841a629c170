package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"soldout/internal/stock"
)

// An event not applied is an ERROR, except when nothing is wrong and the
// retry settles it by itself: an operator woken at 3 a.m. by a burst of
// sales would find nothing to do. The message says, by the error's code,
// what the operator should do.
func TestNotApplied(t *testing.T) {
	for _, tt := range []struct {
		err     error
		want    slog.Level
		message string
	}{
		{stock.Wrap(stock.Unavailable, stock.ErrBusy, "artwork a1"), slog.LevelWarn, "nothing to do"},
		{stock.Wrap(stock.Unavailable, stock.ErrPaced, "sanity mutate"), slog.LevelWarn, "nothing to do"},
		{stock.Wrap(stock.Unavailable, stock.ErrStale, "another process changed a sale"), slog.LevelWarn, "nothing to do"},
		{stock.Wrap(stock.Unavailable, stock.ErrContended, "artwork a1 kept changing"), slog.LevelWarn, "nothing to do"},
		{stock.Errorf(stock.Unavailable, "sanity mutate: Sanity's rate limit pauses writes"), slog.LevelError, "status.sanity.io"},
		{stock.Errorf(stock.Misconfigured, "token refused"), slog.LevelError, "until a person fixes"},
		{errors.New("nil map"), slog.LevelError, "probably a bug"},
	} {
		level, msg := notApplied(tt.err)
		if level != tt.want || !strings.Contains(msg, tt.message) {
			t.Errorf("%v: %v %q, want %v and a message with %q", tt.err, level, msg, tt.want, tt.message)
		}
	}
}

// Refused and failed storefront requests are logged at the level of what
// the operator has to do about them.
func TestRefusalLevel(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want slog.Level
	}{
		{stock.Wrap(stock.Conflict, stock.ErrSold, "artwork a1"), slog.LevelInfo},
		{stock.Errorf(stock.Invalid, "bad id"), slog.LevelInfo},
		{stock.Errorf(stock.Unavailable, "sanity doc: connection refused"), slog.LevelWarn},
		{stock.Errorf(stock.Upstream, "stripe: 500"), slog.LevelWarn},
		{stock.Errorf(stock.Misconfigured, "token refused"), slog.LevelError},
		{errors.New("nil map"), slog.LevelError},
	} {
		if got := refusalLevel(tt.err); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.err, got, tt.want)
		}
	}
}

// One line per kind and interval: the first at once, the next after
// refusalLogEvery saying how many were held back; kinds are apart.
func TestRefusalsThrottle(t *testing.T) {
	r := newRefusals(slog.New(slog.DiscardHandler))
	t0 := time.Unix(1000, 0)
	steps := []struct {
		kind     string
		after    time.Duration
		ok       bool
		heldBack int
	}{
		{"a", 0, true, 0},
		{"a", time.Second, false, 0},
		{"b", time.Second, true, 0}, // another kind is not held back by a's line
		{"a", refusalLogEvery - time.Millisecond, false, 0},
		{"a", refusalLogEvery, true, 2},
		{"a", refusalLogEvery + time.Second, false, 0},
		{"a", 3 * refusalLogEvery, true, 1},
	}
	for i, s := range steps {
		if ok, held := r.allow(s.kind, t0.Add(s.after)); ok != s.ok || held != s.heldBack {
			t.Errorf("step %d (%s at +%v): ok=%v held=%d, want ok=%v held=%d", i, s.kind, s.after, ok, held, s.ok, s.heldBack)
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

// A browser reads the message of an error about its own request only; any
// other (a Sanity conflict, an outage, a setting) gets a generic one under
// the same status, since its details name the dataset, documents or
// settings.
func TestBrowsersSeeNoInternals(t *testing.T) {
	const detail = "sanity answered 409 mutationError: document art-1 in dataset production"
	for _, tt := range []struct {
		err    error
		status int
		told   bool
	}{
		{stock.Errorf(stock.Invalid, "not an artwork id: "+detail), http.StatusBadRequest, true},
		{stock.Errorf(stock.RateLimited, "too many requests: "+detail), http.StatusTooManyRequests, true},
		{stock.Errorf(stock.Conflict, detail), http.StatusConflict, false},
		{stock.Errorf(stock.Unavailable, detail), http.StatusServiceUnavailable, false},
		{stock.Errorf(stock.Misconfigured, detail), http.StatusInternalServerError, false},
		{errors.New(detail), http.StatusInternalServerError, false},
	} {
		for name, write := range map[string]func(http.ResponseWriter, error) int{"success page": writePublicError, "storefront": writeStorefrontError} {
			rec := httptest.NewRecorder()
			status := write(rec, tt.err)
			if status != tt.status || rec.Code != tt.status || strings.Contains(rec.Body.String(), detail) != tt.told {
				t.Errorf("%s, %v: %d %s; want %d, details shown: %v", name, tt.err, rec.Code, rec.Body, tt.status, tt.told)
			}
		}
	}
}

// The throttle keeps apart what a person fixes separately: the kinds of a
// storefront line name the artwork only when its own data is at fault, and
// a line's level is part of its kind.
func TestRefusalKinds(t *testing.T) {
	badPrice := stock.Errorf(stock.Misconfigured, "artwork a1: price 19.999 has more decimals than EUR")
	outage := stock.Errorf(stock.Unavailable, "sanity doc: connection refused")
	revoked := stock.Wrap(stock.Upstream, stock.Errorf(stock.Misconfigured, "STRIPE_SECRET_KEY was refused by Stripe"), "creating a checkout session")
	if refusalKind("checkout", badPrice, "a1") == refusalKind("checkout", badPrice, "a2") {
		t.Error("two artworks with bad prices share a kind")
	}
	if refusalKind("checkout", outage, "a1") != refusalKind("checkout", outage, "a2") {
		t.Error("an outage's lines are a kind per artwork")
	}
	if refusalLevel(revoked) != slog.LevelError {
		t.Errorf("a revoked key under an upstream failure: %v, want ERROR", refusalLevel(revoked))
	}

	r := newRefusals(slog.New(slog.DiscardHandler))
	now := time.Unix(1000, 0)
	for i := range maxRefusalKinds + 10 {
		if ok, _ := r.allow(fmt.Sprint("origin:", i), now); !ok && i < maxRefusalKinds {
			t.Fatalf("kind %d held back", i)
		}
	}
	if len(r.kinds) > maxRefusalKinds+1 {
		t.Errorf("%d kinds tracked, want at most %d and the shared one", len(r.kinds), maxRefusalKinds)
	}
	if ok, _ := r.allow("origin:new", now.Add(refusalLogEvery)); !ok {
		t.Error("once the old kinds could log again, a new kind is held back")
	}

	// A flood of new kinds at one instant does not evict the kinds that
	// just logged: past the cap they share one line, so the throttle still
	// bounds the lines.
	flood := newRefusals(slog.New(slog.DiscardHandler))
	logged := 0
	for i := range 3 * maxRefusalKinds {
		if ok, _ := flood.allow(fmt.Sprint("artwork:", i), now); ok {
			logged++
		}
	}
	if logged > maxRefusalKinds+1 {
		t.Errorf("%d lines for %d new kinds at once, want at most %d", logged, 3*maxRefusalKinds, maxRefusalKinds+1)
	}
}

// The throttle's interval is the documented 10 s, and a line after held-back
// ones says how many.
func TestRefusalsLogEvery10s(t *testing.T) {
	var out bytes.Buffer
	r := newRefusals(slog.New(slog.NewTextHandler(&out, nil)))
	t0 := time.Unix(1000, 0)
	r.allow("a@WARN", t0)
	r.allow("a@WARN", t0.Add(9*time.Second))
	if ok, held := r.allow("a@WARN", t0.Add(10*time.Second)); !ok || held != 1 {
		t.Errorf("10 s after a line: ok=%v held=%d, want a line saying 1 was held back", ok, held)
	}
	r.Log(context.Background(), slog.LevelWarn, "b", "first")
	r.Log(context.Background(), slog.LevelError, "b", "an error of the same kind is not hidden by a warning")
	if !strings.Contains(out.String(), "first") || !strings.Contains(out.String(), "not hidden") {
		t.Errorf("lines:\n%s", out.String())
	}
}
