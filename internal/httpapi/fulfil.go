package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripeapi"
)

// FulfilEventPrefix starts the journal id of a POST /api/fulfil request's
// event. Its payload is soldout's record of the session Stripe returned, not
// a Stripe event, so it cannot be replayed; reconcile applies its session.
const FulfilEventPrefix = "fulfil:"

// SessionRetriever fetches one Checkout Session from Stripe;
// *stripeapi.Client implements it.
type SessionRetriever interface {
	Session(ctx context.Context, id string) (stripeapi.Session, error)
}

// maxFulfilBody is far above {"session_id":"cs_live_…"}.
const maxFulfilBody = 4 << 10

// sessionComplete is the Checkout Session status once the buyer finished.
const sessionComplete = "complete"

// fulfilSessionID is the shape of a Checkout Session id. It comes from a
// browser and ends up in the journal and the logs: anything else is refused
// before Stripe is asked.
var fulfilSessionID = regexp.MustCompile(`^cs_(test|live)_[A-Za-z0-9]{1,240}$`)

type fulfilAnswer struct {
	SessionID string                `json:"session_id"`
	Outcome   string                `json:"outcome"`
	Artworks  []stock.ArtworkResult `json:"artworks"`
}

// fulfilPayload is what the journal keeps as the payload of a success-page
// event: the session fields the decision was made from.
type fulfilPayload struct {
	Object  string        `json:"object"`
	Source  string        `json:"source"`
	Session fulfilSession `json:"session"`
}

type fulfilSession struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	PaymentStatus string            `json:"payment_status"`
	AmountTotal   int64             `json:"amount_total"`
	Currency      string            `json:"currency"`
	Livemode      bool              `json:"livemode"`
	Metadata      map[string]string `json:"metadata"`
}

// handleFulfil is POST /api/fulfil, called by the shop's success page: it
// retrieves the session from Stripe and runs it through the same idempotent
// pipeline as the webhook, so that a buyer who is back before the webhook
// (or while it fails) still finds the piece sold. Every client is limited,
// so that the route cannot be used to hammer Stripe.
func handleFulfil(cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Each stage that answers without calling the next leaves its own
		// outcome: the origin check (CORS, as for the storefront routes),
		// the per-client limit, then the limit of all clients together.
		outcome, status := string(stock.Invalid), statusFor(stock.Invalid)
		allowOrigins(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			outcome, status = OutcomeRateLimited, statusFor(stock.RateLimited)
			cfg.Limiter.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				outcome, status = string(stock.Unavailable), statusFor(stock.Unavailable)
				cfg.Shared.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					outcome, status = fulfil(cfg, w, r)
				})).ServeHTTP(w, r)
			})).ServeHTTP(w, r)
		})).ServeHTTP(w, r)
		cfg.Observer.ObserveFulfil(outcome, status)
	})
}

