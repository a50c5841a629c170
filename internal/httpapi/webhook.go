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
				log.Warn("webhook body over the limit refused: not a Stripe event", "limit_bytes", MaxBodyBytes, "remote", r.RemoteAddr)
				status = writeError(w, stock.Errorf(stock.TooLarge, "body larger than %d bytes", MaxBodyBytes))
				return
			}
			log.Warn("webhook body could not be read", "remote", r.RemoteAddr, "err", err)
			status = writeError(w, stock.Wrap(stock.Invalid, err, "reading body"))
			return
		}
		if err := cfg.Verifier.Verify(body, r.Header.Get("Stripe-Signature")); err != nil {
			var se *stripehook.SignatureError
			reason := "unknown"
			if errors.As(err, &se) {
				reason = se.Reason
			}
			log.Warn("webhook signature refused: "+err.Error(), "reason", reason, "remote", r.RemoteAddr)
			cfg.Observer.SignatureFailure(reason)
			// Invalid, with the reason as the code: the sender reads why.
			writeJSON(w, statusFor(stock.Invalid), errorBody{Error: err.Error(), Code: reason})
			return
		}
		ev, err := stripehook.Decode(body)
		if err != nil {
			log.Warn("signed webhook body is not a usable Stripe event: refused", "err", err)
			status = writeError(w, err)
			return
		}

		// Work in flight finishes even if Stripe hangs up or the server is
		// stopping; the budget alone bounds it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), processingBudget(cfg.Budget))
		defer cancel()
		handled := time.Now()
		res, err := cfg.Fulfiller.Handle(ctx, ev)
		cfg.Observer.ObserveEvent(SourceWebhook, time.Since(handled))
		outcome, status = string(res.Outcome), http.StatusOK
		if err != nil {
			outcome, status = string(stock.OutcomeFailed), writeError(w, err)
		} else {
			writeJSON(w, status, webhookAnswer{Received: true, Outcome: res.Outcome, Artworks: res.Artworks})
		}
		level := slog.LevelInfo
		attrs := []any{
			"event_id", ev.ID, "type", ev.Type, "session_id", ev.Session.ID,
			"artworks", res.Artworks, "outcome", res.Outcome, "status", status,
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
		}
		msg := "event processed"
		if err != nil {
			level, msg = notAppliedLevel(err), "event not applied; Stripe will retry"
			attrs = append(attrs, "code", stock.ErrorCode(err), "err", err)
		}
		log.Log(ctx, level, msg, attrs...)
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

// notAppliedLevel is the level of the line saying an event was not applied:
// ERROR, unless nothing is wrong and a retry settles it by itself.
func notAppliedLevel(err error) slog.Level {
	// Another process is on it (or a claim a restart left expires), or a
	// burst of sales is spread out by the retries.
	if errors.Is(err, stock.ErrBusy) || errors.Is(err, stock.ErrPaced) {
		return slog.LevelWarn
	}
	return slog.LevelError
}
