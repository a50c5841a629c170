// Package sanity is soldout's client for Sanity's Content Lake HTTP API and
// the stock.Catalog built on it. It speaks only the live API (never the CDN,
// whose cached reads would be stale right before a write), retries what is
// safe to retry, paces mutations below Sanity's rate limit, and classifies
// every failure into soldout's stock error vocabulary.
package sanity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"soldout/internal/stock"
)

const (
	// DefaultAPIVersion is the pinned API date: the first one whose raw
	// perspective includes release versions, which Artwork must see.
	DefaultAPIVersion = "2025-02-19"
	// DefaultMutationsPerSecond is Sanity's documented per-IP mutation limit.
	DefaultMutationsPerSecond = 25
	// MinMutationsPerSecond is the slowest pacing accepted: slower, every
	// sale of a burst but the first would wait out the webhook's budget
	// (and far slower overflows the interval, pacing nothing).
	MinMutationsPerSecond = 1
)

// Endpoint names as passed to Config.Observe.
const (
	endpointDoc    = "doc"
	endpointQuery  = "query"
	endpointMutate = "mutate"
)

// Endpoints lists every endpoint name Config.Observe may be called with.
var Endpoints = []string{endpointDoc, endpointQuery, endpointMutate}

const (
	maxAttempts = 6
	baseBackoff = 50 * time.Millisecond
	maxBackoff  = time.Second
	// minAttemptBudget is the least time a retry needs before the deadline;
	// below it the retry could only end as a deadline error, too late for
	// the caller to answer its own client.
	minAttemptBudget = 20 * time.Millisecond
	// maxGetURL is where queries switch from GET to POST: proxies and
	// Sanity's front end refuse URLs much longer than this.
	maxGetURL = 8 << 10
	// maxResponse bounds what is read from one response: the two largest
	// documents Sanity stores (32 MB each: a published artwork and its
	// draft), and room for the envelope. Refusing less would leave such an
	// artwork impossible to mark sold.
	maxResponse = 2*32_000_000 + 1<<20
)

// Config configures a Client.
type Config struct {
	ProjectID string
	Dataset   string
	// Token is a robot token with the Editor role. It may be empty only when
	// Host points at a local stand-in.
	Token string
	// APIVersion is a date like 2025-02-19 (a leading "v" is accepted);
	// empty means DefaultAPIVersion. Earlier dates are refused: they hide
	// release versions from the raw perspective.
	APIVersion string
	// Host is an optional base URL such as http://127.0.0.1:7777; empty
	// means https://<ProjectID>.api.sanity.io. The apicdn host is refused.
	Host string
	// HTTPClient is optional; the default keeps up to 128 idle connections
	// per host alive so that a busy process does not reconnect.
	HTTPClient *http.Client
	// MutationsPerSecond paces mutate requests for the whole process (one
	// Client); 0 means DefaultMutationsPerSecond, +Inf disables pacing.
	MutationsPerSecond float64
	// Logger receives debug lines about retries; nil discards them. The
	// token is never logged.
	Logger *slog.Logger
	// Observe, when set, is called after every HTTP attempt with endpoint
	// "doc", "query" or "mutate", a result of "ok", "4xx", "409", "429",
	// "5xx", "network" or "bad_response" (a 2xx that is not Sanity's
	// answer), and the
	// attempt's duration; and with result "retry" and the backoff delay
	// each time a retry is scheduled.
	Observe func(endpoint, result string, d time.Duration)
}

// Client talks to one dataset. It is safe for concurrent use; create one per
// process so that all goroutines share its connections and mutation pacing.
type Client struct {
	project   string
	dataset   string
	docURL    string // ends with "/", ids are appended
	queryURL  string
	mutateURL string // with returnIds and visibility
	auth      []string
	token     []byte // only to take it out of error bodies that quote it
	hc        *http.Client
	log       *slog.Logger
	observe   func(endpoint, result string, d time.Duration)
	pacer     *pacer
	jitter    func(ceiling time.Duration) time.Duration // rand.N; tests fix it
}

