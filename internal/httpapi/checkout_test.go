package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"soldout/internal/httpapi"
	"soldout/internal/journal"
	"soldout/internal/journal/pgtest"
	"soldout/internal/sanity"
	"soldout/internal/sanity/memlake"
	"soldout/internal/stock"
	"soldout/internal/stripeapi"
	"soldout/internal/stripeapi/stripetest"
	"soldout/internal/stripehook"
)

const (
	shopOrigin    = "https://shop.example.com"
	shopSecret    = "whsec_checkout_test_0123456789"
	shopTTL       = 31 * time.Minute
	shopSuccess   = "https://shop.example.com/thanks?session={CHECKOUT_SESSION_ID}"
	shopCancel    = "https://shop.example.com/artworks"
	shopHeldAfter = shopTTL + stock.ReservationGrace
)

// shop is what replicas share: the Sanity dataset (the in-memory stand-in),
// the stateful Stripe fake and one clock, which the fake, the checkout and
// the webhook all read.
type shop struct {
	t       *testing.T
	lake    *memlake.Lake
	lakeURL string
	stripe  *stripetest.Server
	mu      sync.Mutex
	now     time.Time
	holds   int                    // SOLDOUT_CLIENT_HOLDS of each replica; 0: no cap
	shared  *httpapi.SharedLimiter // the replicas' cap of all clients; nil: the default
	// sanityRequests counts the requests that reached the dataset.
	sanityRequests atomic.Int64
	logs           *logLines // every replica's log lines
}

func newShop(t *testing.T) *shop {
	t.Helper()
	s := &shop{t: t, lake: memlake.New("production", "sk-test"), stripe: stripetest.New(), now: time.Now().Truncate(time.Second), logs: &logLines{}}
	t.Cleanup(s.stripe.Close)
	s.stripe.SetClock(s.clock)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.sanityRequests.Add(1)
		s.lake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.lakeURL = srv.URL
	return s
}

func (s *shop) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *shop) advance(d time.Duration) {
	s.mu.Lock()
	s.now = s.now.Add(d)
	s.mu.Unlock()
}

// artwork stores a published artwork of the plain schema, for sale.
func (s *shop) artwork(id string, extra ...map[string]any) {
	doc := map[string]any{"_id": id, "_type": "artwork", "title": "Blue Heron", "price": 1250.5, "currency": "eur",
		"imageUrl": "https://cdn.example/heron.jpg", "isAvailable": true}
	for _, m := range extra {
		for k, v := range m {
			doc[k] = v
		}
	}
	s.lake.Put(doc)
}

func (s *shop) available(id string) any {
	d, _ := s.lake.Get(id)
	return d["isAvailable"]
}

// replica is one soldout process: its own journal handle, clients and
// server.
type replica struct {
	shop    *shop
	journal *journal.DB
	h       http.Handler
}

// sqliteJournal is a fresh journal file.
func sqliteJournal(t *testing.T) string { return filepath.Join(t.TempDir(), "journal.db") }

