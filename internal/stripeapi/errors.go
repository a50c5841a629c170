package stripeapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/stripe/stripe-go/v85"

	"soldout/internal/stock"
)

// APIError is an error answer from Stripe, reduced to what soldout logs and
// branches on. It is the cause inside the *stock.Error that every method
// returns; reach it with errors.As.
type APIError struct {
	Status int    // HTTP status
	Type   string // invalid_request_error, api_error, card_error, idempotency_error
	Code   string // e.g. resource_missing, rate_limit; often empty
	Param  string // the request parameter at fault, e.g. expires_at
	// Message is Stripe's, for operators and logs (not buyers), with the
	// secret key scrubbed should Stripe or a stand-in ever echo it.
	Message   string
	RequestID string // req_…, what Stripe support asks for
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Message == "" {
		b.WriteString(http.StatusText(e.Status))
	}
	b.WriteString(" (" + strconv.Itoa(e.Status) + " " + e.Type)
	if e.Code != "" {
		b.WriteString("/" + e.Code)
	}
	if e.Param != "" {
		b.WriteString(", param " + e.Param)
	}
	if e.RequestID != "" {
		b.WriteString(", request " + e.RequestID)
	}
	b.WriteString(")")
	return b.String()
}

// classify turns an error from stripe-go into soldout's vocabulary. By the
// time it arrives, stripe-go has already retried what it deems safe.
func (c *Client) classify(op string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		// A network error, a timeout or cancellation (errors.Is still sees
		// it), or an answer that was not Stripe's JSON, such as a proxy's
		// error page: nothing says a later attempt must fail.
		return stock.Wrap(stock.Unavailable, err, "stripe: %s: no usable answer from %s", op, c.base)
	}
	ae := &APIError{
		Status:    se.HTTPStatusCode,
		Type:      string(se.Type),
		Code:      string(se.Code),
		Param:     se.Param,
		Message:   strings.ReplaceAll(se.Msg, c.key, "[STRIPE_SECRET_KEY]"),
		RequestID: se.RequestID,
	}
	switch s := ae.Status; {
	case s == http.StatusUnauthorized:
		return stock.Wrap(stock.Misconfigured, ae, "STRIPE_SECRET_KEY was refused by Stripe while %s; get the current key from Stripe Dashboard → Developers → API keys", op)
	case s == http.StatusForbidden:
		return stock.Wrap(stock.Misconfigured, ae, "STRIPE_SECRET_KEY may not do this (%s): give the restricted key Checkout Sessions: Write and PaymentIntents: Read (reconcile reads each session's PaymentIntent) in Stripe Dashboard → Developers → API keys", op)
	case s == http.StatusNotFound && se.Code == stripe.ErrorCodeResourceMissing:
		return stock.Wrap(stock.NotFound, ae, "stripe: %s", op)
	case s == http.StatusTooManyRequests:
		// stripe-go does not retry rate limits, and neither should the
		// caller right away.
		return stock.Wrap(stock.Unavailable, ae, "stripe: %s: rate limited", op)
	case s == http.StatusConflict || s >= 500:
		// 409: another request with the same idempotency key is in flight.
		return stock.Wrap(stock.Unavailable, ae, "stripe: %s", op)
	default:
		return stock.Wrap(stock.Upstream, ae, "stripe: %s refused", op)
	}
}
