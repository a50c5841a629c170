package stripetest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"soldout/internal/stripeapi/stripetest"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newServer(t *testing.T) *stripetest.Server {
	t.Helper()
	srv := stripetest.New()
	t.Cleanup(srv.Close)
	srv.SetClock(func() time.Time { return now })
	return srv
}

type request struct {
	method, path string
	form         url.Values
	auth         string // Authorization header; default the fake's key
	idempotency  string
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

// err is the "error" object of an error answer, nil otherwise.
func (r response) err() map[string]any {
	e, _ := r.body["error"].(map[string]any)
	return e
}

func call(t *testing.T, srv *stripetest.Server, rq request) response {
	t.Helper()
	target := srv.URL() + rq.path
	var body *strings.Reader
	if rq.method == http.MethodGet {
		if len(rq.form) > 0 {
			target += "?" + rq.form.Encode()
		}
		body = strings.NewReader("")
	} else {
		body = strings.NewReader(rq.form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), rq.method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	switch rq.auth {
	case "":
		req.Header.Set("Authorization", "Bearer "+stripetest.SecretKey)
	case "none":
	default:
		req.Header.Set("Authorization", rq.auth)
	}
	if rq.idempotency != "" {
		req.Header.Set("Idempotency-Key", rq.idempotency)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := response{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&out.body); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", rq.method, rq.path, err)
	}
	if resp.Header.Get("Request-Id") == "" {
		t.Errorf("%s %s: no Request-Id header", rq.method, rq.path)
	}
	return out
}

// validCreate is a form as stripe-go encodes stripeapi.CreateSession.
func validCreate() url.Values {
	return url.Values{
		"mode":                                               {"payment"},
		"line_items[0][quantity]":                            {"1"},
		"line_items[0][price_data][currency]":                {"eur"},
		"line_items[0][price_data][unit_amount]":             {"125000"},
		"line_items[0][price_data][product_data][name]":      {"Heron"},
		"line_items[0][price_data][product_data][images][0]": {"https://cdn.example/heron.jpg"},
		"metadata[artworkId]":                                {"artwork-42"},
		"success_url":                                        {"https://shop.example/thanks"},
		"expires_at":                                         {strconv.FormatInt(now.Add(time.Hour).Unix(), 10)},
	}
}

func with(form url.Values, kv ...string) url.Values {
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			f.Del(kv[i])
		} else {
			f.Set(kv[i], kv[i+1])
		}
	}
	return f
}

func TestAuthentication(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		name, auth, want string
	}{
		{"no header", "none", "You did not provide an API key."},
		{"wrong key", "Bearer sk_test_wrong", "Invalid API Key provided: sk_test_****"},
		{"long wrong key", "Bearer sk_test_abcdefghijkl1234", "Invalid API Key provided: sk_test_****1234"},
		{"basic auth", "Basic c2tfdGVzdDo=", "Invalid API Key provided: ****"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions", auth: tc.auth})
			e := r.err()
			if r.status != http.StatusUnauthorized || e["type"] != "invalid_request_error" || !strings.HasPrefix(e["message"].(string), tc.want) {
				t.Errorf("got %d %v, want 401 starting %q", r.status, r.body, tc.want)
			}
		})
	}
}

func TestCreateRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		form      url.Values
		status    int
		code      string
		param     string
		errorType string // default invalid_request_error
	}{
		{"no mode", with(validCreate(), "mode", ""), 400, "parameter_missing", "mode", ""},
		{"subscription mode", with(validCreate(), "mode", "subscription"), 400, "", "mode", ""},
		{"no line items", url.Values{"mode": {"payment"}}, 400, "parameter_missing", "line_items", ""},
		{"no quantity", with(validCreate(), "line_items[0][quantity]", ""), 400, "parameter_missing", "line_items[0][quantity]", ""},
		{"no name", with(validCreate(), "line_items[0][price_data][product_data][name]", ""), 400, "parameter_missing", "line_items[0][price_data][product_data][name]", ""},
		{"zero quantity", with(validCreate(), "line_items[0][quantity]", "0"), 400, "", "line_items[0][quantity]", ""},
		{"amount not an integer", with(validCreate(), "line_items[0][price_data][unit_amount]", "12.50"), 400, "parameter_invalid_integer", "line_items[0][price_data][unit_amount]", ""},
		{"bad currency", with(validCreate(), "line_items[0][price_data][currency]", "euro"), 400, "", "line_items[0][price_data][currency]", ""},
		{"unknown top-level param", with(validCreate(), "client_reference_id", "x"), 400, "parameter_unknown", "client_reference_id", ""},
		{"unknown line item param", with(validCreate(), "line_items[0][price]", "price_123"), 400, "parameter_unknown", "line_items[0][price]", ""},
		{"malformed key", with(validCreate(), "metadata[artworkId", "x"), 400, "parameter_unknown", "metadata[artworkId", ""},
		{"gap in line items", with(validCreate(), "line_items[2][quantity]", "1"), 400, "", "line_items[2]", ""},
		{"mixed currencies", with(validCreate(),
			"line_items[1][quantity]", "1", "line_items[1][price_data][currency]", "usd",
			"line_items[1][price_data][unit_amount]", "1", "line_items[1][price_data][product_data][name]", "Frame"),
			400, "", "line_items[1][price_data][currency]", ""},
		{"metadata value too long", with(validCreate(), "metadata[note]", strings.Repeat("x", 501)), 400, "", "metadata[note]", ""},
		{"unknown expansion", with(validCreate(), "expand[0]", "customer"), 400, "", "expand[0]", ""},
		{"expires_at not an integer", with(validCreate(), "expires_at", "soon"), 400, "parameter_invalid_integer", "expires_at", ""},
		{"expires 1 s too soon", with(validCreate(), "expires_at", strconv.FormatInt(now.Add(30*time.Minute-time.Second).Unix(), 10)), 400, "", "expires_at", ""},
		{"expires 1 s too late", with(validCreate(), "expires_at", strconv.FormatInt(now.Add(24*time.Hour+time.Second).Unix(), 10)), 400, "", "expires_at", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			r := call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions", form: tc.form})
			e := r.err()
			wantType := tc.errorType
			if wantType == "" {
				wantType = "invalid_request_error"
			}
			code, _ := e["code"].(string)
			if r.status != tc.status || e["type"] != wantType || code != tc.code || e["param"] != tc.param {
				t.Errorf("got %d %v; want %d type %s code %q param %q", r.status, r.body, tc.status, wantType, tc.code, tc.param)
			}
			if e["message"] == "" {
				t.Error("no message")
			}
		})
	}
}

func TestCreateAndRetrieve(t *testing.T) {
	srv := newServer(t)
	form := with(validCreate(),
		"line_items[0][quantity]", "2",
		"line_items[1][quantity]", "1", "line_items[1][price_data][currency]", "EUR",
		"line_items[1][price_data][unit_amount]", "5000", "line_items[1][price_data][product_data][name]", "Frame",
		"expand[0]", "line_items")
	r := call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions", form: form})
	if r.status != http.StatusOK {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	id, _ := r.body["id"].(string)
	for k, want := range map[string]any{
		"object": "checkout.session", "status": "open", "payment_status": "unpaid", "mode": "payment",
		"amount_total": 255000.0, "currency": "eur", "created": float64(now.Unix()),
		"url": "https://checkout.stripe.com/c/pay/" + id, "customer_details": nil, "cancel_url": nil,
	} {
		if r.body[k] != want {
			t.Errorf("%s = %#v, want %#v", k, r.body[k], want)
		}
	}
	items := r.body["line_items"].(map[string]any)
	data := items["data"].([]any)
	if items["object"] != "list" || len(data) != 2 || data[0].(map[string]any)["amount_total"] != 250000.0 ||
		data[1].(map[string]any)["price"].(map[string]any)["unit_amount"] != 5000.0 {
		t.Errorf("line_items = %v", items)
	}

	got := call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions/" + id})
	if got.body["id"] != id || got.body["line_items"] != nil {
		t.Errorf("retrieve without expand = %v", got.body)
	}
	got = call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions/" + id, form: url.Values{"expand[]": {"line_items"}}})
	if got.body["line_items"] == nil {
		t.Errorf("retrieve with expand[] = %v", got.body)
	}
	got = call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions/" + id, form: url.Values{"limit": {"3"}}})
	if got.status != http.StatusBadRequest || got.err()["code"] != "parameter_unknown" {
		t.Errorf("retrieve with an unknown param = %d %v", got.status, got.body)
	}
	missing := call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions/cs_test_nope"})
	if e := missing.err(); missing.status != http.StatusNotFound || e["code"] != "resource_missing" || e["param"] != "session" ||
		e["message"] != "No such checkout.session: 'cs_test_nope'" {
		t.Errorf("missing = %d %v", missing.status, missing.body)
	}
}

func TestIdempotency(t *testing.T) {
	srv := newServer(t)
	first := call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions", form: validCreate(), idempotency: "k1"})
	again := call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions", form: validCreate(), idempotency: "k1"})
	if again.body["id"] != first.body["id"] || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay = %v (replayed %q), want %v", again.body["id"], again.header.Get("Idempotent-Replayed"), first.body["id"])
	}
	other := call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions", form: with(validCreate(), "metadata[artworkId]", "other"), idempotency: "k1"})
	if other.status != http.StatusBadRequest || other.err()["type"] != "idempotency_error" {
		t.Errorf("reuse with other params = %d %v", other.status, other.body)
	}
	// A refused request is not saved, so the key can still be used.
	call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions", form: with(validCreate(), "mode", ""), idempotency: "k2"})
	if r := call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions", form: validCreate(), idempotency: "k2"}); r.status != http.StatusOK {
		t.Errorf("after a refused request: %d %v", r.status, r.body)
	}
	if n := srv.Requests(stripetest.EndpointCreate); n != 5 {
		t.Errorf("Requests(create) = %d, want 5", n)
	}
}

