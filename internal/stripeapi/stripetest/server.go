// Package stripetest is a stateful, in-memory fake of the part of Stripe's
// API that soldout calls: Checkout Sessions created, retrieved, listed and
// expired, over Stripe's wire format (form-encoded requests with bracket
// keys, JSON answers, Stripe's error bodies and status codes). Tests point
// stripeapi.Config.APIBase (STRIPE_API_BASE) at Server.URL, play the buyer
// with Put and Complete, and inject failures with FailNext.
//
// It is a test helper, to be imported only from _test.go files, and a fake,
// not Stripe. It models only the parameters soldout sends and refuses any
// other as unknown, so that a test cannot pass because the fake ignored
// something; stripeapi's tests check the real wire format against stripe-mock.
package stripetest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SecretKey is the only API key the fake accepts.
const SecretKey = "sk_test_stripetest"

// Endpoints, as counted by Requests. Any other request is answered 404 and
// counted under "/".
const (
	EndpointCreate   = "POST /v1/checkout/sessions"
	EndpointList     = "GET /v1/checkout/sessions"
	EndpointRetrieve = "GET /v1/checkout/sessions/{id}"
	EndpointExpire   = "POST /v1/checkout/sessions/{id}/expire"
)

// Stripe's bounds on expires_at, counted from the session's creation.
const (
	MinExpiry = 30 * time.Minute
	MaxExpiry = 24 * time.Hour
)

// Checkout Session statuses and payment statuses.
const (
	StatusOpen     = "open"
	StatusComplete = "complete"
	StatusExpired  = "expired"

	PaymentPaid              = "paid"
	PaymentUnpaid            = "unpaid"
	PaymentNoPaymentRequired = "no_payment_required"
)

// Session is a Checkout Session as the fake stores it. Times are kept to the
// second, as Stripe keeps them.
type Session struct {
	ID            string    // default: a new cs_test_… id
	Status        string    // default: open
	PaymentStatus string    // default: unpaid
	Created       time.Time // default: the clock's now
	ExpiresAt     time.Time // default: MaxExpiry after Created
	Currency      string    // default: the line items' currency
	AmountTotal   int64     // default: the sum of the line items
	CustomerEmail string    // customer_email: prefilled at creation
	Email         string    // customer_details.email: typed by the buyer
	Metadata      map[string]string
	Livemode      bool
	SuccessURL    string
	CancelURL     string
	LineItems     []LineItem
	// PaymentIntentStatus is the status of the session's PaymentIntent;
	// "" for none (an open session, or nothing to pay). Complete sets it:
	// succeeded when paid, processing for a delayed payment, which
	// FailPayment turns into requires_payment_method, as a failed SEPA
	// debit does.
	PaymentIntentStatus string
}

// PaymentIntent statuses the fake models.
const (
	IntentSucceeded             = "succeeded"
	IntentProcessing            = "processing"
	IntentRequiresPaymentMethod = "requires_payment_method"
)

// LineItem is one line_items[i] with inline price_data.
type LineItem struct {
	Name       string
	Images     []string
	UnitAmount int64
	Currency   string
	Quantity   int64
}

// Server is the fake. Its methods are safe for concurrent use with the
// requests it serves.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	now      func() time.Time
	sessions map[string]*entry
	seq      int // orders sessions created in the same second
	ids      int
	requests map[string]int
	reqIDs   int
	replays  map[string]replay // by Idempotency-Key
	failN    int
	failWith int
}

type entry struct {
	Session
	seq int
}

// replay is a successful answer to a POST, kept for its Idempotency-Key.
type replay struct {
	request string // method, path and form of the first request
	body    []byte
}

// New starts a fake on a loopback port. Close it when done.
func New() *Server {
	s := &Server{
		now:      time.Now,
		sessions: make(map[string]*entry),
		requests: make(map[string]int),
		replays:  make(map[string]replay),
	}
	mux := http.NewServeMux()
	mux.HandleFunc(EndpointCreate, s.handle(s.create))
	mux.HandleFunc(EndpointList, s.handle(s.list))
	mux.HandleFunc(EndpointRetrieve, s.handle(s.retrieve))
	mux.HandleFunc(EndpointExpire, s.handle(s.expire))
	mux.HandleFunc("/", s.handle(unrecognized))
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the base URL to use as STRIPE_API_BASE.
func (s *Server) URL() string { return s.srv.URL }

// Close shuts the fake down.
func (s *Server) Close() { s.srv.Close() }

// SetClock replaces the fake's clock (nil restores time.Now). It decides
// created times, the expires_at bounds and when open sessions expire.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	s.now = now
}

