// Package stripeapi is soldout's thin wrapper over the official stripe-go
// client for the Checkout Session calls it makes: retrieve one session (for
// fulfilment from the success page), list completed sessions of a time
// window (for reconciliation) and create or expire a session (for the
// storefront). It returns soldout's own Session type and classifies every
// failure into the stock error vocabulary, so no caller imports stripe-go.
package stripeapi

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85"

	"soldout/internal/stock"
)

// Config configures a Client.
type Config struct {
	// SecretKey is STRIPE_SECRET_KEY: sk_live_…, sk_test_… or a restricted
	// rk_live_… / rk_test_… key with read and write access to Checkout
	// Sessions.
	SecretKey string
	// APIBase is STRIPE_API_BASE, an optional base URL such as
	// http://127.0.0.1:12111 for stripe-mock or a test fake; empty means
	// https://api.stripe.com.
	APIBase string
	// HTTPClient is optional; nil means stripe-go's default (80 s timeout).
	HTTPClient *http.Client
	// MaxNetworkRetries bounds stripe-go's own retries; 0 means its default
	// (2), a negative value disables them. stripe-go v85 retries network
	// errors, answers that are not Stripe's JSON (a proxy's 502 page) and
	// 429 lock timeouts, but not a 5xx or 409 that carries Stripe's error
	// body: that comes back at once as stock.Unavailable, for the caller to
	// retry later. Between attempts it sleeps 0.5 s, then 1 s, 2 s…, without
	// watching the context.
	MaxNetworkRetries int64
}

// Client calls Stripe for one account. It is safe for concurrent use.
type Client struct {
	sc   *stripe.Client
	key  string // kept only to scrub it from Stripe's messages
	base string // for messages about unreachable hosts
}

var (
	keyPattern = regexp.MustCompile(`^(sk|rk)_(test|live)_[A-Za-z0-9]+$`)
	// Checkout Session ids are cs_test_… or cs_live_…; anything else is
	// refused before it reaches Stripe, as ids may come from a browser.
	sessionIDPattern = regexp.MustCompile(`^cs_[A-Za-z0-9_]{1,250}$`)
)

// APIVersion is the Stripe API version stripe-go pins, and so the shape of
// every object soldout reads from Stripe.
const APIVersion = stripe.APIVersion

const keyHelp = "copy the secret key (sk_live_… or sk_test_…) or a restricted key (rk_…) from Stripe Dashboard → Developers → API keys"

