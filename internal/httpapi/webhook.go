package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

type webhookAnswer struct {
	Received bool                  `json:"received"`
	Outcome  stock.Outcome         `json:"outcome"`
	Artworks []stock.ArtworkResult `json:"artworks,omitempty"`
}

func handleWebhook(cfg Config) http.Handler {
	log := cfg.Logger
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		outcome, status := OutcomeRejected, http.StatusBadRequest
		defer func() { cfg.Observer.ObserveWebhook(outcome, status) }()
		body, err := readBody(w, r)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				cfg.refusals.Log(r.Context(), slog.LevelWarn, "webhook:too_large", "webhook body over the limit refused: not a Stripe event", "limit_bytes", MaxBodyBytes, "remote", r.RemoteAddr)
				status = writeError(w, stock.Errorf(stock.TooLarge, "body larger than %d bytes", MaxBodyBytes))
				return
			}
			cfg.refusals.Log(r.Context(), slog.LevelWarn, "webhook:unreadable", "webhook body could not be read (the sender hung up or sent less than it announced): refused", "remote", r.RemoteAddr, "err", err)
			status = writeError(w, stock.Wrap(stock.Invalid, err, "reading body"))
			return
		}
		if err := cfg.Verifier.Verify(body, r.Header.Get("Stripe-Signature")); err != nil {
			var se *stripehook.SignatureError
			reason := "unknown"
			if errors.As(err, &se) {
				reason = se.Reason
			}
			cfg.refusals.Log(r.Context(), slog.LevelWarn, "webhook:"+reason, "webhook signature refused: "+err.Error(), "reason", reason, "remote", r.RemoteAddr)
			cfg.Observer.SignatureFailure(reason)
			// Invalid, with the reason as the code: the sender reads why.
			writeJSON(w, statusFor(stock.Invalid), errorBody{Error: err.Error(), Code: reason})
			return
		}
		ev, decodeErr := stripehook.Decode(body)

		// Work in flight finishes even if Stripe hangs up or the server is
		// stopping; the budget alone bounds it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), processingBudget(cfg.Budget))
		defer cancel()
		handled := time.Now()
		var res stock.Result
		if decodeErr == nil {
			res, err = cfg.Fulfiller.Handle(ctx, ev)
		} else {
			// Signed, so Stripe sent it: not bad input but an event this
			// soldout cannot read, which a person must look at while Stripe
			// keeps it.
			res, err = cfg.Fulfiller.Refuse(ctx, ev, stock.Wrap(stock.Misconfigured, decodeErr,
				"a correctly signed event that this soldout cannot read (does the endpoint's Stripe API version or an event type need a newer soldout?)"))
		}
		cfg.Observer.ObserveEvent(SourceWebhook, time.Since(handled))
		outcome, status = string(res.Outcome), http.StatusOK
		if err != nil {
			outcome, status = string(stock.OutcomeFailed), writeError(w, err)
		} else {
			writeJSON(w, status, webhookAnswer{Received: true, Outcome: res.Outcome, Artworks: res.Artworks})
		}
		attrs := []any{"event_id", ev.ID, "type", ev.Type, "session_id", ev.Session.ID}
		if err != nil {
			level, msg := notApplied(err)
			attrs = append(attrs, "artwork_ids", ev.Session.ArtworkIDs, "outcome", outcome, "status", status,
				"duration_ms", sinceMS(start), "code", stock.ErrorCode(err), "err", err)
			log.Log(ctx, level, msg, attrs...)
			return
		}
		log.Info("event processed", append(attrs, "artworks", res.Artworks, "outcome", outcome, "status", status,
			"duration_ms", sinceMS(start))...)
	})
}

// announcedBodyMax bounds the buffer allocated from a request's
// Content-Length before its bytes arrive: a client announcing more than it
// sends must not make soldout hold memory for it.
const announcedBodyMax = 64 << 10

// readBody reads a webhook's body, at most MaxBodyBytes. Stripe announces
// the length, so a Checkout event (a few KB) is read into one buffer of
// that size rather than io.ReadAll's growing ones (2.6 KB and 6
// allocations fewer per event in BenchmarkWebhook).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if n := r.ContentLength; n > 0 && n <= announcedBodyMax {
		body := make([]byte, n)
		if _, err := io.ReadFull(rd, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(rd)
}

// processingBudget keeps a margin out of the budget for recording the
// outcome and writing the answer.
func processingBudget(budget time.Duration) time.Duration {
	return max(budget-time.Second, budget/2)
}

// notApplied is the level and the message of the line saying an event was
// not applied: what it means for the operator, by the error's code. ERROR,
// unless nothing is wrong and a later delivery settles it by itself.
func notApplied(err error) (slog.Level, string) {
	// Another process is on it (or a claim a restart left expires), a burst
	// of sales is spread out by the retries, or other writers won a race.
	for _, settles := range []error{stock.ErrBusy, stock.ErrPaced, stock.ErrStale, stock.ErrContended} {
		if errors.Is(err, settles) {
			return slog.LevelWarn, "event not applied yet; nothing is wrong and Stripe's next delivery settles it: nothing to do"
		}
	}
	switch stock.ErrorCode(err) {
	case stock.Misconfigured:
		return slog.LevelError, "event not applied until a person fixes what err says; Stripe redelivers it for up to 3 days, or run `soldout replay EVENT_ID` once fixed"
	case stock.Unavailable:
		return slog.LevelError, "event not applied: Sanity or the journal did not answer in time (err says which); Stripe redelivers it. If these lines go on, check status.sanity.io and SANITY_API_HOST, or the journal's disk and DATABASE_URL"
	default:
		return slog.LevelError, "event not applied: an unexpected failure, probably a bug; Stripe redelivers it. Report this line and `soldout events show EVENT_ID`"
	}
}