func TestExpire(t *testing.T) {
	srv := newServer(t)
	open := srv.Put(stripetest.Session{})
	r := call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions/" + open.ID + "/expire"})
	if r.status != http.StatusOK || r.body["status"] != "expired" || r.body["url"] != nil {
		t.Errorf("expire = %d %v", r.status, r.body)
	}
	r = call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions/" + open.ID + "/expire"})
	if r.status != http.StatusBadRequest || r.err()["type"] != "invalid_request_error" {
		t.Errorf("expire again = %d %v", r.status, r.body)
	}
	r = call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions/cs_test_nope/expire"})
	if r.status != http.StatusNotFound {
		t.Errorf("expire missing = %d %v", r.status, r.body)
	}
	r = call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions/" + open.ID + "/expire", form: url.Values{"reason": {"x"}}})
	if r.status != http.StatusBadRequest || r.err()["param"] != "reason" {
		t.Errorf("expire with an unknown param = %d %v", r.status, r.body)
	}
}

func TestClockAndComplete(t *testing.T) {
	srv := newServer(t)
	clock := now
	srv.SetClock(func() time.Time { return clock })
	s := srv.Put(stripetest.Session{ExpiresAt: now.Add(time.Hour), CustomerEmail: "pre@example.com"})
	late := srv.Put(stripetest.Session{ExpiresAt: now.Add(time.Hour)})
	other := srv.Put(stripetest.Session{})

	if err := srv.Complete(s.ID, "refunded"); err == nil {
		t.Error("Complete accepted payment status refunded")
	}
	if err := srv.Complete("cs_test_nope", stripetest.PaymentPaid); err == nil {
		t.Error("Complete accepted a missing session")
	}
	if err := srv.Complete(s.ID, stripetest.PaymentPaid); err != nil {
		t.Fatal(err)
	}
	if err := srv.Complete(other.ID, stripetest.PaymentNoPaymentRequired); err != nil {
		t.Fatal(err)
	}
	r := call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions/" + s.ID})
	if r.body["status"] != "complete" || r.body["payment_status"] != "paid" || r.body["url"] != nil ||
		r.body["customer_details"].(map[string]any)["email"] != "pre@example.com" {
		t.Errorf("completed session = %v", r.body)
	}
	if got, _ := srv.Session(other.ID); got.Email != "buyer@example.com" {
		t.Errorf("email without a prefilled one = %q", got.Email)
	}

	clock = now.Add(time.Hour) // expires_at is reached
	r = call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions/" + late.ID})
	if r.body["status"] != "expired" {
		t.Errorf("after expires_at: status %v", r.body["status"])
	}
	if err := srv.Complete(late.ID, stripetest.PaymentPaid); err == nil {
		t.Error("Complete accepted an expired session")
	}
	srv.SetClock(nil)
	if got, _ := srv.Session(s.ID); got.Status != stripetest.StatusComplete {
		t.Errorf("a complete session changed status to %s", got.Status)
	}
}

