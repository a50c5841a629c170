package httpapi

import (
	"log/slog"
	"net/http"

	"soldout/internal/stock"
)

// addRoutes is soldout's whole HTTP API on one screen.
func addRoutes(mux *http.ServeMux, cfg Config) {
	mux.Handle("POST /api/webhook", handleWebhook(cfg))
	mux.Handle("/api/webhook", methodNotAllowed(cfg.Logger, "POST"))
	if cfg.Sessions != nil {
		// The success page calls it with fetch: CORS as for the storefront
		// routes (in handleFulfil, which counts what it refuses).
		mux.Handle("POST /api/fulfil", handleFulfil(cfg))
		mux.Handle("/api/fulfil", allowOrigins(cfg, methodNotAllowed(cfg.Logger, "POST")))
	} else {
		mux.Handle("/api/fulfil", routeOff("POST /api/fulfil is off on this server: STRIPE_SECRET_KEY is not set"))
	}
	if cfg.Storefront != nil {
		// Checkout with reservation (checkout.go); preflights go to the
		// catch-all patterns, where storefrontRoute answers them.
		checkout := cfg.Storefront.Checkout
		mux.Handle("POST /api/checkout", storefrontRoute(cfg, handleCheckout(cfg.Logger, cfg.refusals, cfg.Storefront, cfg.Budget)))
		mux.Handle("/api/checkout", storefrontRoute(cfg, methodNotAllowed(cfg.Logger, "POST")))
		mux.Handle("GET /api/availability/{artworkId}", storefrontRoute(cfg, handleAvailability(cfg.refusals, checkout, cfg.Budget)))
		mux.Handle("/api/availability/{artworkId}", storefrontRoute(cfg, methodNotAllowed(cfg.Logger, "GET")))
	} else {
		off := routeOff("checkout with reservation is off on this server: STRIPE_SECRET_KEY is not set")
		mux.Handle("/api/checkout", off)
		mux.Handle("/api/availability/{artworkId}", off)
	}
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(cfg.Logger, cfg.Journal, cfg.Sanity))
}

// methodNotAllowed logs what it refuses: Stripe only POSTs, so a GET on the
// webhook is someone checking the URL by hand or a misrouted probe, and the
// operator looking for why nothing was sold should see it. A wrong method is
// HTTP's own matter, not one of soldout's error codes: it is answered here,
// outside statusFor.
func methodNotAllowed(log *slog.Logger, allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Info(r.Method+" "+r.URL.Path+" refused with 405: this route only takes "+allow, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "use " + allow, Code: "method_not_allowed"})
	})
}

// routeOff answers for a route whose feature is not configured, so that a
// storefront developer reads why instead of a bare 404.
func routeOff(why string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, stock.Errorf(stock.NotFound, "%s", why))
	})
}