var (
	projectIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$`)
	// Dataset names are lowercase; "~" marks a dataset alias.
	datasetPattern = regexp.MustCompile(`^~?[a-z0-9][a-z0-9_-]{0,63}$`)
)

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if !ValidProjectID(cfg.ProjectID) {
		return nil, stock.Errorf(stock.Misconfigured, "sanity: project id %q is not a Sanity project id (letters, digits and '-')", cfg.ProjectID)
	}
	if !ValidDataset(cfg.Dataset) {
		return nil, stock.Errorf(stock.Misconfigured, "sanity: dataset %q is not a Sanity dataset name (lowercase letters, digits, '_' and '-', at most 64)", cfg.Dataset)
	}
	version, err := apiVersion(cfg.APIVersion)
	if err != nil {
		return nil, err
	}
	base, err := baseURL(cfg)
	if err != nil {
		return nil, err
	}
	if strings.ContainsFunc(cfg.Token, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return nil, stock.Errorf(stock.Misconfigured, "sanity: the token contains spaces, control or non-ASCII characters; paste it again")
	}
	if cfg.Token == "" && cfg.Host == "" {
		return nil, stock.Errorf(stock.Misconfigured, "sanity: a token is required: create a robot token with the Editor role in sanity.io/manage → API → Tokens")
	}
	rate := cfg.MutationsPerSecond
	switch {
	case rate == 0:
		rate = DefaultMutationsPerSecond
	case rate < MinMutationsPerSecond || math.IsNaN(rate):
		return nil, stock.Errorf(stock.Misconfigured, "sanity: MutationsPerSecond must be at least %v, got %v", MinMutationsPerSecond, rate)
	}

	c := &Client{
		project:   cfg.ProjectID,
		dataset:   cfg.Dataset,
		docURL:    base + "/v" + version + "/data/doc/" + cfg.Dataset + "/",
		queryURL:  base + "/v" + version + "/data/query/" + cfg.Dataset,
		mutateURL: base + "/v" + version + "/data/mutate/" + cfg.Dataset + "?returnIds=true&visibility=sync",
		hc:        cfg.HTTPClient,
		log:       cfg.Logger,
		observe:   cfg.Observe,
		pacer:     newPacer(rate),
		jitter:    rand.N[time.Duration],
	}
	if cfg.Token != "" {
		c.auth, c.token = []string{"Bearer " + cfg.Token}, []byte(cfg.Token)
	}
	if c.hc == nil {
		c.hc = defaultHTTPClient()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.observe == nil {
		c.observe = func(string, string, time.Duration) {}
	}
	return c, nil
}

func apiVersion(v string) (string, error) {
	if v == "" {
		return DefaultAPIVersion, nil
	}
	v = strings.TrimPrefix(v, "v")
	if problem := APIVersionProblem(v); problem != "" {
		return "", stock.Errorf(stock.Misconfigured, "sanity: API version %q: %s", v, problem)
	}
	return v, nil
}

// CheckHost is New's rule for Config.Host (with the token it would carry):
// nil when host is usable or empty.
func CheckHost(host, token string) error {
	if host == "" {
		return nil
	}
	_, err := baseURL(Config{Host: host, Token: token})
	return err
}

// ValidProjectID and ValidDataset are New's rules for Config.ProjectID and
// Config.Dataset, for callers that check settings before building a Client.
func ValidProjectID(id string) bool { return projectIDPattern.MatchString(id) }

// ValidDataset: see ValidProjectID.
func ValidDataset(name string) bool { return datasetPattern.MatchString(name) }

// APIVersionProblem says what is wrong with an API version date (without
// its leading "v"), or "" when New accepts it.
func APIVersionProblem(v string) string {
	if _, err := time.Parse(time.DateOnly, v); err != nil {
		return "not a date like " + DefaultAPIVersion
	}
	// ISO dates compare as strings.
	if v < DefaultAPIVersion {
		return "older than " + DefaultAPIVersion + ", which is needed to see release versions"
	}
	return ""
}

func baseURL(cfg Config) (string, error) {
	if cfg.Host == "" {
		return "https://" + strings.ToLower(cfg.ProjectID) + ".api.sanity.io", nil
	}
	u, err := url.Parse(cfg.Host)
	if err == nil && u.User != nil {
		// Not echoed: it holds a password.
		return "", stock.Errorf(stock.Misconfigured, "sanity: the host URL must not contain credentials; the token goes in Token")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", stock.Errorf(stock.Misconfigured, "sanity: host %q is not a base URL like https://<project>.api.sanity.io", cfg.Host)
	}
	if strings.HasSuffix(strings.ToLower(u.Hostname()), "apicdn.sanity.io") {
		return "", stock.Errorf(stock.Misconfigured, "sanity: host %q is Sanity's CDN, whose cached reads go stale after writes; use https://<project>.api.sanity.io", cfg.Host)
	}
	if u.Scheme == "http" && cfg.Token != "" && !isLoopback(u.Hostname()) {
		return "", stock.Errorf(stock.Misconfigured, "sanity: host %q is plain http to another machine, which would send the token unencrypted; use https, or http only on this machine (localhost, 127.0.0.1, ::1)", cfg.Host)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// isLoopback is true for a host that cannot leave this machine: a
// stand-in or a proxy in front of Sanity may be reached over plain http
// there, anywhere else a token would cross the network in clear.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	// Guards callers that pass no deadline against a server that never
	// answers. Unlike http.Client.Timeout it adds no per-request context.
	t.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: t}
}

// bufPool holds response buffers; oversized ones are dropped, not kept.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// do sends one request, retrying 429, 5xx, transactionConflictError and
// network errors with jittered exponential backoff while ctx leaves time for
// another attempt. It returns the number of attempts made and nil, an
// *APIError, a network or context error, or an already classified
// *stock.Error. A 2xx body is decoded into out unless out is nil.
func (c *Client) do(ctx context.Context, endpoint, method, target string, body []byte, out any) (int, error) {
	for attempt := 1; ; attempt++ {
		if endpoint == endpointMutate {
			if err := c.pacer.wait(ctx); err != nil {
				return attempt - 1, err
			}
		}
		start := time.Now()
		err := c.attempt(ctx, endpoint, method, target, body, out)
		elapsed := time.Since(start)
		c.observe(endpoint, resultClass(err), elapsed)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return attempt, err
		}
		delay := c.backoff(attempt, err)
		if attempt >= maxAttempts {
			return attempt, err
		}
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			if left < delay+max(elapsed, minAttemptBudget)+answerMargin(left) {
				// Sleeping would leave no time for the retry: answer now, while
				// the caller can still tell its own client to come back later.
				return attempt, err
			}
		}
		c.observe(endpoint, "retry", delay)
		c.log.DebugContext(ctx, "sanity request failed, retrying",
			"endpoint", endpoint, "attempt", attempt, "delay", delay, "err", err)
		if serr := sleep(ctx, delay); serr != nil {
			return attempt, fmt.Errorf("%w; last failure: %w", serr, err)
		}
	}
}

// attempt runs send under a deadline a little before ctx's, so that even a
// hanging request leaves the caller time to answer.
func (c *Client) attempt(ctx context.Context, endpoint, method, target string, body []byte, out any) error {
	dl, ok := ctx.Deadline()
	if !ok {
		return c.send(ctx, endpoint, method, target, body, out)
	}
	actx, cancel := context.WithDeadline(ctx, dl.Add(-answerMargin(time.Until(dl))))
	defer cancel()
	return c.send(actx, endpoint, method, target, body, out)
}

// answerMargin is how much of the time left is kept back for the caller: a
// twentieth, at most 50 ms.
func answerMargin(left time.Duration) time.Duration {
	return max(0, min(left/20, 50*time.Millisecond))
}

// send makes one HTTP attempt.
func (c *Client) send(ctx context.Context, endpoint, method, target string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return stock.Wrap(stock.Internal, err, "sanity %s: building the request", endpoint)
	}
	if c.auth != nil {
		req.Header["Authorization"] = c.auth
	}
	req.Header["Accept"] = jsonContentType
	if body != nil {
		req.Header["Content-Type"] = jsonContentType
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		_ = resp.Body.Close()
	}()

	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxResponse+1)); err != nil {
		return err
	}
	if buf.Len() > maxResponse {
		return stock.Errorf(stock.Internal, "sanity %s: response larger than %d bytes", endpoint, maxResponse)
	}

	if resp.StatusCode == http.StatusTooManyRequests || resp.Header.Get("ratelimit-remaining") == "0" {
		// Every goroutine's next mutation waits for the window to reset,
		// instead of each finding the limit on its own. A read's limit
		// pauses mutations too: they count towards the same 500 API calls
		// a second. Reads are not paced; a limited read retries after the
		// wait its own answer gives (backoff).
		now := time.Now()
		c.pacer.pause(now, now.Add(rateLimitWait(resp.Header)))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			return nil
		}
		// A 2xx that is not Sanity's answer (a proxy's HTML page, an empty
		// object) is no statement about the dataset: read as "nothing
		// there", it would let a sale or a release answer 200 with Sanity
		// left wrong. The event fails instead, and its next delivery reads
		// again (a write that did commit is recognised by its revision).
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			return stock.Wrap(stock.Unavailable, err, "sanity %s: answered %d with a body that is not Sanity's JSON (a proxy in between?)", endpoint, resp.StatusCode)
		}
		if a, ok := out.(answer); ok {
			if key := a.missing(); key != "" {
				return stock.Errorf(stock.Unavailable, "sanity %s: answered %d without %q: not Sanity's answer (a proxy in between?)", endpoint, resp.StatusCode, key)
			}
		}
		return nil
	}
	// An error body that quotes the request (a proxy's, a debugging
	// gateway's) must not carry the token into logs and the journal.
	answer := buf.Bytes()
	if len(c.token) > 0 {
		answer = bytes.ReplaceAll(answer, c.token, redactedToken)
	}
	return parseAPIError(resp.StatusCode, resp.Header, answer)
}

var redactedToken = []byte("[SANITY_API_TOKEN]")

var jsonContentType = []string{"application/json"}

// answer is a 2xx body that can tell whether it has the key Sanity always
// sends for its endpoint.
type answer interface {
	missing() string // the absent key, or ""
}

func retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.transient()
	}
	var se *stock.Error
	return !errors.As(err, &se) // network errors; classified errors are final
}

// backoff is full jitter over an exponential ceiling, but never shorter than
// what the server asked for.
func (c *Client) backoff(attempt int, err error) time.Duration {
	ceiling := min(maxBackoff, baseBackoff<<(attempt-1))
	d := c.jitter(ceiling) + time.Millisecond
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > d {
		d = ae.RetryAfter + c.jitter(baseBackoff)
	}
	return d
}

func resultClass(err error) string {
	if err == nil {
		return "ok"
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		var se *stock.Error
		if errors.As(err, &se) {
			return "bad_response"
		}
		return "network"
	}
	switch {
	case ae.Status == http.StatusTooManyRequests:
		return "429"
	case ae.Status == http.StatusConflict:
		return "409"
	case ae.Status >= 500:
		return "5xx"
	default:
		return "4xx"
	}
}
