package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"soldout/internal/httpapi"
	"soldout/internal/journal"
	"soldout/internal/sanity"
	"soldout/internal/sanity/memlake"
	"soldout/internal/stock"
	"soldout/internal/stripeapi"
	"soldout/internal/stripeapi/stripetest"
	"soldout/internal/stripehook"
)

// fulfilEnv is the server on a real SQLite journal, the in-memory Sanity
// stand-in and the stateful Stripe fake, reached through the real stripe-go
// client.
type fulfilEnv struct {
	lake    *memlake.Lake
	stripe  *stripetest.Server
	journal *journal.DB
	obs     *recorder
	h       http.Handler
	cfg     httpapi.Config // what h was made of, for a test to change and rebuild
	logs    *logLines      // the server's and the pipeline's log lines
}

// fulfilSecret is the webhook signing secret of newFulfilEnv's server.
const fulfilSecret = "whsec_fulfil_test_0123456789"

func newFulfilEnv(t testing.TB, withKey bool, limiter *httpapi.ClientLimiter) *fulfilEnv {
	t.Helper()
	e := &fulfilEnv{lake: memlake.New("production", "sk-test"), stripe: stripetest.New(), obs: &recorder{}, logs: &logLines{}}
	t.Cleanup(e.stripe.Close)
	lakeSrv := httptest.NewServer(e.lake)
	t.Cleanup(lakeSrv.Close)
	db, err := journal.Open(context.Background(), filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.journal = db
	contact := new(httpapi.SanityContact)
	catalog, err := sanity.New(sanity.Config{ProjectID: "test", Dataset: "production", Token: "sk-test", Host: lakeSrv.URL,
		MutationsPerSecond: 1000, Observe: contact.Observe})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, nil))
	verifier, err := stripehook.NewVerifier([]string{fulfilSecret}, stripehook.DefaultTolerance)
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{
		Logger: log, Verifier: verifier, Journal: db,
		Fulfiller: &stock.Fulfiller{Catalog: catalog, Journal: db, Logger: log, Owner: "test"},
		Observer:  e.obs, Sanity: contact, Limiter: limiter,
	}
	if withKey {
		cfg.Sessions, err = stripeapi.New(stripeapi.Config{SecretKey: stripetest.SecretKey, APIBase: e.stripe.URL(), MaxNetworkRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.cfg = cfg
	e.h = httpapi.NewServer(cfg)
	return e
}

func (e *fulfilEnv) artwork(id string) {
	e.lake.Put(map[string]any{"_id": id, "_type": "artwork", "isAvailable": true})
}

func (e *fulfilEnv) session(id, status, payment, artwork string) {
	e.stripe.Put(stripetest.Session{ID: id, Status: status, PaymentStatus: payment, Currency: "eur", AmountTotal: 90000,
		Email: "buyer@example.com", Metadata: map[string]string{"artworkId": artwork}})
}

func (e *fulfilEnv) available(id string) any {
	d, _ := e.lake.Get(id)
	return d["isAvailable"]
}

// post sends body with contentType from client and decodes the JSON answer.
func (e *fulfilEnv) post(t *testing.T, contentType, body, client string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/fulfil", strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.RemoteAddr = client + ":4242"
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, rec.Body)
	}
	return rec, m
}

func jsonBody(id string) string { return `{"session_id":"` + id + `"}` }