func (s *shop) replica(journalURL string, limiter *httpapi.ClientLimiter) *replica {
	t := s.t
	t.Helper()
	db, err := journal.Open(context.Background(), journalURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	catalog, err := sanity.New(sanity.Config{ProjectID: "test", Dataset: "production", Token: "sk-test", Host: s.lakeURL, MutationsPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	client, err := stripeapi.New(stripeapi.Config{SecretKey: stripetest.SecretKey, APIBase: s.stripe.URL(), MaxNetworkRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := stripehook.NewVerifier([]string{shopSecret}, stripehook.DefaultTolerance)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(s.logs, nil))
	var holds *httpapi.HoldLimiter
	if s.holds > 0 {
		holds = httpapi.NewHoldLimiter(s.holds, db, s.clock)
	}
	if limiter == nil {
		limiter = httpapi.NewClientLimiter(60000, 1000)
	}
	return &replica{shop: s, journal: db, h: httpapi.NewServer(httpapi.Config{
		Logger: log, Verifier: verifier, Journal: db, Limiter: limiter, Shared: s.shared, Sessions: client,
		AllowedOrigins: []string{shopOrigin},
		Fulfiller:      &stock.Fulfiller{Catalog: catalog, Journal: db, Reservations: db, Logger: log, Owner: rand.Text(), Now: s.clock},
		Storefront: &httpapi.Storefront{
			Checkout: &stock.Checkout{
				Products:     catalog.Products(sanity.ProductFields{Type: "artwork", Title: "title", Price: "price", Currency: "currency", Image: "imageUrl"}),
				Sessions:     stripeapi.Checkout{Client: client, SuccessURL: shopSuccess, CancelURL: shopCancel},
				Reservations: db, Logger: log, TTL: shopTTL, DefaultCurrency: "eur", Now: s.clock,
			},
			Holds: holds,
		},
	})}
}

// request sends one request from the shop's page, as client (an IP).
func (r *replica) request(method, path, contentType, body, client string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Origin", shopOrigin)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	req.RemoteAddr = client + ":4242"
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	return rec
}

// buy is a click on "Buy" that calls /api/checkout with fetch.
func (r *replica) buy(id, client string) *httptest.ResponseRecorder {
	return r.request(http.MethodPost, "/api/checkout", "application/json", `{"artworkId":"`+id+`"}`, client)
}

type checkoutReply struct {
	URL       string    `json:"url"`
	SessionID string    `json:"sessionId"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// mustBuy buys and returns the session opened.
func (r *replica) mustBuy(t *testing.T, id string) checkoutReply {
	t.Helper()
	rec := r.buy(id, "198.51.100.1")
	if rec.Code != http.StatusOK {
		t.Fatalf("buy %s: %d %s", id, rec.Code, rec.Body)
	}
	var c checkoutReply
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil || c.SessionID == "" || c.URL == "" {
		t.Fatalf("checkout answer %s: %v", rec.Body, err)
	}
	return c
}

// wantBody checks an answer's status and exact body.
func wantBody(t *testing.T, what string, rec *httptest.ResponseRecorder, status int, body string) {
	t.Helper()
	if rec.Code != status || strings.TrimSpace(rec.Body.String()) != body {
		t.Errorf("%s: %d %s, want %d %s", what, rec.Code, strings.TrimSpace(rec.Body.String()), status, body)
	}
}

func reservedUntil(t time.Time) string {
	return `{"error":"reserved","until":"` + t.UTC().Format(time.RFC3339) + `"}`
}

type availabilityReply struct {
	Available     bool       `json:"available"`
	ReservedUntil *time.Time `json:"reservedUntil"`
}

func (r *replica) availability(t *testing.T, id string) availabilityReply {
	t.Helper()
	rec := r.request(http.MethodGet, "/api/availability/"+id, "", "", "198.51.100.2")
	var a availabilityReply
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &a) != nil {
		t.Fatalf("availability of %s: %d %s", id, rec.Code, rec.Body)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("availability may be cached: %q", rec.Header().Get("Cache-Control"))
	}
	return a
}

func wantAvailability(t *testing.T, r *replica, id string, available bool, until time.Time) {
	t.Helper()
	a := r.availability(t, id)
	if a.Available != available || (a.ReservedUntil == nil) != until.IsZero() || a.ReservedUntil != nil && !a.ReservedUntil.Equal(until) {
		t.Errorf("availability of %s: %+v, want available %v, reserved until %v", id, a, available, until)
	}
}

// event delivers a signed Stripe event for the session and returns its
// outcome.
func (r *replica) event(t *testing.T, n int, typ, session, artwork string) string {
	t.Helper()
	body := stripehook.Sample{EventID: fmt.Sprintf("evt_%s_%d", session, n), Type: typ, SessionID: session,
		ArtworkIDs: []string{artwork}, Email: "buyer@example.com", AmountTotal: 125050}.JSON()
	req := httptest.NewRequest(http.MethodPost, "/api/webhook", bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", stripehook.Sign(body, shopSecret, time.Now()))
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	var ans struct {
		Outcome string `json:"outcome"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &ans) != nil {
		t.Fatalf("%s for %s: %d %s", typ, session, rec.Code, rec.Body)
	}
	return ans.Outcome
}

func (r *replica) reservation(t *testing.T, id string) stock.Reservation {
	t.Helper()
	res, err := r.journal.Reservation(context.Background(), id)
	if err != nil || res == nil {
		t.Fatalf("reservation of %s: %+v, %v", id, res, err)
	}
	return *res
}

func TestCheckoutOpensTheSession(t *testing.T) {
	s := newShop(t)
	s.artwork("art-heron")
	s.artwork("art-dune", map[string]any{"title": "Dune", "price": 70000, "currency": "JPY", "imageUrl": nil})
	s.artwork("art-marsh", map[string]any{"title": "Salt Marsh", "price": 19.99, "currency": nil, "imageUrl": "http://insecure.example/marsh.jpg"})
	r := s.replica(sqliteJournal(t), nil)
	tests := []struct {
		id, name, currency string
		amount             int64
		images             []string
	}{
		{"art-heron", "Blue Heron", "eur", 125050, []string{"https://cdn.example/heron.jpg"}},
		{"art-dune", "Dune", "jpy", 70000, nil},       // zero-decimal
		{"art-marsh", "Salt Marsh", "eur", 1999, nil}, // the default currency, 19.99 without float error, no http image
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			c := r.mustBuy(t, tt.id)
			expires := s.clock().Add(shopTTL)
			if !c.ExpiresAt.Equal(expires) || c.URL != "https://checkout.stripe.com/c/pay/"+c.SessionID {
				t.Errorf("answer %+v, want expiry %v", c, expires)
			}
			got, ok := s.stripe.Session(c.SessionID)
			if !ok {
				t.Fatal("no session at Stripe")
			}
			if got.Status != stripetest.StatusOpen || got.Metadata["artworkId"] != tt.id || !got.ExpiresAt.Equal(expires) ||
				got.SuccessURL != shopSuccess || got.CancelURL != shopCancel || len(got.LineItems) != 1 {
				t.Fatalf("session %+v", got)
			}
			li := got.LineItems[0]
			if li.Name != tt.name || li.UnitAmount != tt.amount || li.Currency != tt.currency || li.Quantity != 1 || len(li.Images) != len(tt.images) {
				t.Errorf("line item %+v, want %s %d %s %v", li, tt.name, tt.amount, tt.currency, tt.images)
			}
			if res := r.reservation(t, tt.id); res.SessionID != c.SessionID || res.State != stock.ReservationOpen {
				t.Errorf("reservation %+v", res)
			}
			wantAvailability(t, r, tt.id, false, expires.Add(stock.ReservationGrace))
		})
	}
	if n := len(s.lake.Transactions()); n != 0 {
		t.Errorf("checkout wrote to Sanity %d times", n)
	}
}

func TestCheckoutRefusals(t *testing.T) {
	s := newShop(t)
	s.artwork("art-sold", map[string]any{"isAvailable": false})
	s.artwork("art-held")
	s.artwork("art-no-price", map[string]any{"price": nil})
	s.artwork("art-cents-in-yen", map[string]any{"price": 1250.5, "currency": "jpy"})
	r := s.replica(sqliteJournal(t), nil)
	first := r.mustBuy(t, "art-held")
	const js = "application/json"
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		want                                  string // the exact body, or the error code
	}{
		{"sold", "POST", "/api/checkout", js, `{"artworkId":"art-sold"}`, 409, `{"error":"sold"}`},
		{"reserved", "POST", "/api/checkout", js, `{"artworkId":"art-held"}`, 409, reservedUntil(first.ExpiresAt.Add(stock.ReservationGrace))},
		{"unknown artwork", "POST", "/api/checkout", js, `{"artworkId":"art-missing"}`, 404, "not_found"},
		{"a draft id", "POST", "/api/checkout", js, `{"artworkId":"drafts.art-held"}`, 400, "invalid"},
		{"no artwork id", "POST", "/api/checkout", js, `{}`, 400, "invalid"},
		{"not JSON", "POST", "/api/checkout", js, `artworkId=art-held`, 400, "invalid"},
		{"neither JSON nor a form", "POST", "/api/checkout", "text/plain", `art-held`, 400, "invalid"},
		{"too large", "POST", "/api/checkout", js, `{"artworkId":"` + strings.Repeat("a", 5000) + `"}`, 413, "too_large"},
		{"no price", "POST", "/api/checkout", js, `{"artworkId":"art-no-price"}`, 500, "misconfigured"},
		{"more decimals than the currency has", "POST", "/api/checkout", js, `{"artworkId":"art-cents-in-yen"}`, 500, "misconfigured"},
		{"GET on checkout", "GET", "/api/checkout", "", "", 405, "method_not_allowed"},
		{"availability of an unknown artwork", "GET", "/api/availability/art-missing", "", "", 404, "not_found"},
		{"availability of a hostile id", "GET", "/api/availability/a,drafts.b", "", "", 400, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := r.request(tt.method, tt.path, tt.contentType, tt.body, "198.51.100.3")
			if strings.HasPrefix(tt.want, "{") {
				wantBody(t, tt.name, rec, tt.status, tt.want)
				return
			}
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != tt.status || m["code"] != tt.want || m["error"] == "" {
				t.Errorf("%d %s, want %d with code %s", rec.Code, rec.Body, tt.status, tt.want)
			}
		})
	}
	if n := s.stripe.Requests(stripetest.EndpointCreate); n != 1 {
		t.Errorf("%d sessions created, want only the first buyer's", n)
	}
	for _, id := range []string{"art-no-price", "art-cents-in-yen"} {
		if res, err := r.journal.Reservation(context.Background(), id); res != nil || err != nil {
			t.Errorf("%s was reserved although it cannot be sold: %+v, %v", id, res, err)
		}
	}
}

