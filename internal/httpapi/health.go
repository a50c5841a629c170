package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"soldout/internal/stock"
)

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

type readiness struct {
	Status string `json:"status"`
	// LastSanityOK is when Sanity last answered a request successfully
	// (RFC 3339), null before the first. Informative only: readiness
	// depends on the journal, since Sanity may be idle for days and a
	// Sanity outage is retried by Stripe, not fixed by a restart.
	LastSanityOK *time.Time `json:"last_sanity_ok"`
}

func handleReadyz(log *slog.Logger, journal Pinger, sanity *SanityContact) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body readiness
		if sanity != nil {
			if t := sanity.Last(); !t.IsZero() {
				t = t.UTC()
				body.LastSanityOK = &t
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := journal.Ping(ctx); err != nil {
			// The probe is public; the error may name the database, its user
			// and its host: it goes to the log only.
			body.Status = "journal unavailable"
			log.Warn("readiness: the journal does not answer; check DATABASE_URL's server and disk", "err", err)
			writeJSON(w, statusFor(stock.Unavailable), body)
			return
		}
		body.Status = "ready"
		writeJSON(w, http.StatusOK, body)
	})
}
