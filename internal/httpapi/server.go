// Package httpapi is soldout's HTTP surface: the Stripe webhook and the
// health probes. A webhook reads top to bottom: read → verify → decode →
// fulfil (stock) → answer.
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
	Logger    *slog.Logger
	Verifier  *stripehook.Verifier
	Fulfiller *stock.Fulfiller
	Journal   Pinger
	Budget    time.Duration // per webhook; DefaultBudget when zero
}

// NewServer returns soldout's HTTP handler.
func NewServer(cfg Config) http.Handler {
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget
	}
	mux := http.NewServeMux()
	addRoutes(mux, cfg)
	return mux
}