// Two buyers (ten, here) click "Buy" on the same artwork at the same moment:
// one Checkout URL, and a 409 for everybody else.
func TestBuyersClickingAtTheSameMoment(t *testing.T) {
	s := newShop(t)
	s.artwork("art-1")
	r := s.replica(sqliteJournal(t), nil)
	recs := make([]*httptest.ResponseRecorder, 10)
	var wg sync.WaitGroup
	for i := range recs {
		wg.Go(func() { recs[i] = r.buy("art-1", fmt.Sprintf("203.0.113.%d", i+1)) })
	}
	wg.Wait()
	wantOneSession(t, s, recs)
}

// wantOneSession checks that exactly one answer opened a checkout and every
// other was told the piece is reserved until that session's hold ends.
func wantOneSession(t *testing.T, s *shop, recs []*httptest.ResponseRecorder) {
	t.Helper()
	var won []checkoutReply
	var reserved []string
	for _, rec := range recs {
		switch rec.Code {
		case http.StatusOK:
			var c checkoutReply
			if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
				t.Fatal(err)
			}
			won = append(won, c)
		case http.StatusConflict:
			reserved = append(reserved, strings.TrimSpace(rec.Body.String()))
		default:
			t.Errorf("answer %d %s", rec.Code, rec.Body)
		}
	}
	if len(won) != 1 || len(reserved) != len(recs)-1 {
		t.Fatalf("%d checkouts opened, %d refused; want 1 and %d", len(won), len(reserved), len(recs)-1)
	}
	for _, body := range reserved {
		if body != reservedUntil(won[0].ExpiresAt.Add(stock.ReservationGrace)) {
			t.Errorf("refusal %s", body)
		}
	}
	if n := s.stripe.Requests(stripetest.EndpointCreate); n != 1 {
		t.Errorf("Stripe was asked for %d sessions, want 1", n)
	}
}

