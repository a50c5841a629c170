package stripeapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripeapi"
	"soldout/internal/stripeapi/stripetest"
)

// now is the fake's clock in every test that seeds or creates sessions.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newFake(t *testing.T) *stripetest.Server {
	t.Helper()
	srv := stripetest.New()
	t.Cleanup(srv.Close)
	srv.SetClock(func() time.Time { return now })
	return srv
}

func newClient(t *testing.T, cfg stripeapi.Config) *stripeapi.Client {
	t.Helper()
	c, err := stripeapi.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func fakeClient(t *testing.T, srv *stripetest.Server) *stripeapi.Client {
	return newClient(t, stripeapi.Config{SecretKey: stripetest.SecretKey, APIBase: srv.URL()})
}

// checkErr fails unless err has code want (none when want is ""), and, for
// Stripe's answers, the wanted APIError param.
func checkErr(t *testing.T, err error, want stock.Code, wantParam string) {
	t.Helper()
	if got := stock.ErrorCode(err); got != want {
		t.Fatalf("error code = %q, want %q (err: %v)", got, want, err)
	}
	if wantParam == "" {
		return
	}
	var ae *stripeapi.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v has no *stripeapi.APIError", err)
	}
	if ae.Param != wantParam {
		t.Errorf("APIError.Param = %q, want %q (err: %v)", ae.Param, wantParam, err)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name, key, base string
		want            string // in the message; "" means New succeeds
	}{
		{"test key", "sk_test_51Habc", "", ""},
		{"live key", "sk_live_51Habc", "", ""},
		{"restricted key over https", "rk_live_51Habc", "https://stripe-proxy.internal/", ""},
		{"test key to stripe-mock", "sk_test_123", "http://127.0.0.1:12111", ""},
		{"not set", "", "", "STRIPE_SECRET_KEY is not set"},
		{"publishable key", "pk_live_51Habc", "", "publishable key"},
		{"webhook secret", "whsec_51Habc", "", "STRIPE_WEBHOOK_SECRET"},
		{"pasted with quotes", `"sk_test_51Habc"`, "", "not a Stripe secret key"},
		{"trailing newline", "sk_test_51Habc\n", "", "not a Stripe secret key"},
		{"live key over plain http", "sk_live_51Habc", "http://127.0.0.1:12111", "plain http"},
		{"base with credentials", "sk_test_51Habc", "https://user:hunter2@example.com", "must not contain credentials"},
		{"base without scheme", "sk_test_51Habc", "127.0.0.1:12111", "not a base URL"},
		{"base with a query", "sk_test_51Habc", "https://example.com/?a=b", "not a base URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stripeapi.New(stripeapi.Config{SecretKey: tc.key, APIBase: tc.base})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			checkErr(t, err, stock.Misconfigured, "")
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if strings.Contains(msg, "51Habc") || strings.Contains(msg, "hunter2") {
				t.Errorf("error %q echoes a secret", msg)
			}
			if strings.Contains(tc.want, "STRIPE_SECRET_KEY") && !strings.Contains(msg, "Stripe Dashboard → Developers → API keys") {
				t.Errorf("error %q does not say where to find the key", msg)
			}
		})
	}
}