func TestList(t *testing.T) {
	srv := newServer(t)
	base := now.Add(-time.Hour)
	var ids []string // created order
	for i := range 15 {
		status := stripetest.StatusComplete
		if i%5 == 4 {
			status = stripetest.StatusExpired
		}
		// Pairs share a second: the later Put lists first, as on Stripe.
		ids = append(ids, srv.Put(stripetest.Session{Status: status, Created: base.Add(time.Duration(i/2) * time.Second)}).ID)
	}
	page := func(form url.Values) (list []string, hasMore bool, r response) {
		r = call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions", form: form})
		if r.status != http.StatusOK {
			return nil, false, r
		}
		if r.body["object"] != "list" || r.body["url"] != "/v1/checkout/sessions" {
			t.Errorf("envelope = %v", r.body)
		}
		for _, d := range r.body["data"].([]any) {
			list = append(list, d.(map[string]any)["id"].(string))
		}
		return list, r.body["has_more"].(bool), r
	}
	unix := func(d time.Duration) string { return strconv.FormatInt(base.Add(d).Unix(), 10) }

	for _, tc := range []struct {
		name    string
		form    url.Values
		want    []int // indexes into ids, newest first
		hasMore bool
		param   string // of the 400 wanted
	}{
		{"default limit 10", nil, []int{14, 13, 12, 11, 10, 9, 8, 7, 6, 5}, true, ""},
		{"status and limit", url.Values{"status": {"expired"}, "limit": {"2"}}, []int{14, 9}, true, ""},
		{"last page", url.Values{"status": {"expired"}, "starting_after": {ids[9]}}, []int{4}, false, ""},
		{"exactly a page", url.Values{"status": {"expired"}, "limit": {"3"}}, []int{14, 9, 4}, false, ""},
		{"created window", url.Values{"created[gte]": {unix(2 * time.Second)}, "created[lt]": {unix(4 * time.Second)}}, []int{7, 6, 5, 4}, false, ""},
		{"created gt and lte", url.Values{"created[gt]": {unix(5 * time.Second)}, "created[lte]": {unix(6 * time.Second)}}, []int{13, 12}, false, ""},
		{"created exactly", url.Values{"created": {unix(0)}}, []int{1, 0}, false, ""},
		{"cursor outside the filter", url.Values{"status": {"complete"}, "starting_after": {ids[9]}, "limit": {"3"}}, []int{8, 7, 6}, true, ""},
		{"expand line items", url.Values{"expand[0]": {"data.line_items"}, "limit": {"1"}}, []int{14}, true, ""},
		{"limit 0", url.Values{"limit": {"0"}}, nil, false, "limit"},
		{"limit 101", url.Values{"limit": {"101"}}, nil, false, "limit"},
		{"limit not a number", url.Values{"limit": {"ten"}}, nil, false, "limit"},
		{"bad status", url.Values{"status": {"paid"}}, nil, false, "status"},
		{"unknown cursor", url.Values{"starting_after": {"cs_test_nope"}}, nil, false, "starting_after"},
		{"unknown created operator", url.Values{"created[eq]": {unix(0)}}, nil, false, "created[eq]"},
		{"ending_before is not modelled", url.Values{"ending_before": {ids[0]}}, nil, false, "ending_before"},
		{"unknown expansion", url.Values{"expand[0]": {"line_items"}}, nil, false, "expand[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, hasMore, r := page(tc.form)
			if tc.param != "" {
				if r.status != http.StatusBadRequest || r.err()["param"] != tc.param {
					t.Errorf("got %d %v, want 400 on %s", r.status, r.body, tc.param)
				}
				return
			}
			var want []string
			for _, i := range tc.want {
				want = append(want, ids[i])
			}
			if strings.Join(got, ",") != strings.Join(want, ",") || hasMore != tc.hasMore {
				t.Errorf("got %v has_more %v, want %v has_more %v", got, hasMore, want, tc.hasMore)
			}
		})
	}
}

func TestFailNextAndCounters(t *testing.T) {
	srv := newServer(t)
	id := srv.Put(stripetest.Session{}).ID
	for _, tc := range []struct {
		status    int
		errorType string
		code      string
	}{
		{500, "api_error", ""},
		{503, "api_error", ""},
		{429, "invalid_request_error", "rate_limit"},
		{409, "invalid_request_error", "idempotency_key_in_use"},
		{400, "invalid_request_error", ""},
	} {
		srv.FailNext(2, tc.status)
		for range 2 {
			r := call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions/" + id})
			code, _ := r.err()["code"].(string)
			if r.status != tc.status || r.err()["type"] != tc.errorType || code != tc.code {
				t.Errorf("FailNext(%d) answered %d %v", tc.status, r.status, r.body)
			}
		}
		if r := call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions/" + id}); r.status != http.StatusOK {
			t.Errorf("after the faults: %d %v", r.status, r.body)
		}
	}
	// An injected fault does not act: the session stays open.
	srv.FailNext(1, 500)
	call(t, srv, request{method: http.MethodPost, path: "/v1/checkout/sessions/" + id + "/expire"})
	if s, _ := srv.Session(id); s.Status != stripetest.StatusOpen {
		t.Errorf("a failed expire acted: status %s", s.Status)
	}

	r := call(t, srv, request{method: http.MethodGet, path: "/v1/customers"})
	if r.status != http.StatusNotFound || !strings.HasPrefix(r.err()["message"].(string), "Unrecognized request URL (GET: /v1/customers)") {
		t.Errorf("unknown URL = %d %v", r.status, r.body)
	}
	for endpoint, want := range map[string]int{
		stripetest.EndpointRetrieve: 15, stripetest.EndpointExpire: 1, stripetest.EndpointList: 0, "/": 1,
	} {
		if got := srv.Requests(endpoint); got != want {
			t.Errorf("Requests(%q) = %d, want %d", endpoint, got, want)
		}
	}
}