func TestExpiryFreesTheArtwork(t *testing.T) {
	s := newShop(t)
	s.artwork("art-1")
	r := s.replica(sqliteJournal(t), nil)
	first := r.mustBuy(t, "art-1")
	s.advance(shopTTL) // the buyer walks away; Stripe expires the session
	if got, _ := s.stripe.Session(first.SessionID); got.Status != stripetest.StatusExpired {
		t.Fatalf("session %s", got.Status)
	}
	if out := r.event(t, 1, stock.CheckoutExpired, first.SessionID, "art-1"); out != string(stock.OutcomeReleased) {
		t.Fatalf("expired: outcome %s", out)
	}
	if out := r.event(t, 1, stock.CheckoutExpired, first.SessionID, "art-1"); out != string(stock.OutcomeDuplicate) {
		t.Errorf("redelivery: outcome %s", out)
	}
	if res := r.reservation(t, "art-1"); res.State != stock.ReservationExpired {
		t.Errorf("reservation %+v", res)
	}
	if s.available("art-1") != true || len(s.lake.Transactions()) != 0 {
		t.Errorf("Sanity was touched: isAvailable %v, %d transactions", s.available("art-1"), len(s.lake.Transactions()))
	}
	wantAvailability(t, r, "art-1", true, time.Time{})
	if next := r.mustBuy(t, "art-1"); next.SessionID == first.SessionID {
		t.Error("the expired session was handed out again")
	}
}

// The expired session cannot be paid, so the only sale is through the next
// buyer's session; after it, the piece is sold.
func TestNoSaleAfterExpiry(t *testing.T) {
	s := newShop(t)
	s.artwork("art-1")
	r := s.replica(sqliteJournal(t), nil)
	first := r.mustBuy(t, "art-1")
	s.advance(shopTTL)
	if err := s.stripe.Complete(first.SessionID, stripetest.PaymentPaid); err == nil {
		t.Fatal("an expired session was paid")
	}
	r.event(t, 1, stock.CheckoutExpired, first.SessionID, "art-1")

	second := r.mustBuy(t, "art-1")
	if err := s.stripe.Complete(second.SessionID, stripetest.PaymentPaid); err != nil {
		t.Fatal(err)
	}
	if out := r.event(t, 1, stock.CheckoutCompleted, second.SessionID, "art-1"); out != string(stock.OutcomeSold) {
		t.Fatalf("completed: outcome %s", out)
	}
	if res := r.reservation(t, "art-1"); res.State != stock.ReservationConverted || res.SessionID != second.SessionID {
		t.Errorf("reservation %+v", res)
	}
	if s.available("art-1") != false {
		t.Error("sold piece still available")
	}
	wantBody(t, "third buyer", r.buy("art-1", "198.51.100.9"), 409, `{"error":"sold"}`)
	wantAvailability(t, r, "art-1", false, time.Time{})
}

func TestStripeFailureFreesTheReservation(t *testing.T) {
	tests := []struct {
		name   string
		status int
	}{
		{"Stripe down", http.StatusInternalServerError},
		{"Stripe rate limit", http.StatusTooManyRequests},
		{"request refused", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newShop(t)
			s.artwork("art-1")
			r := s.replica(sqliteJournal(t), nil)
			s.stripe.FailNext(1, tt.status)
			rec := r.buy("art-1", "198.51.100.1")
			var m map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != http.StatusBadGateway ||
				m["code"] != "upstream" || !strings.Contains(m["error"], "Stripe") {
				t.Fatalf("%d %s, want 502 with a message about Stripe", rec.Code, rec.Body)
			}
			if strings.Contains(m["error"], "req_") {
				t.Errorf("the buyer sees Stripe's request details: %s", m["error"])
			}
			if res := r.reservation(t, "art-1"); res.State != stock.ReservationReleased {
				t.Errorf("reservation %+v", res)
			}
			wantAvailability(t, r, "art-1", true, time.Time{})
			r.mustBuy(t, "art-1")
		})
	}
}