func TestFulfil(t *testing.T) {
	e := newFulfilEnv(t, true, httpapi.NewClientLimiter(6000, 100))
	for _, id := range []string{"art-paid", "art-open", "art-delayed", "art-broken", "art-webhook"} {
		e.artwork(id)
	}
	e.session("cs_test_paid", stripetest.StatusComplete, stripetest.PaymentPaid, "art-paid")
	e.session("cs_test_open", stripetest.StatusOpen, stripetest.PaymentUnpaid, "art-open")
	e.session("cs_test_expired", stripetest.StatusExpired, stripetest.PaymentUnpaid, "art-open")
	e.session("cs_test_delayed", stripetest.StatusComplete, stripetest.PaymentUnpaid, "art-delayed")
	e.session("cs_test_broken", stripetest.StatusComplete, stripetest.PaymentPaid, "art-broken")

	const form = "application/x-www-form-urlencoded"
	const js = "application/json"
	tests := []struct {
		name        string
		before      func()
		contentType string
		body        string
		status      int
		outcome     string // the answer's outcome, or its error code
		artwork     string // whose isAvailable to check afterwards
		available   any
	}{
		{name: "paid session", contentType: js, body: jsonBody("cs_test_paid"), status: 200, outcome: "sold", artwork: "art-paid", available: false},
		{name: "repeated, as a form", contentType: form, body: "session_id=cs_test_paid", status: 200, outcome: "duplicate", artwork: "art-paid", available: false},
		{name: "unknown session", contentType: js, body: jsonBody("cs_test_nothere"), status: 404, outcome: "not_found"},
		{name: "open session", contentType: js, body: jsonBody("cs_test_open"), status: 200, outcome: "not_paid", artwork: "art-open", available: true},
		{name: "expired session", contentType: js, body: jsonBody("cs_test_expired"), status: 200, outcome: "not_paid", artwork: "art-open", available: true},
		{name: "delayed payment", contentType: js, body: jsonBody("cs_test_delayed"), status: 200, outcome: "held", artwork: "art-delayed", available: false},
		{name: "delayed payment, money arrived", contentType: js, body: jsonBody("cs_test_delayed"), status: 200, outcome: "sold", artwork: "art-delayed", available: false,
			before: func() {
				e.session("cs_test_delayed", stripetest.StatusComplete, stripetest.PaymentPaid, "art-delayed")
			}},
		{name: "Stripe fails", contentType: js, body: jsonBody("cs_test_broken"), status: 503, outcome: "unavailable", artwork: "art-broken", available: true,
			before: func() { e.stripe.FailNext(1, http.StatusInternalServerError) }},
		{name: "Stripe back", contentType: js, body: jsonBody("cs_test_broken"), status: 200, outcome: "sold", artwork: "art-broken", available: false},
		{name: "not a session id", contentType: js, body: jsonBody("cs_test_../../v1/customers"), status: 400, outcome: "invalid"},
		{name: "another kind of id", contentType: form, body: "session_id=pi_123", status: 400, outcome: "invalid"},
		{name: "no session id", contentType: form, body: "", status: 400, outcome: "invalid"},
		{name: "bad JSON", contentType: js, body: `{"session_id":`, status: 400, outcome: "invalid"},
		{name: "plain text", contentType: "text/plain", body: "cs_test_paid", status: 400, outcome: "invalid"},
		{name: "oversize body", contentType: js, body: `{"x":"` + strings.Repeat("a", 8<<10) + `"}`, status: 413, outcome: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			rec, m := e.post(t, tt.contentType, tt.body, "203.0.113.1")
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %v", rec.Code, tt.status, m)
			}
			if rec.Code == 200 {
				if m["outcome"] != tt.outcome {
					t.Errorf("outcome %v, want %s", m["outcome"], tt.outcome)
				}
				if _, ok := m["artworks"].([]any); !ok || m["session_id"] == nil {
					t.Errorf("answer lacks session_id or an artworks list: %v", m)
				}
			} else {
				if m["code"] != tt.outcome || m["error"] == nil {
					t.Errorf("error answer %v, want code %s and a message", m, tt.outcome)
				}
				if msg := fmt.Sprint(m["error"]); rec.Code >= 500 && (strings.Contains(msg, "stripe") || strings.Contains(msg, "req_")) {
					t.Errorf("a 5xx answer shows internals to the browser: %q", msg)
				}
			}
			if tt.artwork != "" && e.available(tt.artwork) != tt.available {
				t.Errorf("%s isAvailable = %v, want %v", tt.artwork, e.available(tt.artwork), tt.available)
			}
			if got := e.obs.last(); got != fmt.Sprintf("fulfil %s %d", tt.outcome, tt.status) {
				t.Errorf("observed %q", got)
			}
		})
	}

	// The journal holds the success page's events like Stripe's, with a
	// payload saying where they came from.
	rec, err := e.journal.Event(context.Background(), "fulfil:cs_test_paid:paid")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Outcome != stock.OutcomeSold || rec.SessionID != "cs_test_paid" || !strings.Contains(string(rec.Payload), `"source":"POST /api/fulfil"`) {
		t.Errorf("journaled event: %+v, payload %s", rec, rec.Payload)
	}
	if n := e.stripe.Requests(stripetest.EndpointRetrieve); n != 9 {
		t.Errorf("Stripe was asked %d times; ids refused before it should not reach it", n)
	}
	if n := e.obs.count("event fulfil"); n != 5 {
		t.Errorf("pipeline runs observed: %d, want 5", n)
	}
}