func TestSession(t *testing.T) {
	srv := newFake(t)
	created := now.Add(-time.Hour)
	srv.Put(stripetest.Session{
		ID: "cs_test_paid", Status: stripetest.StatusComplete, PaymentStatus: stripetest.PaymentPaid,
		Created: created, ExpiresAt: created.Add(24 * time.Hour), Currency: "eur", AmountTotal: 125000,
		CustomerEmail: "prefilled@example.com", Email: "typed@example.com",
		Metadata: map[string]string{"artworkIds": "a1, a2"},
	})
	srv.Put(stripetest.Session{ID: "cs_test_prefilled", CustomerEmail: "prefilled@example.com", Created: created})
	c := fakeClient(t, srv)

	for _, tc := range []struct {
		name, id  string
		client    *stripeapi.Client
		want      stripeapi.Session
		wantCode  stock.Code
		wantParam string
		requests  int
	}{
		{name: "complete, buyer's email wins", id: "cs_test_paid", client: c, requests: 1, want: stripeapi.Session{
			ID: "cs_test_paid", Status: "complete", PaymentStatus: "paid", Email: "typed@example.com", Currency: "eur",
			AmountTotal: 125000, Created: created, ExpiresAt: created.Add(24 * time.Hour),
			Metadata: map[string]string{"artworkIds": "a1, a2"},
		}},
		{name: "open, prefilled email", id: "cs_test_prefilled", client: c, requests: 1, want: stripeapi.Session{
			ID: "cs_test_prefilled", Status: "open", PaymentStatus: "unpaid", Email: "prefilled@example.com",
			URL: "https://checkout.stripe.com/c/pay/cs_test_prefilled", Created: created, ExpiresAt: created.Add(24 * time.Hour),
			Metadata: map[string]string{},
		}},
		{name: "missing", id: "cs_test_nope", client: c, wantCode: stock.NotFound, wantParam: "session", requests: 1},
		{name: "not a session id", id: "../customers", client: c, wantCode: stock.Invalid},
		{name: "empty id", id: "", client: c, wantCode: stock.Invalid},
		{name: "refused key", id: "cs_test_paid", requests: 1, wantCode: stock.Misconfigured,
			client: newClient(t, stripeapi.Config{SecretKey: "sk_test_revokedkey1234", APIBase: srv.URL()})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Requests(stripetest.EndpointRetrieve)
			got, err := tc.client.Session(t.Context(), tc.id)
			checkErr(t, err, tc.wantCode, tc.wantParam)
			if n := srv.Requests(stripetest.EndpointRetrieve) - before; n != tc.requests {
				t.Errorf("%d requests reached Stripe, want %d", n, tc.requests)
			}
			if err != nil {
				if strings.Contains(err.Error(), "revokedkey") {
					t.Errorf("error %q echoes the key", err)
				}
				return
			}
			// Compare instants, not locations.
			got.Created, got.ExpiresAt = got.Created.In(time.UTC), got.ExpiresAt.In(time.UTC)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Session =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestRefusedKeyMessage(t *testing.T) {
	srv := newFake(t)
	c := newClient(t, stripeapi.Config{SecretKey: "sk_test_revokedkey1234", APIBase: srv.URL()})
	_, err := c.Session(t.Context(), "cs_test_x")
	want := "STRIPE_SECRET_KEY was refused by Stripe while retrieving checkout session cs_test_x; get the current key from Stripe Dashboard → Developers → API keys: Invalid API Key provided: sk_test_****1234 (401 invalid_request_error, request req_fake000001)"
	if err == nil || err.Error() != want {
		t.Errorf("error =\n%v\nwant\n%s", err, want)
	}
}

// TestKeyScrubbed covers a stand-in (or a future Stripe message) that
// echoes the whole key.
func TestKeyScrubbed(t *testing.T) {
	const key = "sk_test_echoedkey5678"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: %s"}}`,
			strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}))
	defer srv.Close()
	c := newClient(t, stripeapi.Config{SecretKey: key, APIBase: srv.URL})
	_, err := c.Session(t.Context(), "cs_test_x")
	checkErr(t, err, stock.Misconfigured, "")
	if msg := err.Error(); strings.Contains(msg, key) || !strings.Contains(msg, "[STRIPE_SECRET_KEY]") {
		t.Errorf("error %q is not scrubbed", msg)
	}
}