// No event ever comes for a session (webhook not configured, or lost): the
// reservation ends by itself after the session's expiry plus the grace,
// with no sweeper. Before the artwork is offered again, Stripe is asked
// whether the lapsed session was paid.
func TestLapsedReservationWithoutEvents(t *testing.T) {
	t.Run("session expired", func(t *testing.T) {
		s := newShop(t)
		s.artwork("art-1")
		r := s.replica(sqliteJournal(t), nil)
		first := r.mustBuy(t, "art-1")
		heldUntil := first.ExpiresAt.Add(stock.ReservationGrace)
		s.advance(shopTTL) // expired at Stripe, but within the grace
		wantBody(t, "within the grace", r.buy("art-1", "198.51.100.2"), 409, reservedUntil(heldUntil))
		s.advance(stock.ReservationGrace)
		wantAvailability(t, r, "art-1", true, time.Time{})
		second := r.mustBuy(t, "art-1")
		if second.SessionID == first.SessionID || s.stripe.Requests(stripetest.EndpointRetrieve) != 1 {
			t.Errorf("second %+v, %d retrievals", second, s.stripe.Requests(stripetest.EndpointRetrieve))
		}
		// The late event of the first session leaves the second's claim alone.
		if out := r.event(t, 1, stock.CheckoutExpired, first.SessionID, "art-1"); out != string(stock.OutcomeIgnored) {
			t.Errorf("late expiry: outcome %s", out)
		}
		if res := r.reservation(t, "art-1"); res.SessionID != second.SessionID || res.State != stock.ReservationOpen {
			t.Errorf("reservation %+v", res)
		}
	})
	t.Run("session paid, webhook late", func(t *testing.T) {
		s := newShop(t)
		s.artwork("art-1")
		r := s.replica(sqliteJournal(t), nil)
		first := r.mustBuy(t, "art-1")
		if err := s.stripe.Complete(first.SessionID, stripetest.PaymentPaid); err != nil {
			t.Fatal(err)
		}
		s.advance(shopHeldAfter)
		for range 5 {
			wantAvailability(t, r, "art-1", false, time.Time{}) // no Buy button that could only fail
		}
		wantBody(t, "after the hold", r.buy("art-1", "198.51.100.2"), 409, `{"error":"sold"}`)
		// Complete is final: the page loads and the Buy asked Stripe once.
		if n := s.stripe.Requests(stripetest.EndpointRetrieve); n != 1 {
			t.Errorf("Stripe asked %d times about the lapsed session, want once", n)
		}
		if n := s.stripe.Requests(stripetest.EndpointCreate); n != 1 {
			t.Errorf("%d sessions opened, want 1", n)
		}
		if out := r.event(t, 1, stock.CheckoutCompleted, first.SessionID, "art-1"); out != string(stock.OutcomeSold) {
			t.Errorf("late completion: outcome %s", out)
		}
		wantBody(t, "after the webhook", r.buy("art-1", "198.51.100.2"), 409, `{"error":"sold"}`)
	})
	t.Run("Stripe failing while a page asks", func(t *testing.T) {
		s := newShop(t)
		s.artwork("art-1")
		r := s.replica(sqliteJournal(t), nil)
		r.mustBuy(t, "art-1")
		s.advance(shopHeldAfter)
		s.stripe.FailNext(10, http.StatusInternalServerError)
		// A page load is no reason to fail: Sanity's answer stands, and
		// the Buy asks Stripe again.
		wantAvailability(t, r, "art-1", true, time.Time{})
		if lines := s.logs.find(t, "WARN", "answering from Sanity"); len(lines) != 1 {
			t.Errorf("%d WARN lines about Stripe failing, want 1", len(lines))
		}
	})
	t.Run("delayed payment failed, its completion never applied", func(t *testing.T) {
		s := newShop(t)
		s.artwork("art-1")
		r := s.replica(sqliteJournal(t), nil)
		first := r.mustBuy(t, "art-1")
		if err := s.stripe.Complete(first.SessionID, stripetest.PaymentUnpaid); err != nil { // SEPA
			t.Fatal(err)
		}
		// Its checkout.session.completed is lost (soldout down past Stripe's
		// retries, or not subscribed); the failure arrives. Stripe keeps
		// answering "complete" for the session, but nothing is owed.
		if out := r.event(t, 1, stock.CheckoutAsyncFailed, first.SessionID, "art-1"); out != string(stock.OutcomeReleased) {
			t.Fatalf("payment failure: outcome %s", out)
		}
		if res := r.reservation(t, "art-1"); res.State != stock.ReservationReleased {
			t.Errorf("reservation after the failed payment: %+v", res)
		}
		wantAvailability(t, r, "art-1", true, time.Time{})
		r.mustBuy(t, "art-1")
	})
	t.Run("Stripe never answered the claim", func(t *testing.T) {
		s := newShop(t)
		s.artwork("art-1")
		r := s.replica(sqliteJournal(t), nil)
		// A process died between claiming and hearing from Stripe.
		now := s.clock()
		_, claimed, err := r.journal.ClaimReservation(context.Background(), stock.Reservation{
			ArtworkID: "art-1", ClaimID: "dead", State: stock.ReservationOpen, ExpiresAt: now.Add(shopTTL), HeldUntil: now.Add(shopHeldAfter), CreatedAt: now, UpdatedAt: now,
		})
		if err != nil || !claimed {
			t.Fatal(claimed, err)
		}
		wantBody(t, "while held", r.buy("art-1", "198.51.100.2"), 409, reservedUntil(now.Add(shopHeldAfter)))
		s.advance(shopHeldAfter)
		r.mustBuy(t, "art-1")
	})
}

