package sanity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"soldout/internal/sanity/memlake"
	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// TestPacer drives the pacer with explicit times: no sleeping, no flakes.
func TestPacer(t *testing.T) {
	type step struct {
		now    int // ms after t0
		latest int // ms after t0; 0: none
		pause  int // ms after t0; when set the step pauses instead, reported at now
		want   int // slot start, ms after t0
		ok     bool
	}
	tests := []struct {
		name  string
		rate  float64
		steps []step
	}{
		{"evenly spaced, no burst", 4, []step{
			{now: 0, want: 0, ok: true},
			{now: 0, want: 250, ok: true},
			{now: 0, want: 500, ok: true},
			{now: 0, want: 750, ok: true},
			{now: 0, want: 1000, ok: true},
		}},
		{"idle time is not saved up", 4, []step{
			{now: 0, want: 0, ok: true},
			{now: 5000, want: 5000, ok: true},
			{now: 5000, want: 5250, ok: true},
		}},
		{"a slot past the deadline is refused and not consumed", 1, []step{
			{now: 0, want: 0, ok: true},
			{now: 0, latest: 500, want: 1000, ok: false},
			{now: 0, want: 1000, ok: true},
		}},
		{"pause delays everyone, then resumes without a burst", 10, []step{
			{now: 0, want: 0, ok: true},
			{now: 0, pause: 2000},
			{now: 10, want: 2100, ok: true},
			{now: 10, want: 2200, ok: true},
			{now: 10, want: 2300, ok: true},
		}},
		{"a pause while idle starts at its end", 10, []step{
			{now: 0, want: 0, ok: true},
			{now: 500, pause: 2000},
			{now: 600, want: 2000, ok: true},
			{now: 600, want: 2100, ok: true},
		}},
		{"an earlier pause does not shorten a later one", 10, []step{
			{now: 0, pause: 2000}, {now: 0, pause: 1000},
			{now: 0, want: 2000, ok: true},
		}},
		{"overlapping pauses shift by what is new", 10, []step{
			{now: 0, want: 0, ok: true},
			{now: 0, pause: 2000},
			{now: 0, pause: 2050},
			{now: 10, want: 2150, ok: true},
		}},
		{"fractional rate", 0.5, []step{
			{now: 0, want: 0, ok: true},
			{now: 0, want: 2000, ok: true},
		}},
		{"unlimited, except for pauses", math.Inf(1), []step{
			{now: 0, want: 0, ok: true}, {now: 0, want: 0, ok: true}, {now: 0, want: 0, ok: true},
			{now: 0, pause: 700},
			{now: 5, want: 700, ok: true}, {now: 5, want: 700, ok: true},
			{now: 800, want: 800, ok: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPacer(tt.rate)
			for i, s := range tt.steps {
				if s.pause != 0 {
					p.pause(at(s.now), at(s.pause))
					continue
				}
				var latest time.Time
				if s.latest != 0 {
					latest = at(s.latest)
				}
				got, _, ok := p.reserve(at(s.now), latest)
				if !got.Equal(at(s.want)) || ok != s.ok {
					t.Errorf("step %d: slot at %v ok=%v, want %v ok=%v", i, got.Sub(t0), ok, time.Duration(s.want)*time.Millisecond, s.ok)
				}
			}
		})
	}
}

// TestPacerNeverExceedsTheRate: however the requests come, no window of a
// second holds more slots than the rate (Sanity counts per second).
func TestPacerNeverExceedsTheRate(t *testing.T) {
	p := newPacer(25)
	var slots []time.Time
	for ms := 0; ms < 10000; ms += 7 {
		if ms%3000 == 0 {
			ms += 1500 // idle now and then
		}
		for range 3 {
			slot, _, _ := p.reserve(at(ms), time.Time{})
			slots = append(slots, slot)
		}
	}
	for i, s := range slots {
		n := 0
		for _, o := range slots[i:] {
			if o.Sub(s) < time.Second {
				n++
			}
		}
		if n > 25 {
			t.Fatalf("%d slots in the second from %v", n, s.Sub(t0))
		}
	}
}

// TestPauseShiftsReservedSlots: callers that reserved their slots before a
// rate limit was reported, and sleep until them, must not send into the
// window Sanity just refused; they keep their order and spacing after it,
// ahead of anyone who reserves later.
func TestPauseShiftsReservedSlots(t *testing.T) {
	p := newPacer(4)
	var slots []time.Time
	var marks []time.Duration
	for range 6 {
		slot, mark, _ := p.reserve(at(0), time.Time{})
		slots = append(slots, slot) // 0, 250, 500, … 1250 ms
		marks = append(marks, mark)
	}
	p.pause(at(10), at(600))
	var moved []time.Duration
	for i, slot := range slots {
		to, _ := p.moved(slot, marks[i])
		moved = append(moved, to.Sub(t0))
	}
	// The slot at 0 had come when the pause began, its caller not yet
	// sent: it goes at the pause's end, not 590 ms, inside it.
	if fmt.Sprint(moved) != "[600ms 840ms 1.09s 1.34s 1.59s 1.84s]" {
		t.Errorf("reserved slots moved to %v, want each by 590ms, none inside the pause", moved)
	}
	later, mark, _ := p.reserve(at(20), time.Time{})
	if later.Sub(t0) != 2090*time.Millisecond {
		t.Errorf("a slot reserved after the pause starts at %v, want 2.09s: behind the earlier callers", later.Sub(t0))
	}
	if to, _ := p.moved(later, mark); !to.Equal(later) {
		t.Errorf("a slot reserved after the pause is moved again, to %v", to.Sub(t0))
	}
}

// TestRateLimitPausesEveryMutation: one 429 makes the next mutation of any
// goroutine wait for retry-after, and a caller whose deadline comes first is
// refused without touching the server.
func TestRateLimitPausesEveryMutation(t *testing.T) {
	lake := memlake.New("production", "")
	rev := lake.Put(map[string]any{"_id": "X", "_type": "artwork"})
	f := sanitytest.Faulty(lake, sanitytest.Options{
		Sequence:   []sanitytest.Fault{sanitytest.RateLimited},
		RetryAfter: 3 * time.Second,
	})
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := New(Config{ProjectID: "p", Dataset: "production", Host: srv.URL, MutationsPerSecond: math.Inf(1)})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err = c.SetAvailable(ctx, "tx-1", false, []stock.Variant{{ID: "X", Rev: rev}})
	if stock.ErrorCode(err) != stock.Unavailable {
		t.Fatalf("err = %v, want Unavailable (retry-after exceeds the deadline)", err)
	}
	if slot, _, _ := c.pacer.reserve(time.Now(), time.Time{}); time.Until(slot) < 2*time.Second {
		t.Errorf("next mutation slot in %v, want about 3s", time.Until(slot))
	}

	ctx2, cancel2 := context.WithTimeout(t.Context(), time.Second)
	defer cancel2()
	err = c.SetAvailable(ctx2, "tx-2", false, []stock.Variant{{ID: "X", Rev: rev}})
	if stock.ErrorCode(err) != stock.Unavailable || f.Seen() != 1 {
		t.Errorf("second caller: err %v after %d requests; want Unavailable without a request", err, f.Seen())
	}
}

func TestRetryAfterHeaders(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	epoch := time.Now().Add(40 * time.Second).Unix()
	tests := []struct {
		name     string
		headers  map[string]string
		min, max time.Duration
	}{
		{"none", nil, 0, 0},
		{"seconds", map[string]string{"Retry-After": "2"}, 2 * time.Second, 2 * time.Second},
		{"http date", map[string]string{"Retry-After": date}, 85 * time.Second, 90 * time.Second},
		{"reset delay", map[string]string{"Ratelimit-Reset": "1"}, time.Second, time.Second},
		{"reset as unix time", map[string]string{"Ratelimit-Reset": strconv.FormatInt(epoch, 10)}, 35 * time.Second, 40 * time.Second},
		{"the longer wins", map[string]string{"Retry-After": "1", "Ratelimit-Reset": "3"}, 3 * time.Second, 3 * time.Second},
		{"capped", map[string]string{"Retry-After": "86400"}, maxRetryAfter, maxRetryAfter},
		{"past what a duration holds", map[string]string{"Retry-After": "100000000000"}, maxRetryAfter, maxRetryAfter},
		{"infinite", map[string]string{"Retry-After": "Inf"}, maxRetryAfter, maxRetryAfter},
		{"reset past what a duration holds", map[string]string{"Ratelimit-Reset": "1e300"}, maxRetryAfter, maxRetryAfter},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.headers {
			h.Set(k, v)
		}
		if got := retryAfter(h); got < tt.min || got > tt.max {
			t.Errorf("%s: %v, want within [%v, %v]", tt.name, got, tt.min, tt.max)
		}
	}
}

func TestParseAPIError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   APIError
	}{
		{"mutation error", 409,
			`{"error":{"type":"mutationError","description":"Mutation failed: x","items":[{"index":1,"error":{"type":"documentRevisionIDDoesNotMatchError","description":"d","id":"X","currentRevisionID":"a","expectedRevisionID":"b"}}]}}`,
			APIError{Status: 409, Type: "mutationError", Description: "Mutation failed: x", Items: []ItemError{{
				Index: 1, Type: "documentRevisionIDDoesNotMatchError", Description: "d", ID: "X", CurrentRevisionID: "a", ExpectedRevisionID: "b",
			}}}},
		{"top-level type", 409,
			`{"error":{"type":"transactionAlreadyExistsError","description":"Transaction exists"}}`,
			APIError{Status: 409, Type: "transactionAlreadyExistsError", Description: "Transaction exists"}},
		{"gateway shape", 401,
			`{"statusCode":401,"error":"Unauthorized","message":"Session not found","errorCode":"SIO-401-ANF"}`,
			APIError{Status: 401, Description: "Session not found", ErrorCode: "SIO-401-ANF"}},
		{"rate limit", 429, `{"message":"API rate limit exceeded"}`,
			APIError{Status: 429, Description: "API rate limit exceeded"}},
		{"html from a proxy", 502, "<html>502 Bad Gateway</html>\n",
			APIError{Status: 502, Description: "<html>502 Bad Gateway</html>"}},
	}
	for _, tt := range tests {
		got := parseAPIError(tt.status, http.Header{}, []byte(tt.body))
		if got.Status != tt.want.Status || got.Type != tt.want.Type || got.Description != tt.want.Description ||
			got.ErrorCode != tt.want.ErrorCode || len(got.Items) != len(tt.want.Items) {
			t.Errorf("%s: got %+v, want %+v", tt.name, *got, tt.want)
			continue
		}
		for i := range got.Items {
			if got.Items[i] != tt.want.Items[i] {
				t.Errorf("%s: item %+v, want %+v", tt.name, got.Items[i], tt.want.Items[i])
			}
		}
	}
}