// Put stores a copy of sess as if Stripe had it, replacing any session with
// the same ID, and returns what was stored. Zero fields get the defaults
// documented on Session. An open session whose ExpiresAt has passed expires
// at the next request, as on Stripe.
func (s *Server) Put(sess Session) Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess = clone(sess)
	if sess.ID == "" {
		sess.ID = s.newID()
	}
	if sess.Status == "" {
		sess.Status = StatusOpen
	}
	if sess.PaymentStatus == "" {
		sess.PaymentStatus = PaymentUnpaid
	}
	if sess.Created.IsZero() {
		sess.Created = s.now()
	}
	sess.Created = seconds(sess.Created)
	if sess.ExpiresAt.IsZero() {
		sess.ExpiresAt = sess.Created.Add(MaxExpiry)
	}
	sess.ExpiresAt = seconds(sess.ExpiresAt)
	if len(sess.LineItems) > 0 {
		if sess.Currency == "" {
			sess.Currency = sess.LineItems[0].Currency
		}
		if sess.AmountTotal == 0 {
			sess.AmountTotal = total(sess.LineItems)
		}
	}
	s.store(sess)
	return clone(sess)
}

// Complete marks an open session complete with paymentStatus (paid, unpaid
// for a delayed payment method, or no_payment_required), as if the buyer
// had finished the checkout. customer_details.email becomes the prefilled
// customer_email, or buyer@example.com.
func (s *Server) Complete(id, paymentStatus string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch paymentStatus {
	case PaymentPaid, PaymentUnpaid, PaymentNoPaymentRequired:
	default:
		return fmt.Errorf("stripetest: payment status %q is not paid, unpaid or no_payment_required", paymentStatus)
	}
	s.expireDue()
	e, ok := s.sessions[id]
	if !ok {
		return fmt.Errorf("stripetest: no session %s", id)
	}
	if e.Status != StatusOpen {
		return fmt.Errorf("stripetest: session %s is %s, not open", id, e.Status)
	}
	e.Status, e.PaymentStatus = StatusComplete, paymentStatus
	switch paymentStatus {
	case PaymentPaid:
		e.PaymentIntentStatus = IntentSucceeded
	case PaymentUnpaid:
		e.PaymentIntentStatus = IntentProcessing
	}
	if e.Email == "" {
		e.Email = cmp.Or(e.CustomerEmail, "buyer@example.com")
	}
	return nil
}

// FailPayment makes the delayed payment of a completed, unpaid session
// fail: its PaymentIntent needs a new payment method, while the session
// itself stays complete and unpaid, as Stripe leaves it.
func (s *Server) FailPayment(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.sessions[id]
	switch {
	case !ok:
		return fmt.Errorf("stripetest: no session %s", id)
	case e.PaymentIntentStatus != IntentProcessing:
		return fmt.Errorf("stripetest: session %s has no delayed payment in progress", id)
	}
	e.PaymentIntentStatus = IntentRequiresPaymentMethod
	return nil
}

// Session returns a copy of the stored session.
func (s *Server) Session(id string) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDue()
	e, ok := s.sessions[id]
	if !ok {
		return Session{}, false
	}
	return clone(e.Session), true
}

// FailNext answers the next n authenticated requests, whatever their
// endpoint, with status and Stripe's error body for it (429 rate_limit, 409
// idempotency_key_in_use, 5xx api_error) without acting on them.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failWith = n, status
}

// Requests is how many requests reached endpoint (one of the Endpoint
// constants), failed ones included.
func (s *Server) Requests(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[endpoint]
}

// handle wraps an endpoint with what every Stripe request goes through:
// counting, authentication, injected faults, expiry of overdue sessions and
// idempotent replay of POSTs.
func (s *Server) handle(h func(*http.Request, url.Values) (any, *apiError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests[r.Pattern]++
		s.reqIDs++
		w.Header().Set("Request-Id", fmt.Sprintf("req_fake%06d", s.reqIDs))
		if e := authenticate(r); e != nil {
			writeError(w, e)
			return
		}
		if s.failN > 0 {
			s.failN--
			writeError(w, injected(s.failWith))
			return
		}
		if err := r.ParseForm(); err != nil {
			writeError(w, invalid("", "Invalid request body: %v", err))
			return
		}
		s.expireDue()

		key := r.Header.Get("Idempotency-Key")
		idempotent := r.Method == http.MethodPost && key != ""
		request := r.Method + " " + r.URL.Path + "?" + r.Form.Encode()
		if rp, ok := s.replays[key]; idempotent && ok {
			if rp.request != request {
				writeError(w, &apiError{Status: http.StatusBadRequest, Type: "idempotency_error", Message: fmt.Sprintf(
					"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", key)})
				return
			}
			w.Header().Set("Idempotent-Replayed", "true")
			writeJSON(w, http.StatusOK, rp.body)
			return
		}

		v, e := h(r, r.Form)
		if e != nil {
			writeError(w, e)
			return
		}
		body, err := json.Marshal(v)
		if err != nil {
			writeError(w, &apiError{Status: http.StatusInternalServerError, Type: "api_error", Message: "stripetest: " + err.Error()})
			return
		}
		if idempotent {
			s.replays[key] = replay{request: request, body: body}
		}
		writeJSON(w, http.StatusOK, body)
	}
}