func TestCheckoutFormPost(t *testing.T) {
	s := newShop(t)
	s.artwork("art-1")
	s.artwork("art-2")
	r := s.replica(sqliteJournal(t), nil)
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	if err := w.WriteField("artworkId", "art-2"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, tt := range []struct{ name, id, contentType, body string }{
		{"urlencoded", "art-1", "application/x-www-form-urlencoded", "artworkId=art-1"},
		{"multipart", "art-2", w.FormDataContentType(), mp.String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := r.request(http.MethodPost, "/api/checkout", tt.contentType, tt.body, "198.51.100.4")
			res := r.reservation(t, tt.id)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "https://checkout.stripe.com/c/pay/"+res.SessionID {
				t.Errorf("%d, Location %q; want 303 to the session of %+v", rec.Code, rec.Header().Get("Location"), res)
			}
		})
	}
	wantBody(t, "the same piece again", r.request(http.MethodPost, "/api/checkout", "application/x-www-form-urlencoded", "artworkId=art-1", "198.51.100.5"),
		409, reservedUntil(r.reservation(t, "art-1").HeldUntil))
}

func TestStorefrontCORS(t *testing.T) {
	s := newShop(t)
	r := s.replica(sqliteJournal(t), nil)
	tests := []struct {
		name, method, path, contentType, body string
		header                                []string
		status                                int
		allowed                               bool // Access-Control-Allow-Origin is the origin
	}{
		{"the shop's fetch", "POST", "/api/checkout", "application/json", `{"artworkId":"art-1"}`, nil, 200, true},
		{"another site's form", "POST", "/api/checkout", "application/x-www-form-urlencoded", "artworkId=art-2", []string{"Origin", "https://evil.example"}, 400, false},
		{"no Origin (a server)", "POST", "/api/checkout", "application/json", `{"artworkId":"art-3"}`, []string{"Origin", ""}, 200, false},
		// The Host header is the client's to say: a DNS-rebinding page
		// sends its own name as both, and is refused like any other.
		{"an origin matching the Host header", "POST", "/api/checkout", "application/json", `{"artworkId":"art-4"}`, []string{"Origin", "https://example.com"}, 400, false},
		{"the shop's preflight", "OPTIONS", "/api/checkout", "", "", []string{"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"}, 204, true},
		{"another site's preflight", "OPTIONS", "/api/checkout", "", "", []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, 204, false},
		{"availability for the shop", "GET", "/api/availability/art-5", "", "", nil, 200, true},
		{"availability for another site", "GET", "/api/availability/art-5", "", "", []string{"Origin", "https://evil.example"}, 200, false},
		// The success page's fetch to /api/fulfil (the session is unknown
		// to Stripe here: 404, which the page must be able to read).
		{"the shop's fulfil preflight", "OPTIONS", "/api/fulfil", "", "", []string{"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"}, 204, true},
		{"the shop's fulfil fetch", "POST", "/api/fulfil", "application/json", `{"session_id":"cs_test_unknown"}`, nil, 404, true},
		{"another site's fulfil form", "POST", "/api/fulfil", "application/x-www-form-urlencoded", "session_id=cs_test_unknown", []string{"Origin", "https://evil.example"}, 400, false},
		{"fulfil from the shop's server", "POST", "/api/fulfil", "application/json", `{"session_id":"cs_test_unknown"}`, []string{"Origin", ""}, 404, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.artwork(fmt.Sprint("art-", i+1))
			rec := r.request(tt.method, tt.path, tt.contentType, tt.body, "198.51.100.6", tt.header...)
			if rec.Code != tt.status {
				t.Fatalf("status %d %s, want %d", rec.Code, rec.Body, tt.status)
			}
			h := rec.Header()
			if got := h.Get("Access-Control-Allow-Origin"); (got == shopOrigin) != tt.allowed || !tt.allowed && got != "" {
				t.Errorf("Access-Control-Allow-Origin %q", got)
			}
			if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Errorf("no Vary: Origin: %v", h)
			}
			preflight := tt.method == http.MethodOptions && tt.allowed
			if preflight != strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
				preflight != strings.EqualFold(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
				t.Errorf("preflight headers %v", h)
			}
		})
	}
	if res, _ := r.journal.Reservation(context.Background(), "art-2"); res != nil {
		t.Errorf("another site's form reserved a piece: %+v", res)
	}
}