// TestTooLateSaysWhose: a refused slot names what is in the way, Sanity's
// rate limit or soldout's own pacing of a burst, since an operator acts on
// the first and not on the second.
func TestTooLateSaysWhose(t *testing.T) {
	p := newPacer(25)
	if err := p.tooLate(at(0), at(900)); stock.ErrorCode(err) != stock.Unavailable || !errors.Is(err, stock.ErrPaced) || !strings.Contains(err.Error(), "SOLDOUT_SANITY_RATE, 25 writes a second") {
		t.Errorf("own pacing: %v", err)
	}
	p.pause(at(0), at(2000))
	if err := p.tooLate(at(0), at(2000)); !strings.Contains(err.Error(), "Sanity's rate limit") || errors.Is(err, stock.ErrPaced) {
		t.Errorf("Sanity's pause: %v", err)
	}
}

// TestPacerWaitsOutEveryLowRateSlot: below a thousand mutations a second a
// slot is waited for however near it is (only high rates take near slots at
// once), so that Sanity's 25 a second is never exceeded by an early start.
// A sleep never ends early: the lower bound cannot flake.
func TestPacerWaitsOutEveryLowRateSlot(t *testing.T) {
	p := newPacer(25)
	p.tat = time.Now().Add(minSleep / 2)
	start := time.Now()
	if err := p.wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < minSleep/2-50*time.Microsecond {
		t.Errorf("a slot %v ahead was taken after %v", minSleep/2, waited)
	}
}