// A session the webhook already applied is a duplicate for the success
// page: the storefront reads it as done.
func TestFulfilAfterWebhook(t *testing.T) {
	e := newFulfilEnv(t, true, nil)
	e.artwork("art-1")
	e.session("cs_test_both", stripetest.StatusComplete, stripetest.PaymentPaid, "art-1")
	ev := stripehook.Sample{EventID: "evt_1", Type: stock.CheckoutCompleted, SessionID: "cs_test_both", ArtworkIDs: []string{"art-1"}}.JSON()
	req := httptest.NewRequest(http.MethodPost, "/api/webhook", strings.NewReader(string(ev)))
	req.Header.Set("Stripe-Signature", stripehook.Sign(ev, fulfilSecret, time.Now()))
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("webhook: %d %s", rec.Code, rec.Body)
	}
	writes := e.lake.Writes("art-1")
	_, m := e.post(t, "application/json", jsonBody("cs_test_both"), "203.0.113.9")
	if m["outcome"] != "duplicate" || e.lake.Writes("art-1") != writes {
		t.Errorf("fulfil after the webhook: %v, writes %d then %d", m, writes, e.lake.Writes("art-1"))
	}
}

func TestFulfilRateLimit(t *testing.T) {
	e := newFulfilEnv(t, true, httpapi.NewClientLimiter(60, 2))
	e.session("cs_test_open", stripetest.StatusOpen, stripetest.PaymentUnpaid, "art-1")
	var codes []int
	for range 3 {
		rec, _ := e.post(t, "application/json", jsonBody("cs_test_open"), "198.51.100.7")
		codes = append(codes, rec.Code)
		if rec.Code == http.StatusTooManyRequests && rec.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Fatalf("codes %v", codes)
	}
	if rec, _ := e.post(t, "application/json", jsonBody("cs_test_open"), "198.51.100.8"); rec.Code != 200 {
		t.Errorf("another client was limited: %d", rec.Code)
	}
	if n := e.stripe.Requests(stripetest.EndpointRetrieve); n != 3 {
		t.Errorf("Stripe asked %d times, want 3: a limited request must not reach it", n)
	}
	if got := e.obs.count("fulfil rate_limited 429"); got != 1 {
		t.Errorf("rate-limited requests observed: %d", got)
	}
}

// TestFulfilSharedLimit: past the cap of all clients together, the success
// page gets 503 (its retry, or the webhook, applies the sale), Stripe is not
// asked, and the refusal is counted.
func TestFulfilSharedLimit(t *testing.T) {
	e := newFulfilEnv(t, true, nil)
	e.cfg.Shared = httpapi.NewSharedLimiter(1, slog.New(slog.DiscardHandler))
	e.h = httpapi.NewServer(e.cfg)
	e.session("cs_test_open", stripetest.StatusOpen, stripetest.PaymentUnpaid, "art-1")
	first, _ := e.post(t, "application/json", jsonBody("cs_test_open"), "198.51.100.7")
	second, _ := e.post(t, "application/json", jsonBody("cs_test_open"), "198.51.100.8")
	if first.Code != 200 || second.Code != http.StatusServiceUnavailable || second.Header().Get("Retry-After") == "" {
		t.Fatalf("codes %d %d (Retry-After %q), want 200 then 503 with Retry-After", first.Code, second.Code, second.Header().Get("Retry-After"))
	}
	if n := e.stripe.Requests(stripetest.EndpointRetrieve); n != 1 {
		t.Errorf("Stripe asked %d times, want 1: a request over the cap must not reach it", n)
	}
	if got := e.obs.count("fulfil unavailable 503"); got != 1 {
		t.Errorf("requests over the cap observed: %d", got)
	}
}

