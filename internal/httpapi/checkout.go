package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"time"

	"soldout/internal/stock"
)

// Storefront configures the routes the shop's pages call for checkout with
// reservation: POST /api/checkout and GET /api/availability/{artworkId}.
type Storefront struct {
	Checkout *stock.Checkout
	// Holds, when set, caps the pieces one client holds at once.
	Holds *HoldLimiter
}

// storefrontRoute wraps a storefront handler: CORS outside (preflights cost
// the client nothing, and the page can read a 429), then the per-client
// limit, then the limit of all clients together (a client over its own
// limit spends none of theirs).
func storefrontRoute(cfg Config, h http.Handler) http.Handler {
	return allowOrigins(cfg, cfg.Limiter.Limit(cfg.Shared.Limit(h)))
}

// maxCheckoutBody: the request names one artwork.
const maxCheckoutBody = 4 << 10

type checkoutAnswer struct {
	URL       string    `json:"url"`
	SessionID string    `json:"sessionId"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// The storefront branches on these bodies, so they are exactly this.
type (
	soldBody struct {
		Error string `json:"error"`
	}
	reservedBody struct {
		Error string `json:"error"`
		Until string `json:"until"`
	}
)

// handleCheckout reserves the artwork and opens its Checkout Session: 200
// with the session's URL for a JSON request, 303 to it for a form post.
func handleCheckout(log *slog.Logger, refused *refusals, store *Storefront, budget time.Duration) http.Handler {
	checkout := store.Checkout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		client := clientKey(r)
		id, form, err := readField(w, r, "artworkId", maxCheckoutBody)
		// A buyer who leaves mid-way must not leave a claim behind without
		// its session, nor a session without its claim.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), budget)
		defer cancel()
		endHold := func(sessionID string, until time.Time) {}
		if err == nil && store.Holds != nil {
			done, ok, until := store.Holds.Take(ctx, client, id, budget)
			if ok {
				endHold = done
			} else {
				w.Header().Set("Retry-After", itoa(int(math.Ceil(until.Sub(store.Holds.now()).Seconds()))))
				err = stock.Errorf(stock.RateLimited, "this client already holds %d pieces in checkout: pay for one, or wait until %s", store.Holds.max, until.UTC().Format(time.RFC3339))
			}
		}
		if err == nil {
			var s stock.CheckoutSession
			if s, err = checkout.Start(ctx, id); err == nil {
				endHold(s.ID, s.ExpiresAt.Add(stock.ReservationGrace))
				log.Info("checkout opened", "artwork_id", id, "session_id", s.ID, "expires_at", s.ExpiresAt,
					"duration_ms", sinceMS(start))
				if form {
					http.Redirect(w, r, s.URL, http.StatusSeeOther)
					return
				}
				writeJSON(w, http.StatusOK, checkoutAnswer{URL: s.URL, SessionID: s.ID, ExpiresAt: s.ExpiresAt.UTC()})
				return
			}
		}
		endHold("", time.Time{})
		status := writeStorefrontError(w, err)
		code := stock.ErrorCode(err)
		refused.Log(r.Context(), refusalLevel(err), refusalKind("checkout", err, id), "checkout refused", "artwork_id", truncated(id), "status", status,
			"code", code, "err", err, "duration_ms", sinceMS(start))
	})
}

// writeStorefrontError answers a browser: sold and reserved get the short
// bodies the Buy button branches on, and an error not about the request
// only says what the buyer can do (see toldToBrowsers; the caller logs the
// details).
func writeStorefrontError(w http.ResponseWriter, err error) int {
	code := stock.ErrorCode(err)
	status := statusFor(code)
	var re *stock.ReservedError
	switch {
	case errors.As(err, &re):
		writeJSON(w, status, reservedBody{Error: "reserved", Until: re.Until.UTC().Format(time.RFC3339)})
	case errors.Is(err, stock.ErrSold):
		writeJSON(w, status, soldBody{Error: "sold"})
	case code == stock.NotFound:
		// The details (the dataset, another document's type) are the log's:
		// a browser must not learn which documents exist.
		writeJSON(w, status, errorBody{Error: "no such artwork", Code: string(code)})
	case code == stock.Upstream:
		writeJSON(w, status, errorBody{Error: "Stripe could not open the checkout; the artwork is not held, try again in a moment", Code: string(code)})
	case toldToBrowsers(code):
		writeError(w, err)
	default:
		writeJSON(w, status, errorBody{Error: "checkout is not available right now; try again in a minute", Code: string(code)})
	}
	return status
}

type availabilityAnswer struct {
	Available     bool       `json:"available"`
	ReservedUntil *time.Time `json:"reservedUntil"` // null unless reserved
}

// handleAvailability tells the storefront whether to offer its Buy button:
// available (a Buy would open a checkout), reserved until a time, or
// neither (sold).
func handleAvailability(refused *refusals, checkout *stock.Checkout, budget time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), budget)
		defer cancel()
		id := r.PathValue("artworkId")
		a, err := checkout.Availability(ctx, id)
		if err != nil {
			status, code := writeStorefrontError(w, err), stock.ErrorCode(err)
			refused.Log(ctx, refusalLevel(err), refusalKind("availability", err, id), "availability not answered", "artwork_id", truncated(id), "status", status, "code", code, "err", err)
			return
		}
		ans := availabilityAnswer{Available: a.Available}
		if !a.ReservedUntil.IsZero() {
			until := a.ReservedUntil.UTC()
			ans.ReservedUntil = &until
		}
		// Live state: a cached "available" would offer a piece just sold.
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, ans)
	})
}

// refusalKind is the throttle's kind of a storefront line: by route and
// code, and by artwork too when a person must fix that artwork (a price its
// currency cannot take), so that one piece's lines do not hide another's.
// An outage's lines are one kind whatever the artwork.
func refusalKind(route string, err error, artworkID string) string {
	kind := route + ":" + string(stock.ErrorCode(err))
	if refusalLevel(err) == slog.LevelError {
		kind += ":" + truncated(artworkID)
	}
	return kind
}

// truncated keeps log lines short whatever a client sent (an id, an origin).
func truncated(s string) string {
	if len(s) > stock.MaxArtworkIDLength {
		return s[:stock.MaxArtworkIDLength] + "…"
	}
	return s
}
