package sanitytest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"soldout/internal/sanity/memlake"
	"soldout/internal/sanity/sanitytest"
)

const mutatePath = "/v2025-02-19/data/mutate/production?returnIds=true&visibility=sync"

func setup(t *testing.T, opts sanitytest.Options) (*memlake.Lake, *sanitytest.Handler, *httptest.Server) {
	t.Helper()
	lake := memlake.New("production", "")
	lake.Put(map[string]any{"_id": "X", "_type": "artwork", "n": 0})
	f := sanitytest.Faulty(lake, opts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return lake, f, srv
}

// post sends a create of id and returns the status (0 when no answer came)
// and the response.
func post(t *testing.T, srv *httptest.Server, id string) (int, *http.Response) {
	t.Helper()
	body := `{"mutations":[{"create":{"_id":"` + id + `","_type":"note"}}],"transactionId":"tx-` + id + `"}`
	resp, err := srv.Client().Post(srv.URL+mutatePath, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp
}

func TestSequence(t *testing.T) {
	lake, f, srv := setup(t, sanitytest.Options{Sequence: []sanitytest.Fault{
		sanitytest.Error500, sanitytest.Error503, sanitytest.RateLimited,
		sanitytest.CommitThenDrop, sanitytest.CommitThen502, sanitytest.Pass,
	}, RetryAfter: 1500 * time.Millisecond})

	tests := []struct {
		id        string
		status    int
		committed bool
	}{
		{"a", 500, false},
		{"b", 503, false},
		{"c", 429, false},
		{"d", 0, true},
		{"e", 502, true},
		{"f", 200, true},
		{"g", 200, true}, // past the sequence, Rate 0 passes
	}
	for _, tt := range tests {
		status, resp := post(t, srv, tt.id)
		if status != tt.status {
			t.Errorf("%s: status %d, want %d", tt.id, status, tt.status)
		}
		if _, ok := lake.Get(tt.id); ok != tt.committed {
			t.Errorf("%s: committed %v, want %v", tt.id, ok, tt.committed)
		}
		if status == 429 {
			for h, want := range map[string]string{"Retry-After": "2", "Ratelimit-Remaining": "0", "Ratelimit-Reset": "2", "Ratelimit-Limit": "25"} {
				if got := resp.Header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
		}
	}
	// Reads are not faulted by default.
	resp, err := srv.Client().Get(srv.URL + "/v2025-02-19/data/doc/production/X")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("doc read: %v %v", resp, err)
	}
	if f.Seen() != len(tests) || f.Injected() != 5 {
		t.Errorf("Seen %d Injected %d", f.Seen(), f.Injected())
	}
}

func TestRateIsSeeded(t *testing.T) {
	pattern := func() string {
		_, _, srv := setup(t, sanitytest.Options{Rate: 0.5, Seed: 7})
		var b strings.Builder
		for i := range 64 {
			status, _ := post(t, srv, "n"+strconv.Itoa(i))
			if status == 503 {
				b.WriteByte('F')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b := pattern(), pattern()
	if a != b {
		t.Errorf("same seed, different faults:\n%s\n%s", a, b)
	}
	if n := strings.Count(a, "F"); n < 16 || n > 48 {
		t.Errorf("%d of 64 failed at rate 0.5: %s", n, a)
	}
}

func TestLatencyAndMatch(t *testing.T) {
	_, f, srv := setup(t, sanitytest.Options{
		Latency:  30 * time.Millisecond,
		Sequence: []sanitytest.Fault{sanitytest.Error500},
		Match:    func(*http.Request) bool { return true },
	})
	start := time.Now()
	resp, err := srv.Client().Get(srv.URL + "/v2025-02-19/data/doc/production/X")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 || time.Since(start) < 30*time.Millisecond {
		t.Errorf("status %d after %v", resp.StatusCode, time.Since(start))
	}
	if f.Injected() != 1 {
		t.Errorf("Injected = %d", f.Injected())
	}
}

func TestMiddlewareHelpers(t *testing.T) {
	lake := memlake.New("production", "")
	var wrap func(http.ResponseWriter, *http.Request, http.Handler)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { wrap(w, r, lake) }))
	defer srv.Close()

	wrap = sanitytest.FailMutates(503, 2)
	var got []int
	for _, id := range []string{"a", "b", "c"} {
		status, _ := post(t, srv, id)
		got = append(got, status)
	}
	if want := []int{503, 503, 200}; !reflect.DeepEqual(got, want) {
		t.Errorf("FailMutates: statuses %v, want %v", got, want)
	}

	wrap = sanitytest.LoseFirstMutateResponse()
	if status, _ := post(t, srv, "d"); status != 0 {
		t.Errorf("first response arrived: %d", status)
	}
	if _, ok := lake.Get("d"); !ok {
		t.Error("the lost request did not commit")
	}
	if status, _ := post(t, srv, "e"); status != 200 {
		t.Errorf("second request: %d", status)
	}
}
