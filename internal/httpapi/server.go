// Package httpapi is soldout's HTTP surface: the Stripe webhook, the
// success page's fulfilment route, the storefront's checkout and
// availability routes, and the health probes. A webhook reads top to
// bottom: read → verify → decode → fulfil (stock) → answer.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// MaxBodyBytes is the largest webhook body soldout reads. Checkout events are
// a few kilobytes; anything near this is not from Stripe.
const MaxBodyBytes = 1 << 20

// DefaultBudget is how long a webhook may take before soldout answers 503.
// Stripe waits longer, but Checkout waits up to 10 s for the answer before
// redirecting the buyer, and a bounded answer keeps retries predictable.
const DefaultBudget = 8 * time.Second

// Pinger reports whether the journal is usable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config is what the server needs.
type Config struct {
	Logger    *slog.Logger // nil: discarded
	Verifier  *stripehook.Verifier
	Fulfiller *stock.Fulfiller
	Journal   Pinger
	Budget    time.Duration // per webhook; DefaultBudget when zero

	// Optional parts.
	Observer Observer       // metrics; nil: not observed
	Sanity   *SanityContact // /readyz reports its Last as last_sanity_ok; nil: null
	// Sessions enables POST /api/fulfil (it needs STRIPE_SECRET_KEY); nil:
	// the route answers 404, saying why.
	Sessions SessionRetriever
	// Limiter limits each client on the storefront routes; nil: a limiter
	// of DefaultClientRate and DefaultClientBurst.
	Limiter *ClientLimiter
	// Shared caps the storefront routes' requests of all clients together;
	// nil: a limiter of DefaultStorefrontRate.
	Shared *SharedLimiter
	// Storefront enables POST /api/checkout and GET /api/availability/{id}
	// (checkout with reservation); nil: they answer 404, saying why.
	Storefront *Storefront
	// AllowedOrigins are the storefront's origins (SOLDOUT_ALLOWED_ORIGINS),
	// such as https://shop.example.com: their pages may call /api/fulfil,
	// /api/checkout and /api/availability from a browser.
	AllowedOrigins []string

	refusals *refusals // the throttled lines of refused requests; NewServer sets it
}

// The storefront routes' limit per client when Config.Limiter is nil:
// requests a minute, and how many may come at once (a success page that
// retries a few times).
const (
	DefaultClientRate  = 30
	DefaultClientBurst = 10
	// DefaultStorefrontRate is the storefront requests a second of all
	// clients together when Config.Shared is nil: at a read each (two for a
	// checkout), under half of Sanity's 500 API calls a second per client
	// IP, leaving the rest to the webhook.
	DefaultStorefrontRate = 100
)

// NewServer returns soldout's HTTP handler.
func NewServer(cfg Config) http.Handler {
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Limiter == nil {
		cfg.Limiter = NewClientLimiter(DefaultClientRate, DefaultClientBurst)
	}
	if cfg.Shared == nil {
		cfg.Shared = NewSharedLimiter(DefaultStorefrontRate, cfg.Logger)
	}
	cfg.refusals = newRefusals(cfg.Logger)
	mux := http.NewServeMux()
	addRoutes(mux, cfg)
	return mux
}