// TestNoRetryWithoutTimeForIt fixes the backoff's jitter at zero (a 1 ms
// sleep), so that whether a retry is started depends only on the time left:
// it needs the sleep, the attempt's own time but at least minAttemptBudget,
// and the answer's margin. A read is used because reads are not paced (the
// pacer refuses a mutation with less than minAttemptBudget left by itself).
func TestNoRetryWithoutTimeForIt(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		retries func(n int) bool
		want    string
	}{
		// A 1 ms sleep and a fast attempt would fit in 15 ms; the budget
		// says an attempt may need 20.
		{"less than the attempt budget left", 15 * time.Millisecond, func(n int) bool { return n == 0 }, "no retry"},
		{"room for retries", 200 * time.Millisecond, func(n int) bool { return n >= 1 }, "at least one retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lake := memlake.New("production", "")
			lake.Put(map[string]any{"_id": "X", "_type": "artwork"})
			f := sanitytest.Faulty(lake, sanitytest.Options{Rate: 1, Fault: sanitytest.Error503, Match: func(*http.Request) bool { return true }})
			srv := httptest.NewServer(f)
			defer srv.Close()
			var retries atomic.Int32
			c, err := New(Config{ProjectID: "p", Dataset: "production", Host: srv.URL,
				Observe: func(_, result string, _ time.Duration) {
					if result == "retry" {
						retries.Add(1)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			c.jitter = func(time.Duration) time.Duration { return 0 }

			ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
			defer cancel()
			if _, err := c.Documents(ctx, "X"); stock.ErrorCode(err) != stock.Unavailable {
				t.Errorf("err = %v, want Unavailable", err)
			}
			if n := int(retries.Load()); !tt.retries(n) || f.Seen() != n+1 {
				t.Errorf("%d retries scheduled and %d requests in %v, want %s and one request more than retries", n, f.Seen(), tt.timeout, tt.want)
			}
		})
	}
}