// TestFulfilCountsARefusedOrigin: a post from another site's page is
// refused before the limit and the pipeline, and still counted, with a line
// that names the setting: a typo in it fails every Buy and success page.
func TestFulfilCountsARefusedOrigin(t *testing.T) {
	e := newFulfilEnv(t, true, nil)
	req := httptest.NewRequest(http.MethodPost, "/api/fulfil", strings.NewReader("session_id=cs_test_x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
	if got := e.obs.count("fulfil invalid 400"); got != 1 {
		t.Errorf("refused posts counted: %d", got)
	}
	if lines := e.logs.find(t, "WARN", "SOLDOUT_ALLOWED_ORIGINS"); len(lines) != 1 || lines[0]["origin"] != "https://evil.example" {
		t.Errorf("WARN lines %v, want one naming the origin", lines)
	}
}

func TestFulfilRoute(t *testing.T) {
	on := newFulfilEnv(t, true, nil)
	off := newFulfilEnv(t, false, nil)
	for _, c := range []struct {
		name   string
		h      http.Handler
		method string
		status int
		want   string
	}{
		{"off without a key", off.h, http.MethodPost, 404, "STRIPE_SECRET_KEY"},
		{"off, any method", off.h, http.MethodGet, 404, "STRIPE_SECRET_KEY"},
		{"on, GET", on.h, http.MethodGet, 405, "use POST"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			c.h.ServeHTTP(rec, httptest.NewRequest(c.method, "/api/fulfil", strings.NewReader(jsonBody("cs_test_x"))))
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) {
				t.Errorf("%d %s; want %d and %q", rec.Code, rec.Body, c.status, c.want)
			}
		})
	}
}

// /readyz reports the last successful Sanity request, null before any.
func TestReadyzLastSanityContact(t *testing.T) {
	e := newFulfilEnv(t, true, nil)
	ready := func() map[string]any {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var m map[string]any
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &m) != nil {
			t.Fatalf("readyz: %d %s", rec.Code, rec.Body)
		}
		return m
	}
	if m := ready(); m["last_sanity_ok"] != nil || m["status"] != "ready" {
		t.Fatalf("before any Sanity request: %v", m)
	}
	before := time.Now().Add(-time.Second)
	e.artwork("art-1")
	e.session("cs_test_1", stripetest.StatusComplete, stripetest.PaymentPaid, "art-1")
	e.post(t, "application/json", jsonBody("cs_test_1"), "203.0.113.2")
	last, err := time.Parse(time.RFC3339, fmt.Sprint(ready()["last_sanity_ok"]))
	if err != nil || last.Before(before) || last.After(time.Now()) {
		t.Errorf("last_sanity_ok %v (%v), want just now", last, err)
	}
}

// recorder is an httpapi.Observer that keeps what it was told.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, s)
}

func (r *recorder) ObserveWebhook(outcome string, status int) {
	r.add(fmt.Sprintf("webhook %s %d", outcome, status))
}
func (r *recorder) SignatureFailure(reason string)              { r.add("signature " + reason) }
func (r *recorder) ObserveEvent(source string, _ time.Duration) { r.add("event " + source) }
func (r *recorder) ObserveFulfil(outcome string, status int) {
	r.add(fmt.Sprintf("fulfil %s %d", outcome, status))
}

func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		return ""
	}
	return r.seen[len(r.seen)-1]
}

func (r *recorder) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.seen {
		if x == s {
			n++
		}
	}
	return n
}