func TestPutDefaults(t *testing.T) {
	srv := newServer(t)
	s := srv.Put(stripetest.Session{
		Created:   now.Add(-500 * time.Millisecond),
		Metadata:  map[string]string{"artworkId": "a1"},
		LineItems: []stripetest.LineItem{{Name: "A", UnitAmount: 300, Currency: "eur", Quantity: 2}},
	})
	if !strings.HasPrefix(s.ID, "cs_test_") || s.Status != "open" || s.PaymentStatus != "unpaid" || s.AmountTotal != 600 ||
		s.Currency != "eur" || s.Created.Unix() != now.Unix()-1 || s.Created.Nanosecond() != 0 || !s.ExpiresAt.Equal(s.Created.Add(24*time.Hour)) {
		t.Errorf("defaults = %+v", s)
	}
	// The fake keeps copies: changing what Put returned changes nothing.
	s.Metadata["artworkId"] = "changed"
	if got, _ := srv.Session(s.ID); got.Metadata["artworkId"] != "a1" {
		t.Error("Put returned the stored map")
	}
	replaced := srv.Put(stripetest.Session{ID: s.ID, Status: stripetest.StatusComplete})
	if got, _ := srv.Session(s.ID); got.Status != "complete" || replaced.ID != s.ID || got.LineItems != nil {
		t.Errorf("replaced = %+v", got)
	}
	if _, ok := srv.Session("cs_test_nope"); ok {
		t.Error("Session found a missing id")
	}
}

// A session's payment_intent is null until it completes, then an id, or the
// object when expanded; a failed delayed payment shows only there, since
// the session stays complete and unpaid.
func TestPaymentIntent(t *testing.T) {
	srv := newServer(t)
	open := srv.Put(stripetest.Session{})
	sepa := srv.Put(stripetest.Session{})
	if err := srv.Complete(sepa.ID, stripetest.PaymentUnpaid); err != nil {
		t.Fatal(err)
	}
	if r := call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions/" + open.ID}); r.body["payment_intent"] != nil {
		t.Errorf("open session: payment_intent %v, want null", r.body["payment_intent"])
	}
	if r := call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions/" + sepa.ID}); r.body["payment_intent"] != "pi_"+strings.TrimPrefix(sepa.ID, "cs_") {
		t.Errorf("completed session: payment_intent %v, want its id", r.body["payment_intent"])
	}
	status := func() any {
		r := call(t, srv, request{method: http.MethodGet, path: "/v1/checkout/sessions", form: url.Values{"status": {"complete"}, "expand[0]": {"data.payment_intent"}}})
		data, _ := r.body["data"].([]any)
		if len(data) != 1 {
			t.Fatalf("list: %d %v", r.status, r.body)
		}
		pi, _ := data[0].(map[string]any)["payment_intent"].(map[string]any)
		return pi["status"]
	}
	if got := status(); got != stripetest.IntentProcessing {
		t.Errorf("delayed payment: %v, want processing", got)
	}
	if err := srv.FailPayment(sepa.ID); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != stripetest.IntentRequiresPaymentMethod {
		t.Errorf("failed delayed payment: %v, want requires_payment_method", got)
	}
	if s, _ := srv.Session(sepa.ID); s.Status != stripetest.StatusComplete || s.PaymentStatus != stripetest.PaymentUnpaid {
		t.Errorf("session after the failure: %s / %s, want complete / unpaid", s.Status, s.PaymentStatus)
	}
	if err := srv.FailPayment(open.ID); err == nil {
		t.Error("FailPayment of an open session")
	}
}
