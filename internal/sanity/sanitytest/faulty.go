// Package sanitytest wraps a Sanity stand-in (usually a memlake.Lake) in an
// http.Handler that adds latency and fails requests the way Sanity and the
// proxies in front of it do, for tests of soldout's retry and recovery.
package sanitytest

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is what happens to one request.
type Fault int

const (
	// Pass forwards the request untouched.
	Pass Fault = iota
	// Error500 answers 500 with Sanity's gateway body; nothing is applied.
	Error500
	// Error503 answers 503 Service Unavailable; nothing is applied.
	Error503
	// RateLimited answers 429 with retry-after and ratelimit-* headers;
	// nothing is applied.
	RateLimited
	// CommitThenDrop forwards the request, so it commits, then drops the
	// connection without an answer: "did it commit?" for the client.
	CommitThenDrop
	// CommitThen502 forwards the request, then answers 502 as a proxy would
	// whose upstream answer was lost.
	CommitThen502
)

// Options configures Faulty. The zero value passes everything through.
type Options struct {
	// Latency is added before every request, faulted or not; up to Jitter
	// more is added at random.
	Latency, Jitter time.Duration
	// Sequence gives the faults of the first len(Sequence) matching
	// requests, in order (Pass lets one through).
	Sequence []Fault
	// FailFirst is how many matching requests after Sequence get Fault
	// (default Error503); after those, each gets it with probability Rate.
	FailFirst int
	Rate      float64
	Fault     Fault
	// RetryAfter is what RateLimited responses ask for, rounded up to whole
	// seconds as Sanity sends it; default one second.
	RetryAfter time.Duration
	// Seed makes Rate and Jitter reproducible.
	Seed uint64
	// Match picks the requests that may be faulted; default mutate requests.
	Match func(*http.Request) bool
}

// Handler is the faulty wrapper returned by Faulty.
type Handler struct {
	next http.Handler
	opts Options

	mu       sync.Mutex
	rng      *rand.Rand
	seen     int
	injected int
}

// Faulty wraps h.
func Faulty(h http.Handler, opts Options) *Handler {
	f := newHandler(opts)
	f.next = h
	return f
}

// FailMutates fails the first n mutate requests with status (429, 500 or
// 503) and Sanity's body for it, then passes requests on to next. It is
// middleware that is handed next on every request.
func FailMutates(status, n int) func(w http.ResponseWriter, r *http.Request, next http.Handler) {
	faults := map[int]Fault{http.StatusTooManyRequests: RateLimited, http.StatusInternalServerError: Error500, http.StatusServiceUnavailable: Error503}
	fault, ok := faults[status]
	if !ok {
		panic("sanitytest: FailMutates supports 429, 500 and 503")
	}
	return newHandler(Options{Fault: fault, FailFirst: n}).serve
}

// LoseFirstMutateResponse lets the first mutate request commit and then drops
// its connection without an answer; later requests pass on to next.
func LoseFirstMutateResponse() func(w http.ResponseWriter, r *http.Request, next http.Handler) {
	return newHandler(Options{Sequence: []Fault{CommitThenDrop}}).serve
}

func newHandler(opts Options) *Handler {
	if opts.Fault == Pass {
		opts.Fault = Error503
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Match == nil {
		opts.Match = IsMutate
	}
	return &Handler{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
}

// IsMutate matches requests to the mutate endpoint.
func IsMutate(r *http.Request) bool { return strings.Contains(r.URL.Path, "/data/mutate/") }

// Seen returns how many matching requests arrived.
func (f *Handler) Seen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

// Injected returns how many requests were given a fault.
func (f *Handler) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

func (f *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.serve(w, r, f.next) }

func (f *Handler) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	fault, delay := f.decide(r)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch fault {
	case Pass:
		next.ServeHTTP(w, r)
	case Error500:
		writeGateway(w, http.StatusInternalServerError, "An internal server error occurred")
	case Error503:
		writeGateway(w, http.StatusServiceUnavailable, "Service temporarily unavailable")
	case RateLimited:
		secs := strconv.Itoa(int((f.opts.RetryAfter + time.Second - 1) / time.Second))
		h := w.Header()
		h.Set("Retry-After", secs)
		h.Set("Ratelimit-Limit", "25")
		h.Set("Ratelimit-Remaining", "0")
		h.Set("Ratelimit-Reset", secs)
		h.Set("X-Ratelimit-Limit-Second", "25")
		h.Set("X-Ratelimit-Remaining-Second", "0")
		writeBody(w, http.StatusTooManyRequests, "application/json; charset=utf-8", `{"message":"API rate limit exceeded"}`)
	case CommitThenDrop:
		next.ServeHTTP(httptest.NewRecorder(), r)
		// The server closes the connection without writing a response.
		panic(http.ErrAbortHandler)
	case CommitThen502:
		next.ServeHTTP(httptest.NewRecorder(), r)
		writeBody(w, http.StatusBadGateway, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>\n")
	}
}

func (f *Handler) decide(r *http.Request) (Fault, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delay := f.opts.Latency
	if f.opts.Jitter > 0 {
		delay += time.Duration(f.rng.Int64N(int64(f.opts.Jitter)))
	}
	if !f.opts.Match(r) {
		return Pass, delay
	}
	fault := Pass
	switch after := f.seen - len(f.opts.Sequence); {
	case after < 0:
		fault = f.opts.Sequence[f.seen]
	case after < f.opts.FailFirst:
		fault = f.opts.Fault
	case f.opts.Rate > 0 && f.rng.Float64() < f.opts.Rate:
		fault = f.opts.Fault
	}
	f.seen++
	if fault != Pass {
		f.injected++
	}
	return fault, delay
}

func writeGateway(w http.ResponseWriter, status int, message string) {
	writeBody(w, status, "application/json; charset=utf-8",
		`{"statusCode":`+strconv.Itoa(status)+`,"error":"`+http.StatusText(status)+`","message":"`+message+`"}`)
}

func writeBody(w http.ResponseWriter, status int, contentType, body string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