// New validates cfg and returns a Client. Error messages never contain the
// key.
func New(cfg Config) (*Client, error) {
	if err := checkKey(cfg.SecretKey); err != nil {
		return nil, err
	}
	backend := &stripe.BackendConfig{
		HTTPClient: cfg.HTTPClient,
		// stripe-go logs every failed request to stderr by default; the
		// caller logs the classified error once instead.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	base := stripe.APIURL
	if cfg.APIBase != "" {
		var err error
		if base, err = apiBase(cfg.APIBase, cfg.SecretKey); err != nil {
			return nil, err
		}
		backend.URL = stripe.String(base)
	}
	switch {
	case cfg.MaxNetworkRetries < 0:
		backend.MaxNetworkRetries = stripe.Int64(0)
	case cfg.MaxNetworkRetries > 0:
		backend.MaxNetworkRetries = stripe.Int64(cfg.MaxNetworkRetries)
	}
	return &Client{
		sc:   stripe.NewClient(cfg.SecretKey, stripe.WithBackends(stripe.NewBackendsWithConfig(backend))),
		key:  cfg.SecretKey,
		base: base,
	}, nil
}

func checkKey(key string) error {
	switch {
	case key == "":
		return stock.Errorf(stock.Misconfigured, "STRIPE_SECRET_KEY is not set: %s", keyHelp)
	case strings.HasPrefix(key, "pk_"):
		return stock.Errorf(stock.Misconfigured, "STRIPE_SECRET_KEY holds a publishable key (pk_…), which cannot read Checkout Sessions: %s", keyHelp)
	case strings.HasPrefix(key, "whsec_"):
		return stock.Errorf(stock.Misconfigured, "STRIPE_SECRET_KEY holds a webhook signing secret (whsec_…), which belongs in STRIPE_WEBHOOK_SECRET: %s", keyHelp)
	case !keyPattern.MatchString(key):
		return stock.Errorf(stock.Misconfigured, "STRIPE_SECRET_KEY is not a Stripe secret key (check for quotes, spaces or a truncated paste): %s", keyHelp)
	}
	return nil
}

func apiBase(base, key string) (string, error) {
	u, err := url.Parse(base)
	if err == nil && u.User != nil {
		// Not echoed: it holds a password.
		return "", stock.Errorf(stock.Misconfigured, "STRIPE_API_BASE must not contain credentials; the key goes in STRIPE_SECRET_KEY")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", stock.Errorf(stock.Misconfigured, "STRIPE_API_BASE %q is not a base URL like http://127.0.0.1:12111; leave it empty for Stripe itself", base)
	}
	if u.Scheme == "http" && strings.Contains(key, "_live_") {
		return "", stock.Errorf(stock.Misconfigured, "STRIPE_API_BASE %q is plain http, which would send the live key unencrypted; use https or a test key", base)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// Session retrieves one Checkout Session.
func (c *Client) Session(ctx context.Context, id string) (Session, error) {
	if !sessionIDPattern.MatchString(id) {
		return Session{}, stock.Errorf(stock.Invalid, "stripe: %q is not a Checkout Session id (cs_…)", id)
	}
	cs, err := c.sc.V1CheckoutSessions.Retrieve(ctx, id, nil)
	if err != nil {
		return Session{}, c.classify("retrieving checkout session "+id, err)
	}
	return sessionAnswer(cs, "retrieving checkout session "+id)
}

// CompletedSessions calls fn, newest first, for every complete Checkout
// Session created in [since, until], fetching pages of 100 as it goes. Stripe
// compares whole seconds; a zero since or until leaves that end open. An
// error from fn stops the listing and is returned as is.
func (c *Client) CompletedSessions(ctx context.Context, since, until time.Time, fn func(Session) error) error {
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return stock.Errorf(stock.Invalid, "stripe: listing sessions: until %s is before since %s", until.Format(time.RFC3339), since.Format(time.RFC3339))
	}
	params := &stripe.CheckoutSessionListParams{Status: stripe.String(string(stripe.CheckoutSessionStatusComplete))}
	params.Limit = stripe.Int64(100)
	// A delayed payment's failure is visible only on its PaymentIntent.
	params.AddExpand("data.payment_intent")
	if !since.IsZero() || !until.IsZero() {
		// Zero fields are left out of the request.
		params.CreatedRange = &stripe.RangeQueryParams{}
		if !since.IsZero() {
			params.CreatedRange.GreaterThanOrEqual = since.Unix()
		}
		if !until.IsZero() {
			params.CreatedRange.LesserThanOrEqual = until.Unix()
		}
	}
	for cs, err := range c.sc.V1CheckoutSessions.List(ctx, params).All(ctx) {
		if err != nil {
			return c.classify("listing complete checkout sessions", err)
		}
		s, err := sessionAnswer(cs, "listing complete checkout sessions")
		if err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// CreateParams describes a Checkout Session for one artwork.
type CreateParams struct {
	// ArtworkID is stored as metadata.artworkId, which fulfilment reads; it
	// must pass stock.ValidArtworkID, or the sale could never be fulfilled.
	ArtworkID   string
	ProductName string
	ImageURL    string // optional
	UnitAmount  int64  // minor units (cents)
	Currency    string // ISO 4217, any case
	// SuccessURL may contain {CHECKOUT_SESSION_ID}, which Stripe fills in.
	SuccessURL, CancelURL string
	// ExpiresAt must be 30 minutes to 24 hours away; zero means Stripe's
	// default of 24 hours.
	ExpiresAt time.Time
	// IdempotencyKey makes a repeated create return the first session
	// instead of opening a second checkout for the same artwork; empty
	// means one random key per call (kept across stripe-go's retries).
	IdempotencyKey string
	CustomerEmail  string // optional: prefills the checkout form
}

// maxIdempotencyKey is Stripe's limit; stripe-go refuses longer keys with an
// error that would otherwise read as a network failure.
const maxIdempotencyKey = 255

// CreateSession creates a Checkout Session in payment mode with one line
// item priced inline.
func (c *Client) CreateSession(ctx context.Context, p CreateParams) (Session, error) {
	if !stock.ValidArtworkID(p.ArtworkID) {
		return Session{}, stock.Errorf(stock.Invalid, "stripe: artwork id %q is not a plain Sanity document id", p.ArtworkID)
	}
	if len(strings.TrimSpace(p.IdempotencyKey)) > maxIdempotencyKey {
		return Session{}, stock.Errorf(stock.Invalid, "stripe: idempotency key longer than %d characters", maxIdempotencyKey)
	}
	product := &stripe.CheckoutSessionCreateLineItemPriceDataProductDataParams{Name: stripe.String(p.ProductName)}
	if p.ImageURL != "" {
		product.Images = []*string{stripe.String(p.ImageURL)}
	}
	params := &stripe.CheckoutSessionCreateParams{
		Mode: stripe.String(string(stripe.CheckoutSessionModePayment)),
		LineItems: []*stripe.CheckoutSessionCreateLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionCreateLineItemPriceDataParams{
				Currency:    stripe.String(strings.ToLower(p.Currency)),
				UnitAmount:  stripe.Int64(p.UnitAmount),
				ProductData: product,
			},
		}},
		Metadata: map[string]string{"artworkId": p.ArtworkID},
	}
	if p.SuccessURL != "" {
		params.SuccessURL = stripe.String(p.SuccessURL)
	}
	if p.CancelURL != "" {
		params.CancelURL = stripe.String(p.CancelURL)
	}
	if p.CustomerEmail != "" {
		params.CustomerEmail = stripe.String(p.CustomerEmail)
	}
	if !p.ExpiresAt.IsZero() {
		params.ExpiresAt = stripe.Int64(p.ExpiresAt.Unix())
	}
	if p.IdempotencyKey != "" {
		params.IdempotencyKey = stripe.String(p.IdempotencyKey)
	}
	cs, err := c.sc.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return Session{}, c.classify("creating a checkout session for artwork "+p.ArtworkID, err)
	}
	s, err := sessionAnswer(cs, "creating a checkout session for artwork "+p.ArtworkID)
	if err == nil && s.URL == "" {
		err = stock.Errorf(stock.Unavailable, "stripe: creating a checkout session for artwork %s: the answer has no url to send the buyer to (a proxy in between? STRIPE_API_BASE?)", p.ArtworkID)
	}
	return s, err
}

// ExpireSession expires an open Checkout Session, so that its buyer can no
// longer pay. Stripe refuses (stock.Upstream) a session that is not open.
func (c *Client) ExpireSession(ctx context.Context, id string) (Session, error) {
	if !sessionIDPattern.MatchString(id) {
		return Session{}, stock.Errorf(stock.Invalid, "stripe: %q is not a Checkout Session id (cs_…)", id)
	}
	cs, err := c.sc.V1CheckoutSessions.Expire(ctx, id, nil)
	if err != nil {
		return Session{}, c.classify("expiring checkout session "+id, err)
	}
	return sessionAnswer(cs, "expiring checkout session "+id)
}