func authenticate(r *http.Request) *apiError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."}
	}
	if key, ok := strings.CutPrefix(auth, "Bearer "); !ok || key != SecretKey {
		return &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Message: "Invalid API Key provided: " + mask(key)}
	}
	return nil
}

// mask shows a key the way Stripe does: its prefix and at most its last four
// characters.
func mask(key string) string {
	prefix := ""
	if i := strings.LastIndexByte(key, '_'); i >= 0 && i < 16 {
		prefix = key[:i+1]
	}
	if rest := key[len(prefix):]; len(rest) > 8 {
		return prefix + "****" + rest[len(rest)-4:]
	}
	return prefix + "****"
}

func injected(status int) *apiError {
	switch {
	case status == http.StatusTooManyRequests:
		return &apiError{Status: status, Type: "invalid_request_error", Code: "rate_limit", Message: "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."}
	case status == http.StatusConflict:
		return &apiError{Status: status, Type: "invalid_request_error", Code: "idempotency_key_in_use", Message: "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through). Please try again later."}
	case status >= 500:
		return &apiError{Status: status, Type: "api_error", Message: "An unknown error occurred"}
	default:
		return &apiError{Status: status, Type: "invalid_request_error", Message: "stripetest: injected " + http.StatusText(status)}
	}
}

func unrecognized(r *http.Request, _ url.Values) (any, *apiError) {
	return nil, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Message: fmt.Sprintf(
		"Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.", r.Method, r.URL.Path)}
}

func (s *Server) create(_ *http.Request, form url.Values) (any, *apiError) {
	created := seconds(s.now())
	sess := Session{
		Status:        StatusOpen,
		PaymentStatus: PaymentUnpaid,
		Created:       created,
		ExpiresAt:     created.Add(MaxExpiry),
		Metadata:      make(map[string]string),
	}
	var mode string
	var expand []string
	items := make(map[int]map[string]string) // fields by index, keys like price_data/currency
	for _, key := range sortedKeys(form) {
		v, p := form.Get(key), splitKey(key)
		switch {
		case key == "mode":
			mode = v
		case key == "success_url":
			sess.SuccessURL = v
		case key == "cancel_url":
			sess.CancelURL = v
		case key == "customer_email":
			sess.CustomerEmail = v
		case key == "expires_at":
			n, e := parseInt(key, v)
			if e != nil {
				return nil, e
			}
			d := time.Unix(n, 0).Sub(created)
			if d < MinExpiry {
				return nil, invalid(key, "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.")
			}
			if d > MaxExpiry {
				return nil, invalid(key, "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.")
			}
			sess.ExpiresAt = time.Unix(n, 0)
		case len(p) == 2 && p[0] == "metadata":
			if len(p[1]) > 40 || len(v) > 500 {
				return nil, invalid(key, "Metadata keys can have up to 40 characters and values up to 500.")
			}
			sess.Metadata[p[1]] = v
		case len(p) == 2 && p[0] == "expand":
			expand = append(expand, v)
		case len(p) >= 3 && p[0] == "line_items" && isIndex(p[1]):
			i, _ := strconv.Atoi(p[1])
			if items[i] == nil {
				items[i] = make(map[string]string)
			}
			items[i][strings.Join(p[2:], "/")] = v
		default:
			return nil, unknownParam(key)
		}
	}
	if mode == "" {
		return nil, missing("mode")
	}
	if mode != "payment" {
		return nil, invalid("mode", "stripetest models only mode=payment, not %q.", mode)
	}
	if len(items) == 0 {
		return nil, missing("line_items")
	}
	for n, i := range slices.Sorted(maps.Keys(items)) {
		if i != n {
			return nil, invalid(fmt.Sprintf("line_items[%d]", i), "Invalid array: line_items has no item %d.", n)
		}
		li, e := lineItem(i, items[i])
		if e != nil {
			return nil, e
		}
		if n > 0 && li.Currency != sess.LineItems[0].Currency {
			return nil, invalid(fmt.Sprintf("line_items[%d][price_data][currency]", i), "All line items must have the same currency.")
		}
		sess.LineItems = append(sess.LineItems, li)
	}
	exp, e := expanded(expand, "")
	if e != nil {
		return nil, e
	}
	sess.Currency = sess.LineItems[0].Currency
	sess.AmountTotal = total(sess.LineItems)
	sess.ID = s.newID()
	return render(s.store(sess), exp), nil
}

