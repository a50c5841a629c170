package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"soldout/internal/stock"
)

// statusFor is the one place where soldout's error vocabulary becomes HTTP.
// For the webhook, every non-2xx makes Stripe retry; 400 is kept for
// requests that can never become valid.
func statusFor(code stock.Code) int {
	switch code {
	case stock.Invalid:
		return http.StatusBadRequest
	case stock.TooLarge:
		return http.StatusRequestEntityTooLarge
	case stock.NotFound:
		return http.StatusNotFound
	case stock.Conflict:
		return http.StatusConflict
	case stock.RateLimited:
		return http.StatusTooManyRequests
	case stock.Unavailable:
		return http.StatusServiceUnavailable
	case stock.Upstream:
		return http.StatusBadGateway
	default: // Misconfigured, Internal
		return http.StatusInternalServerError
	}
}

// refusalLevel is the level of the line about a request soldout refused or
// could not serve: INFO when the request was at fault (a sold piece, a bad
// id), WARN when a dependency is down or slow (the client's retry, or the
// webhook, settles it), ERROR when a person must act (a setting, a bug).
func refusalLevel(err error) slog.Level {
	// A setting or a bug anywhere in the chain needs a person, though an
	// outer layer classified the failure (Stripe refusing the key is an
	// upstream failure around a misconfigured one).
	for e := err; e != nil; e = errors.Unwrap(e) {
		if se, ok := e.(*stock.Error); ok && (se.Code == stock.Misconfigured || se.Code == stock.Internal) {
			return slog.LevelError
		}
	}
	switch code := stock.ErrorCode(err); {
	case code == stock.Internal: // not a *stock.Error: unexpected
		return slog.LevelError
	case statusFor(code) >= 500:
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

// toldToBrowsers reports whether a route that browsers call may show the
// message of an error of code: only of one about the request itself. The
// others' details may name settings, the dataset and its documents, or
// Stripe request ids; the caller logs them, the browser gets a generic
// message under the same status.
func toldToBrowsers(code stock.Code) bool {
	switch code {
	case stock.Invalid, stock.TooLarge, stock.NotFound, stock.RateLimited:
		return true
	}
	return false
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// writeError answers with the status of err's code and a JSON body. The
// message is the operator-facing one: soldout's errors carry no secrets.
func writeError(w http.ResponseWriter, err error) int {
	code := stock.ErrorCode(err)
	status := statusFor(code)
	writeJSON(w, status, errorBody{Error: err.Error(), Code: string(code)})
	return status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do
}