func TestStorefrontRateLimit(t *testing.T) {
	s := newShop(t)
	s.artwork("art-1")
	r := s.replica(sqliteJournal(t), httpapi.NewClientLimiter(1, 2))
	preflight := r.request(http.MethodOptions, "/api/checkout", "", "", "198.51.100.7", "Access-Control-Request-Method", "POST")
	first := r.buy("art-1", "198.51.100.7")
	second := r.request(http.MethodGet, "/api/availability/art-1", "", "", "198.51.100.7")
	third := r.buy("art-1", "198.51.100.7")
	if preflight.Code != 204 || first.Code != 200 || second.Code != 200 {
		t.Fatalf("within the limit: %d %d %d", preflight.Code, first.Code, second.Code)
	}
	if third.Code != http.StatusTooManyRequests || third.Header().Get("Retry-After") == "" ||
		third.Header().Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Errorf("over the limit: %d %v, want 429 with Retry-After, readable by the shop", third.Code, third.Header())
	}
	if other := r.buy("art-1", "198.51.100.8"); other.Code != http.StatusConflict {
		t.Errorf("another client: %d", other.Code)
	}
}

// TestStorefrontSharedLimit: past the cap of all clients together, a request
// is answered 503 with Retry-After, readable by the shop's page, before it
// costs Sanity a read; clients that each stay under their own limit are
// refused alike.
func TestStorefrontSharedLimit(t *testing.T) {
	s := newShop(t)
	s.artwork("art-1")
	s.shared = httpapi.NewSharedLimiter(2, slog.New(slog.DiscardHandler))
	r := s.replica(sqliteJournal(t), nil)
	var codes []int
	for _, client := range []string{"198.51.100.7", "198.51.100.8"} {
		codes = append(codes, r.request(http.MethodGet, "/api/availability/art-1", "", "", client).Code)
	}
	before := s.sanityRequests.Load()
	over := r.request(http.MethodGet, "/api/availability/art-1", "", "", "198.51.100.9")
	buy := r.buy("art-1", "198.51.100.10")
	if fmt.Sprint(codes) != "[200 200]" {
		t.Fatalf("within the cap: %v", codes)
	}
	for _, rec := range []*httptest.ResponseRecorder{over, buy} {
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
			rec.Header().Get("Access-Control-Allow-Origin") != shopOrigin || !strings.Contains(rec.Body.String(), `"code":"unavailable"`) {
			t.Errorf("over the cap: %d %v %s, want 503 unavailable with Retry-After, readable by the shop", rec.Code, rec.Header(), rec.Body)
		}
	}
	if n := s.sanityRequests.Load() - before; n != 0 {
		t.Errorf("requests over the cap cost Sanity %d requests", n)
	}
	if res, _ := r.journal.Reservation(context.Background(), "art-1"); res != nil {
		t.Errorf("a checkout over the cap reserved the piece: %+v", res)
	}
}