// fulfil answers one request and returns the outcome and status it
// answered: the pipeline's outcome, not_paid, failed (the pipeline ran but
// did not apply the session), or the error code of a request refused
// before the pipeline.
func fulfil(cfg Config, w http.ResponseWriter, r *http.Request) (string, int) {
	start := time.Now()
	log := cfg.Logger.With("remote", r.RemoteAddr)
	id, err := readSessionID(w, r)
	if err != nil {
		log.Info("fulfil request refused", "err", err)
		return string(stock.ErrorCode(err)), writePublicError(w, err)
	}
	log = log.With("session_id", id)

	// As for the webhook: once started, the work finishes even if the
	// buyer leaves; the budget alone bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), processingBudget(cfg.Budget))
	defer cancel()
	sess, err := cfg.Sessions.Session(ctx, id)
	if err != nil {
		code := stock.ErrorCode(err)
		if code == stock.NotFound {
			log.Warn("fulfil: Stripe has no such Checkout Session; nothing changed (a mistyped or made-up id, or STRIPE_SECRET_KEY is of another account or mode)")
			return string(code), writePublicError(w, stock.Errorf(stock.NotFound, "no Checkout Session %s", id))
		}
		status := writePublicError(w, err)
		cfg.refusals.Log(ctx, refusalLevel(err), "fulfil:"+string(code), "fulfil: could not retrieve the Checkout Session from Stripe; nothing changed, the webhook still applies the sale",
			"remote", r.RemoteAddr, "session_id", id, "code", code, "status", status, "err", err)
		return string(code), status
	}
	if sess.Status != sessionComplete {
		// Open: not paid (yet); expired: never paid. Nothing to record.
		log.Info("fulfil: Checkout Session not completed; nothing changed", "status", sess.Status, "payment_status", sess.PaymentStatus)
		writeJSON(w, http.StatusOK, fulfilAnswer{SessionID: id, Outcome: OutcomeNotPaid, Artworks: []stock.ArtworkResult{}})
		return OutcomeNotPaid, http.StatusOK
	}

	ev := fulfilEvent(sess, time.Now())
	t := time.Now()
	res, err := cfg.Fulfiller.Handle(ctx, ev)
	cfg.Observer.ObserveEvent(SourceFulfil, time.Since(t))
	attrs := []any{"event_id", ev.ID, "payment_status", sess.PaymentStatus}
	if err != nil {
		status := writePublicError(w, err)
		level, _ := notApplied(err)
		log.Log(ctx, level, "fulfil: session not applied; the webhook or the next request will", append(attrs,
			"artwork_ids", ev.Session.ArtworkIDs, "outcome", stock.OutcomeFailed, "status", status,
			"duration_ms", sinceMS(start), "code", stock.ErrorCode(err), "err", err)...)
		return string(stock.OutcomeFailed), status
	}
	attrs = append(attrs, "artworks", res.Artworks, "outcome", res.Outcome, "duration_ms", sinceMS(start))
	artworks := res.Artworks
	if artworks == nil {
		artworks = []stock.ArtworkResult{}
	}
	writeJSON(w, http.StatusOK, fulfilAnswer{SessionID: id, Outcome: string(res.Outcome), Artworks: artworks})
	log.Info("fulfil: session processed", append(attrs, "status", http.StatusOK)...)
	return string(res.Outcome), http.StatusOK
}

// fulfilEvent turns a completed session into the event the pipeline takes.
// Its id includes the payment status, so that a session first seen unpaid
// (held) is sold by a later request once its money arrived, while repeats
// with the same status are duplicates.
func fulfilEvent(sess stripeapi.Session, now time.Time) stock.Event {
	payload, _ := json.Marshal(fulfilPayload{ // plain strings and numbers always marshal
		Object: "soldout.fulfil",
		Source: "POST /api/fulfil",
		Session: fulfilSession{
			ID: sess.ID, Status: sess.Status, PaymentStatus: sess.PaymentStatus,
			AmountTotal: sess.AmountTotal, Currency: sess.Currency, Livemode: sess.Livemode, Metadata: sess.Metadata,
		},
	})
	return stock.Event{
		ID:       FulfilEventPrefix + sess.ID + ":" + sess.PaymentStatus,
		Type:     stock.CheckoutCompleted,
		Created:  now,
		Livemode: sess.Livemode,
		Session:  sess.Stock(),
		Payload:  payload,
	}
}

// readSessionID reads session_id from a JSON or form body.
func readSessionID(w http.ResponseWriter, r *http.Request) (string, error) {
	id, _, err := readField(w, r, "session_id", maxFulfilBody)
	if err == nil && !fulfilSessionID.MatchString(id) {
		err = stock.Errorf(stock.Invalid, "session_id is not a Checkout Session id (cs_test_… or cs_live_…)")
	}
	return id, err
}

// writePublicError is writeError for the success page: an error that is
// not about its request says only that the payment is safe and to retry
// (see toldToBrowsers); the caller logs the details.
func writePublicError(w http.ResponseWriter, err error) int {
	code := stock.ErrorCode(err)
	status := statusFor(code)
	msg := err.Error()
	if !toldToBrowsers(code) {
		msg = "the purchase cannot be confirmed right now; the payment is safe, try again in a minute"
	}
	writeJSON(w, status, errorBody{Error: msg, Code: string(code)})
	return status
}