func TestSessionStock(t *testing.T) {
	for _, tc := range []struct {
		name     string
		metadata map[string]string
		want     []string
	}{
		{"one artwork", map[string]string{"artworkId": "a1"}, []string{"a1"}},
		{"several artworks", map[string]string{"artworkIds": "a1, a2,,a3"}, []string{"a1", "a2", "a3"}},
		{"no artwork", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stripeapi.Session{ID: "cs_test_1", Status: "complete", PaymentStatus: "paid", Email: "b@example.com",
				Currency: "eur", AmountTotal: 500, Metadata: tc.metadata}
			want := stock.Session{ID: "cs_test_1", Status: "complete", PaymentStatus: "paid", Email: "b@example.com",
				AmountTotal: 500, Currency: "eur", ArtworkIDs: tc.want}
			if got := s.Stock(); !reflect.DeepEqual(got, want) {
				t.Errorf("Stock() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestCompletedSessions(t *testing.T) {
	since, until := now.Add(-48*time.Hour), now.Add(-time.Hour)
	srv := newFake(t)
	var inWindow, all []string // newest first
	put := func(created time.Time, status string, wanted bool) {
		s := srv.Put(stripetest.Session{Created: created, Status: status, PaymentStatus: stripetest.PaymentPaid,
			Metadata: map[string]string{"artworkId": "a"}})
		if status != stripetest.StatusComplete {
			return
		}
		all = append([]string{s.ID}, all...)
		if wanted {
			inWindow = append([]string{s.ID}, inWindow...)
		}
	}
	put(since.Add(-time.Hour), stripetest.StatusComplete, false)
	put(since.Add(-time.Second), stripetest.StatusComplete, false)
	put(since, stripetest.StatusComplete, true)
	for i := range 250 {
		created := since.Add(time.Duration(i+1) * 10 * time.Second)
		put(created, stripetest.StatusComplete, true)
		if i%25 == 0 {
			put(created, stripetest.StatusExpired, false)
		}
	}
	put(until, stripetest.StatusComplete, true)
	put(until.Add(time.Second), stripetest.StatusComplete, false)
	put(now, stripetest.StatusComplete, false)
	c := fakeClient(t, srv)
	errStop := errors.New("stop")

	for _, tc := range []struct {
		name         string
		since, until time.Time
		client       *stripeapi.Client
		stopAt       int // fn fails on this session (1-based)
		failAfter    int // the fake fails the page after this many sessions
		want         []string
		wantCode     stock.Code
		wantErr      error
		requests     int
	}{
		{name: "window, 252 sessions in 3 pages", since: since, until: until, client: c, want: inWindow, requests: 3},
		{name: "open ends", client: c, want: all, requests: 3},
		{name: "fn stops the listing", since: since, until: until, client: c, stopAt: 5, want: inWindow[:5],
			wantCode: stock.Internal /* fn's own error, unclassified */, wantErr: errStop, requests: 1},
		{name: "second page fails", since: since, until: until, failAfter: 100, want: inWindow[:100],
			client:   newClient(t, stripeapi.Config{SecretKey: stripetest.SecretKey, APIBase: srv.URL(), MaxNetworkRetries: -1}),
			wantCode: stock.Unavailable, requests: 2},
		{name: "until before since", since: until, until: since, client: c, wantCode: stock.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Requests(stripetest.EndpointList)
			var got []string
			err := tc.client.CompletedSessions(t.Context(), tc.since, tc.until, func(s stripeapi.Session) error {
				got = append(got, s.ID)
				if s.Status != "complete" || s.Stock().ArtworkIDs[0] != "a" {
					t.Errorf("session %+v is not a complete sale of a", s)
				}
				if len(got) == tc.failAfter {
					srv.FailNext(1, http.StatusInternalServerError)
				}
				if len(got) == tc.stopAt {
					return errStop
				}
				return nil
			})
			checkErr(t, err, tc.wantCode, "")
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v is not %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %d sessions, want %d (first %v, want %v)", len(got), len(tc.want), first(got), first(tc.want))
			}
			if n := srv.Requests(stripetest.EndpointList) - before; n != tc.requests {
				t.Errorf("%d list requests, want %d", n, tc.requests)
			}
		})
	}
}

func first(ids []string) []string { return ids[:min(3, len(ids))] }

func TestCreateSession(t *testing.T) {
	srv := newFake(t)
	c := fakeClient(t, srv)
	expires := now.Add(2 * time.Hour)
	p := stripeapi.CreateParams{
		ArtworkID: "artwork-42", ProductName: "Blue Heron, oil on linen", ImageURL: "https://cdn.sanity.io/images/p/d/heron.jpg",
		UnitAmount: 125000, Currency: "EUR",
		SuccessURL: "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}", CancelURL: "https://shop.example/artworks/artwork-42",
		ExpiresAt: expires, CustomerEmail: "buyer@example.com", IdempotencyKey: "checkout-artwork-42-1",
	}
	got, err := c.CreateSession(t.Context(), p)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if !strings.HasPrefix(got.ID, "cs_test_") || got.URL != "https://checkout.stripe.com/c/pay/"+got.ID {
		t.Errorf("id %q, url %q", got.ID, got.URL)
	}
	want := stripeapi.Session{ID: got.ID, URL: got.URL, Status: "open", PaymentStatus: "unpaid", Email: "buyer@example.com",
		Currency: "eur", AmountTotal: 125000, Created: now, ExpiresAt: expires, Metadata: map[string]string{"artworkId": "artwork-42"}}
	got.Created, got.ExpiresAt = got.Created.In(time.UTC), got.ExpiresAt.In(time.UTC)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CreateSession =\n%+v\nwant\n%+v", got, want)
	}

	// What the fake parsed out of stripe-go's form encoding.
	stored, ok := srv.Session(got.ID)
	if !ok {
		t.Fatalf("the fake has no session %s", got.ID)
	}
	wantItems := []stripetest.LineItem{{Name: p.ProductName, Images: []string{p.ImageURL}, UnitAmount: 125000, Currency: "eur", Quantity: 1}}
	if !reflect.DeepEqual(stored.LineItems, wantItems) {
		t.Errorf("line items = %+v, want %+v", stored.LineItems, wantItems)
	}
	if stored.SuccessURL != p.SuccessURL || stored.CancelURL != p.CancelURL || stored.CustomerEmail != p.CustomerEmail {
		t.Errorf("stored urls/email = %q %q %q", stored.SuccessURL, stored.CancelURL, stored.CustomerEmail)
	}

	t.Run("same idempotency key, same session", func(t *testing.T) {
		again, err := c.CreateSession(t.Context(), p)
		if err != nil || again.ID != got.ID {
			t.Errorf("second create = %s, %v; want %s", again.ID, err, got.ID)
		}
	})
	t.Run("same key, other params", func(t *testing.T) {
		q := p
		q.UnitAmount = 1
		_, err := c.CreateSession(t.Context(), q)
		checkErr(t, err, stock.Upstream, "")
	})
	t.Run("new key, new session", func(t *testing.T) {
		q := p
		q.IdempotencyKey = "checkout-artwork-42-2"
		other, err := c.CreateSession(t.Context(), q)
		if err != nil || other.ID == got.ID {
			t.Errorf("create with a new key = %s, %v; want a new session", other.ID, err)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		s, err := c.CreateSession(t.Context(), stripeapi.CreateParams{ArtworkID: "a1", ProductName: "Sketch", UnitAmount: 900, Currency: "usd"})
		if err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		stored, _ := srv.Session(s.ID)
		if !s.ExpiresAt.Equal(now.Add(24*time.Hour)) || s.Email != "" || stored.LineItems[0].Images != nil || stored.SuccessURL != "" {
			t.Errorf("defaults: %+v, stored %+v", s, stored)
		}
	})
}

func TestCreateSessionRefused(t *testing.T) {
	srv := newFake(t)
	c := fakeClient(t, srv)
	valid := stripeapi.CreateParams{ArtworkID: "a1", ProductName: "Sketch", UnitAmount: 900, Currency: "eur"}
	for _, tc := range []struct {
		name      string
		edit      func(*stripeapi.CreateParams)
		wantCode  stock.Code
		wantParam string
		requests  int
	}{
		{"expires at the earliest", func(p *stripeapi.CreateParams) { p.ExpiresAt = now.Add(30 * time.Minute) }, "", "", 1},
		{"expires at the latest", func(p *stripeapi.CreateParams) { p.ExpiresAt = now.Add(24 * time.Hour) }, "", "", 1},
		{"expires too soon", func(p *stripeapi.CreateParams) { p.ExpiresAt = now.Add(29 * time.Minute) }, stock.Upstream, "expires_at", 1},
		{"expires too late", func(p *stripeapi.CreateParams) { p.ExpiresAt = now.Add(25 * time.Hour) }, stock.Upstream, "expires_at", 1},
		{"negative amount", func(p *stripeapi.CreateParams) { p.UnitAmount = -1 }, stock.Upstream, "line_items[0][price_data][unit_amount]", 1},
		{"no currency", func(p *stripeapi.CreateParams) { p.Currency = "" }, stock.Upstream, "line_items[0][price_data][currency]", 1},
		{"draft artwork id", func(p *stripeapi.CreateParams) { p.ArtworkID = "drafts.a1" }, stock.Invalid, "", 0},
		{"idempotency key too long", func(p *stripeapi.CreateParams) { p.IdempotencyKey = strings.Repeat("k", 256) }, stock.Invalid, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := valid
			tc.edit(&p)
			before := srv.Requests(stripetest.EndpointCreate)
			_, err := c.CreateSession(t.Context(), p)
			checkErr(t, err, tc.wantCode, tc.wantParam)
			if n := srv.Requests(stripetest.EndpointCreate) - before; n != tc.requests {
				t.Errorf("%d create requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestExpireSession(t *testing.T) {
	srv := newFake(t)
	c := fakeClient(t, srv)
	for _, tc := range []struct {
		name, status string
		wantCode     stock.Code
	}{
		{"open", stripetest.StatusOpen, ""},
		{"already complete", stripetest.StatusComplete, stock.Upstream},
		{"already expired", stripetest.StatusExpired, stock.Upstream},
		{"missing", "", stock.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "cs_test_missing"
			if tc.status != "" {
				id = srv.Put(stripetest.Session{Status: tc.status}).ID
			}
			got, err := c.ExpireSession(t.Context(), id)
			checkErr(t, err, tc.wantCode, "")
			if err != nil {
				return
			}
			stored, _ := srv.Session(id)
			if got.Status != "expired" || got.URL != "" || stored.Status != stripetest.StatusExpired {
				t.Errorf("after expiring: returned %+v, stored status %s", got, stored.Status)
			}
		})
	}
	t.Run("not a session id", func(t *testing.T) {
		_, err := c.ExpireSession(t.Context(), "pi_123")
		checkErr(t, err, stock.Invalid, "")
	})
}

// TestFaults checks how each of Stripe's error answers is classified, and
// that none is retried: stripe-go v85 treats a parsed Stripe error as final
// unless it is a 429 lock timeout (see TestRetries).
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		wantCode stock.Code
	}{
		{"500", http.StatusInternalServerError, stock.Unavailable},
		{"503", http.StatusServiceUnavailable, stock.Unavailable},
		{"409 idempotency key in use", http.StatusConflict, stock.Unavailable},
		{"429 rate limit", http.StatusTooManyRequests, stock.Unavailable},
		{"400", http.StatusBadRequest, stock.Upstream},
		{"402", http.StatusPaymentRequired, stock.Upstream},
		{"403 restricted key", http.StatusForbidden, stock.Misconfigured},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t)
			id := srv.Put(stripetest.Session{}).ID
			c := fakeClient(t, srv)
			srv.FailNext(3, tc.status)
			_, err := c.Session(t.Context(), id)
			checkErr(t, err, tc.wantCode, "")
			if n := srv.Requests(stripetest.EndpointRetrieve); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			var ae *stripeapi.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.RequestID == "" {
				t.Errorf("error %v does not carry status %d and a request id", err, tc.status)
			}
			// The fault is spent on one request; the next one succeeds.
			srv.FailNext(0, 0)
			if _, err := c.Session(t.Context(), id); err != nil {
				t.Errorf("after the fault: %v", err)
			}
		})
	}
}