func TestStorefrontOff(t *testing.T) {
	h := httpapi.NewServer(httpapi.Config{Logger: slog.New(slog.DiscardHandler)})
	for _, path := range []string{"/api/checkout", "/api/availability/art-1"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"artworkId":"art-1"}`)))
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "STRIPE_SECRET_KEY") {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
}

// Reservations hold across replicas: two processes, each with its own
// journal handle and server, on one database.
func TestReservationsAcrossReplicas(t *testing.T) {
	backends := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", sqliteJournal},
		{"postgres", postgresSchema},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			s := newShop(t)
			s.artwork("art-1")
			replicas := []*replica{s.replica(url, nil), s.replica(url, nil)}
			recs := make([]*httptest.ResponseRecorder, 12)
			var wg sync.WaitGroup
			for i := range recs {
				wg.Go(func() { recs[i] = replicas[i%2].buy("art-1", fmt.Sprintf("203.0.113.%d", i+1)) })
			}
			wg.Wait()
			wantOneSession(t, s, recs)

			// Stripe expires the session and tells one replica; the other
			// offers the piece again.
			held := replicas[0].reservation(t, "art-1")
			s.advance(shopTTL)
			if out := replicas[1].event(t, 1, stock.CheckoutExpired, held.SessionID, "art-1"); out != string(stock.OutcomeReleased) {
				t.Fatalf("expired on replica 2: %s", out)
			}
			wantAvailability(t, replicas[0], "art-1", true, time.Time{})
			next := replicas[0].mustBuy(t, "art-1")
			wantBody(t, "replica 2 while replica 1's buyer pays", replicas[1].buy("art-1", "198.51.100.1"), 409,
				reservedUntil(next.ExpiresAt.Add(stock.ReservationGrace)))
		})
	}
}

// postgresSchema is a journal URL on a schema of its own, or skips.
func postgresSchema(t *testing.T) string {
	return pgtest.URL(t, "the checkout's replicas on PostgreSQL")
}

// A browser learns that an id is no artwork, never which documents exist:
// a missing id and a document of another type (an order, say) get the same
// answer, without the dataset's name.
func TestStorefrontNotFoundTellsNothing(t *testing.T) {
	s := newShop(t)
	s.lake.Put(map[string]any{"_id": "secret-order-1", "_type": "order", "title": "Order", "price": 1})
	r := s.replica(sqliteJournal(t), nil)
	for _, id := range []string{"art-missing", "secret-order-1"} {
		want := `{"error":"no such artwork","code":"not_found"}`
		wantBody(t, "availability of "+id, r.request(http.MethodGet, "/api/availability/"+id, "", "", "198.51.100.2"), 404, want)
		wantBody(t, "checkout of "+id, r.buy(id, "198.51.100.2"), 404, want)
	}
}

// One client cannot hold the whole shop: past SOLDOUT_CLIENT_HOLDS pieces
// in checkout at once it gets 429 until one of its holds ends (paid, or its
// time is up), while other buyers go on.
func TestHoldsPerClient(t *testing.T) {
	s := newShop(t)
	s.holds = 2
	for _, id := range []string{"art-1", "art-2", "art-3", "art-4", "art-5"} {
		s.artwork(id)
	}
	r := s.replica(sqliteJournal(t), nil)
	first := r.mustBuy(t, "art-1")
	second := r.mustBuy(t, "art-2")
	rec := r.buy("art-3", "198.51.100.1") // mustBuy's client
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "already holds 2 pieces") {
		t.Fatalf("a third hold: %d %s (Retry-After %q)", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if a := r.availability(t, "art-3"); !a.Available {
		t.Error("the refused hold holds the piece")
	}
	if rec := r.buy("art-3", "203.0.113.9"); rec.Code != http.StatusOK {
		t.Errorf("another buyer: %d %s", rec.Code, rec.Body)
	}

	// Paying for one ends its hold at once: the buyer may buy the next piece.
	if out := r.event(t, 1, stock.CheckoutCompleted, second.SessionID, "art-2"); out != string(stock.OutcomeSold) {
		t.Fatalf("the second piece's payment: %s", out)
	}
	if rec := r.buy("art-4", "198.51.100.1"); rec.Code != http.StatusOK {
		t.Errorf("after paying for one: %d %s", rec.Code, rec.Body)
	}
	s.advance(first.ExpiresAt.Add(stock.ReservationGrace).Sub(s.clock()) + time.Second)
	if rec := r.buy("art-5", "198.51.100.1"); rec.Code != http.StatusOK {
		t.Errorf("after its first hold's time was up: %d %s", rec.Code, rec.Body)
	}
}

// A hold ends with its own session's reservation: once that expired, the
// piece's row may be another buyer's open claim, which is no hold of the
// first buyer's.
func TestHoldEndsWhenAnotherBuyerTakesThePiece(t *testing.T) {
	s := newShop(t)
	s.holds = 1
	s.artwork("art-1")
	s.artwork("art-2")
	r := s.replica(sqliteJournal(t), nil)
	first := r.mustBuy(t, "art-1")
	if out := r.event(t, 1, stock.CheckoutExpired, first.SessionID, "art-1"); out != string(stock.OutcomeReleased) {
		t.Fatalf("expiry: outcome %s", out)
	}
	if rec := r.buy("art-1", "203.0.113.9"); rec.Code != http.StatusOK {
		t.Fatalf("another buyer: %d %s", rec.Code, rec.Body)
	}
	if rec := r.buy("art-2", "198.51.100.1"); rec.Code != http.StatusOK {
		t.Errorf("the first buyer, whose hold expired: %d %s", rec.Code, rec.Body)
	}
}

// The cap holds for requests that arrive together: each is counted from
// the moment its checkout starts to be opened, not once it is open.
func TestHoldsPerClientConcurrent(t *testing.T) {
	s := newShop(t)
	s.holds = 2
	const clicks = 8
	for i := range clicks {
		s.artwork(fmt.Sprint("art-", i))
	}
	r := s.replica(sqliteJournal(t), nil)
	var wg sync.WaitGroup
	var opened atomic.Int32
	for i := range clicks {
		wg.Go(func() {
			if rec := r.buy(fmt.Sprint("art-", i), "198.51.100.1"); rec.Code == http.StatusOK {
				opened.Add(1)
			}
		})
	}
	wg.Wait()
	if n := opened.Load(); n != 2 {
		t.Errorf("one client opened %d checkouts at once with SOLDOUT_CLIENT_HOLDS=2", n)
	}
}