func lineItem(i int, fields map[string]string) (LineItem, *apiError) {
	param := func(f string) string {
		return fmt.Sprintf("line_items[%d][%s]", i, strings.ReplaceAll(f, "/", "]["))
	}
	for _, f := range []string{"price_data/currency", "price_data/unit_amount", "price_data/product_data/name", "quantity"} {
		if _, ok := fields[f]; !ok {
			return LineItem{}, missing(param(f))
		}
	}
	var li LineItem
	images := make(map[int]string)
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		v := fields[f]
		var e *apiError
		switch f {
		case "price_data/currency":
			li.Currency = strings.ToLower(v)
			if len(li.Currency) != 3 || strings.Trim(li.Currency, "abcdefghijklmnopqrstuvwxyz") != "" {
				e = invalid(param(f), "Invalid currency: %s.", v)
			}
		case "price_data/unit_amount":
			if li.UnitAmount, e = parseInt(param(f), v); e == nil && li.UnitAmount < 0 {
				e = invalid(param(f), "This value must be greater than or equal to 0.")
			}
		case "price_data/product_data/name":
			li.Name = v
		case "quantity":
			if li.Quantity, e = parseInt(param(f), v); e == nil && li.Quantity < 1 {
				e = invalid(param(f), "This value must be greater than or equal to 1.")
			}
		default:
			n, ok := strings.CutPrefix(f, "price_data/product_data/images/")
			if !ok || !isIndex(n) {
				return LineItem{}, unknownParam(param(f))
			}
			j, _ := strconv.Atoi(n)
			images[j] = v
		}
		if e != nil {
			return LineItem{}, e
		}
	}
	for _, j := range slices.Sorted(maps.Keys(images)) {
		li.Images = append(li.Images, images[j])
	}
	return li, nil
}

func (s *Server) retrieve(r *http.Request, form url.Values) (any, *apiError) {
	exp, e := onlyExpand(form)
	if e != nil {
		return nil, e
	}
	sess, e := s.lookup(r.PathValue("id"))
	if e != nil {
		return nil, e
	}
	return render(sess, exp), nil
}

func (s *Server) expire(r *http.Request, form url.Values) (any, *apiError) {
	exp, e := onlyExpand(form)
	if e != nil {
		return nil, e
	}
	sess, e := s.lookup(r.PathValue("id"))
	if e != nil {
		return nil, e
	}
	if sess.Status != StatusOpen {
		return nil, invalid("", `Only Checkout Sessions with a status in ["open"] can be expired.`)
	}
	sess.Status = StatusExpired
	return render(sess, exp), nil
}

func (s *Server) list(_ *http.Request, form url.Values) (any, *apiError) {
	limit := int64(10)
	var status, after string
	var expand []string
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64) // created, inclusive
	for _, key := range sortedKeys(form) {
		v, p := form.Get(key), splitKey(key)
		switch {
		case key == "limit":
			n, e := parseInt(key, v)
			switch {
			case e != nil:
				return nil, e
			case n < 1:
				return nil, invalid(key, "This value must be greater than or equal to 1.")
			case n > 100:
				return nil, invalid(key, "This value must be less than or equal to 100.")
			}
			limit = n
		case key == "status":
			if v != StatusOpen && v != StatusComplete && v != StatusExpired {
				return nil, invalid(key, "Invalid status: must be one of open, complete, or expired")
			}
			status = v
		case key == "starting_after":
			after = v
		case key == "created" || len(p) == 2 && p[0] == "created":
			n, e := parseInt(key, v)
			if e != nil {
				return nil, e
			}
			switch op := p[len(p)-1]; op {
			case "created":
				lo, hi = max(lo, n), min(hi, n)
			case "gte":
				lo = max(lo, n)
			case "gt":
				lo = max(lo, n+1)
			case "lte":
				hi = min(hi, n)
			case "lt":
				hi = min(hi, n-1)
			default:
				return nil, unknownParam(key)
			}
		case len(p) == 2 && p[0] == "expand":
			expand = append(expand, v)
		default:
			return nil, unknownParam(key)
		}
	}
	exp, e := expanded(expand, "data.")
	if e != nil {
		return nil, e
	}

	all := s.newestFirst()
	rest := all
	if after != "" {
		i := slices.IndexFunc(all, func(e *entry) bool { return e.ID == after })
		if i < 0 {
			return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "resource_missing", Param: "starting_after",
				Message: fmt.Sprintf("No such checkout.session: '%s'", after)}
		}
		rest = all[i+1:]
	}
	page := listJSON[sessionJSON]{Object: "list", URL: "/v1/checkout/sessions", Data: []sessionJSON{}}
	for _, e := range rest {
		if c := e.Created.Unix(); c < lo || c > hi || status != "" && e.Status != status {
			continue
		}
		if int64(len(page.Data)) == limit {
			page.HasMore = true
			break
		}
		page.Data = append(page.Data, render(&e.Session, exp))
	}
	return page, nil
}