// TestRetries checks what stripe-go does retry, and that MaxNetworkRetries
// reaches it: answers that are not Stripe's JSON and dropped connections.
// Retried cases sleep as stripe-go does (0.5 s, then 1 s).
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		retries  int64
		fail     func(w http.ResponseWriter) // how each failing attempt fails
		failN    int
		wantCode stock.Code
		attempts int
	}{
		{"proxy 502 page until retries run out", 0, proxyPage, 5, stock.Unavailable, 3},
		{"proxy 502 page once", 0, proxyPage, 1, "", 2},
		{"proxy 502 page, one retry", 1, proxyPage, 5, stock.Unavailable, 2},
		{"proxy 502 page, retries disabled", -1, proxyPage, 5, stock.Unavailable, 1},
		{"dropped connection once", 0, dropConnection, 1, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(t)
			id := fake.Put(stripetest.Session{}).ID
			target, _ := url.Parse(fake.URL())
			var mu sync.Mutex
			attempts := 0
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				attempts++
				failing := attempts <= tc.failN
				mu.Unlock()
				if failing {
					tc.fail(w)
					return
				}
				httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
			}))
			defer front.Close()
			c := newClient(t, stripeapi.Config{SecretKey: stripetest.SecretKey, APIBase: front.URL, MaxNetworkRetries: tc.retries})
			_, err := c.Session(t.Context(), id)
			checkErr(t, err, tc.wantCode, "")
			mu.Lock()
			defer mu.Unlock()
			if attempts != tc.attempts {
				t.Errorf("%d attempts, want %d", attempts, tc.attempts)
			}
		})
	}
}

