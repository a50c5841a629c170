package stock

import (
	"errors"
	"fmt"
)

// Code is soldout's one error vocabulary. Every layer classifies its failures
// with these codes; the HTTP layer maps them to statuses in a single table.
type Code string

const (
	// Invalid: the request can never succeed as sent (bad signature, bad JSON).
	Invalid Code = "invalid"
	// TooLarge: the body is over the size limit.
	TooLarge Code = "too_large"
	// NotFound: the thing asked for does not exist (an unknown artwork on a
	// storefront route).
	NotFound Code = "not_found"
	// Conflict: the request clashes with the current state (sold, reserved).
	Conflict Code = "conflict"
	// RateLimited: the caller is sending too fast.
	RateLimited Code = "rate_limited"
	// Unavailable: a dependency is down, busy or slow; the same request can
	// succeed later. For a webhook this makes Stripe retry.
	Unavailable Code = "unavailable"
	// Upstream: an outside API (Stripe) refused or failed a call made for the
	// caller.
	Upstream Code = "upstream"
	// Misconfigured: soldout's settings or the shop's data need a person
	// (bad token, wrong dataset, missing artwork). Retried, and logged at ERROR.
	Misconfigured Code = "misconfigured"
	// Internal: a bug or an unexpected failure.
	Internal Code = "internal"
)

// Error carries a Code, an operator-facing message and the cause.
type Error struct {
	Code    Code
	Message string // what happened and, where possible, what to do
	Err     error  // cause, may be nil
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Message
	}
	if e.Message == "" {
		return e.Err.Error()
	}
	return e.Message + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error around a cause.
func Wrap(code Code, err error, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the Code of the first *Error in err's chain, Internal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Sentinel conditions that the rules branch on. Adapters wrap them so that
// errors.Is works across package boundaries.
var (
	// ErrRevisionMismatch: an ifRevisionID guard failed or a guarded
	// document vanished; read again and decide again.
	ErrRevisionMismatch = errors.New("document changed since it was read")
	// ErrSaleTaken: the journal already holds an active sale (held or sold)
	// for the artwork under another session.
	ErrSaleTaken = errors.New("artwork already has an active sale")
	// ErrSaleExists: the journal already has a row for this artwork and session.
	ErrSaleExists = errors.New("sale already recorded for this session")
	// ErrBusy: another process holds a live lease on the sale; the caller
	// should come back later (Stripe retries).
	ErrBusy = errors.New("another soldout process is applying this sale, or this one was before a restart (its claim lasts SOLDOUT_LEASE_TTL)")
	// ErrPaced: soldout's own pacing of Sanity writes had no slot in time, a
	// burst of sales; the next delivery gets one.
	ErrPaced = errors.New("more sales at once than the Sanity write rate lets through in the time budget")
	// ErrStale: a compare-and-set on a journal row lost against another writer.
	ErrStale = errors.New("journal row changed by another writer")
	// ErrContended: other writers (deliveries, replicas, an editor saving)
	// kept the artwork changing or locked until the budget ran out; nothing
	// is wrong, and a later delivery settles it.
	ErrContended = errors.New("other writers kept it busy; Stripe will retry")
)