// lookup finds a session for an endpoint with {id} in its path.
func (s *Server) lookup(id string) (*Session, *apiError) {
	e, ok := s.sessions[id]
	if !ok {
		return nil, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "resource_missing", Param: "session",
			Message: fmt.Sprintf("No such checkout.session: '%s'", id)}
	}
	return &e.Session, nil
}

func (s *Server) newestFirst() []*entry {
	all := slices.Collect(maps.Values(s.sessions))
	slices.SortFunc(all, func(a, b *entry) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return b.seq - a.seq
	})
	return all
}

func (s *Server) store(sess Session) *Session {
	s.seq++
	e := &entry{Session: sess, seq: s.seq}
	s.sessions[sess.ID] = e
	return &e.Session
}

func (s *Server) newID() string {
	for {
		s.ids++
		id := fmt.Sprintf("cs_test_fake%08d", s.ids)
		if _, taken := s.sessions[id]; !taken {
			return id
		}
	}
}

func (s *Server) expireDue() {
	now := s.now()
	for _, e := range s.sessions {
		if e.Status == StatusOpen && !e.ExpiresAt.After(now) {
			e.Status = StatusExpired
		}
	}
}

// expansion says which of a session's fields a request expanded.
type expansion struct{ lineItems, paymentIntent bool }

// onlyExpand checks that form holds nothing but expand[…] and reads them.
func onlyExpand(form url.Values) (expansion, *apiError) {
	var expand []string
	for _, key := range sortedKeys(form) {
		if p := splitKey(key); len(p) != 2 || p[0] != "expand" {
			return expansion{}, unknownParam(key)
		}
		expand = append(expand, form.Get(key))
	}
	return expanded(expand, "")
}

// expanded reads expand[] for a session (prefix "") or a list of them
// ("data."): line_items and payment_intent are the expansions the fake
// models; Stripe too refuses unknown ones.
func expanded(expand []string, prefix string) (expansion, *apiError) {
	var x expansion
	for i, field := range expand {
		switch field {
		case prefix + "line_items":
			x.lineItems = true
		case prefix + "payment_intent":
			x.paymentIntent = true
		default:
			return expansion{}, invalid(fmt.Sprintf("expand[%d]", i), "This property cannot be expanded (%s); stripetest expands only %sline_items and %spayment_intent.", field, prefix, prefix)
		}
	}
	return x, nil
}

// splitKey splits a bracketed form key such as line_items[0][quantity] into
// its parts; it returns nil for a malformed key. expand[] gives an empty
// last part.
func splitKey(key string) []string {
	root, rest, found := strings.Cut(key, "[")
	parts := []string{root}
	if !found {
		return parts
	}
	rest = "[" + rest
	for rest != "" {
		end := strings.IndexByte(rest, ']')
		if rest[0] != '[' || end < 0 {
			return nil
		}
		parts = append(parts, rest[1:end])
		rest = rest[end+1:]
	}
	return parts
}

func isIndex(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && strconv.Itoa(n) == s
}

func parseInt(param, v string) (int64, *apiError) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "parameter_invalid_integer", Param: param,
			Message: "Invalid integer: " + v}
	}
	return n, nil
}

// apiError is Stripe's error object, the value of "error" in the body.
type apiError struct {
	Status  int    `json:"-"`
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

func invalid(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, args...)}
}

func missing(param string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "parameter_missing", Param: param,
		Message: "Missing required param: " + param + "."}
}

func unknownParam(param string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "parameter_unknown", Param: param,
		Message: "Received unknown parameter: " + param}
}

func writeError(w http.ResponseWriter, e *apiError) {
	body, _ := json.Marshal(struct {
		Error *apiError `json:"error"`
	}{e})
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