func proxyPage(w http.ResponseWriter) {
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprint(w, "<html><body>502 Bad Gateway</body></html>")
}

func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func TestTransportFailures(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hanging.Close()

	for _, tc := range []struct {
		name, base string
		timeout    time.Duration
		wantIs     error
	}{
		{"connection refused", closed.URL, time.Minute, nil},
		{"deadline", hanging.URL, 50 * time.Millisecond, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, stripeapi.Config{SecretKey: stripetest.SecretKey, APIBase: tc.base, MaxNetworkRetries: -1})
			ctx, cancel := context.WithTimeout(t.Context(), tc.timeout)
			defer cancel()
			_, err := c.Session(ctx, "cs_test_x")
			checkErr(t, err, stock.Unavailable, "")
			if !strings.Contains(err.Error(), tc.base) {
				t.Errorf("error %q does not name %s", err, tc.base)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
		})
	}
}

// An answer under 400 that is not a Checkout Session (a proxy's redirect
// page, an empty object) is not Stripe's: stripe-go takes it for success,
// and read as a session it would call a paid session unpaid, or hold an
// artwork behind an empty link. It is Unavailable, so the caller retries.
func TestAnswerThatIsNotASession(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
	}{
		{"an empty object", http.StatusOK, `{}`},
		{"null", http.StatusOK, `null`},
		{"another object", http.StatusOK, `{"id":"pi_1","object":"payment_intent"}`},
		{"a redirect", http.StatusFound, `<html>moved</html>`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := newClient(t, stripeapi.Config{SecretKey: stripetest.SecretKey, APIBase: srv.URL, MaxNetworkRetries: -1})
			_, err := c.Session(t.Context(), "cs_test_a1")
			checkErr(t, err, stock.Unavailable, "")
			_, err = c.CreateSession(t.Context(), stripeapi.CreateParams{ArtworkID: "a1", ProductName: "Heron", UnitAmount: 1000, Currency: "eur"})
			checkErr(t, err, stock.Unavailable, "")
		})
	}
	t.Run("a created session without its url", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"id":"cs_test_a1","object":"checkout.session","status":"open"}`))
		}))
		defer srv.Close()
		c := newClient(t, stripeapi.Config{SecretKey: stripetest.SecretKey, APIBase: srv.URL, MaxNetworkRetries: -1})
		_, err := c.CreateSession(t.Context(), stripeapi.CreateParams{ArtworkID: "a1", ProductName: "Heron", UnitAmount: 1000, Currency: "eur"})
		checkErr(t, err, stock.Unavailable, "")
	})
}

// TestSessionStringsCleaned: Stripe's answer is read with its strings
// cleaned as the webhook's are (stock.Text), so that the journal can hold
// them and compares the same ids however a session arrived.
func TestSessionStringsCleaned(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"cs_test_a1\u0000","object":"checkout.session","status":"complete","payment_status":"paid\u0000",` +
			`"currency":"eur","customer_details":{"email":"b` + "\xff" + `@example.com"},"metadata":{"artworkId":"a1\u0000"}}`))
	}))
	defer srv.Close()
	c := newClient(t, stripeapi.Config{SecretKey: stripetest.SecretKey, APIBase: srv.URL, MaxNetworkRetries: -1})
	s, err := c.Session(t.Context(), "cs_test_a1")
	if err != nil {
		t.Fatal(err)
	}
	st := s.Stock()
	if s.ID != "cs_test_a1\uFFFD" || s.PaymentStatus != "paid\uFFFD" || s.Email != "b\uFFFD@example.com" ||
		st.ID != s.ID || len(st.ArtworkIDs) != 1 || st.ArtworkIDs[0] != "a1\uFFFD" {
		t.Errorf("session %+v, as stock %+v: want every string cleaned", s, st)
	}
}
