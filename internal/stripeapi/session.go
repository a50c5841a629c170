package stripeapi

import (
	"time"

	"github.com/stripe/stripe-go/v85"

	"soldout/internal/stock"
)

// Session is the part of a Checkout Session that soldout reads.
type Session struct {
	ID            string
	Status        string // open, complete, expired
	PaymentStatus string // paid, unpaid, no_payment_required
	// Email is customer_details.email (what the buyer typed), or else
	// customer_email (what soldout prefilled).
	Email       string
	Currency    string // lowercase ISO 4217
	URL         string // the hosted checkout page; empty once not open
	AmountTotal int64  // minor units
	Created     time.Time
	ExpiresAt   time.Time
	Metadata    map[string]string
	Livemode    bool
	// PaymentIntentStatus is the status of the session's PaymentIntent
	// where the listing expanded it (CompletedSessions does), else "". A
	// delayed payment that failed shows only here: the session itself
	// stays complete and unpaid.
	PaymentIntentStatus string
}

// PaymentFailed reports whether the session's delayed payment failed: the
// PaymentIntent needs a new payment method (a refused SEPA debit) or was
// canceled. Nothing is owed, and nothing will be unless the buyer pays again.
func (s Session) PaymentFailed() bool {
	return s.PaymentStatus == string(stripe.CheckoutSessionPaymentStatusUnpaid) &&
		(s.PaymentIntentStatus == string(stripe.PaymentIntentStatusRequiresPaymentMethod) ||
			s.PaymentIntentStatus == string(stripe.PaymentIntentStatusCanceled))
}

// Stock converts s to the domain's Session, cleaned (stock.Session.Clean).
func (s Session) Stock() stock.Session {
	out := stock.Session{
		ID:            s.ID,
		Status:        s.Status,
		PaymentStatus: s.PaymentStatus,
		Email:         s.Email,
		AmountTotal:   s.AmountTotal,
		Currency:      s.Currency,
	}
	out.ReadMetadata(s.Metadata)
	return out.Clean()
}

// sessionAnswer reads Stripe's answer about a Checkout Session: one that is
// not a session is not Stripe's answer. stripe-go takes any status under 400
// for success, so a proxy's redirect or an empty object reaches here; read
// as a session it would call a paid session unpaid, or hold an artwork
// behind an empty link.
func sessionAnswer(cs *stripe.CheckoutSession, doing string) (Session, error) {
	if cs == nil || cs.Object != "checkout.session" || cs.ID == "" {
		return Session{}, stock.Errorf(stock.Unavailable, "stripe: %s: the answer is not that Checkout Session (a proxy in between? STRIPE_API_BASE?)", doing)
	}
	return fromStripe(cs), nil
}

// fromStripe reads Stripe's answer, its strings cleaned (stock.Text) as the
// webhook's are: the journal, and every comparison with what it holds, see
// the same ids whichever way a session arrived.
func fromStripe(cs *stripe.CheckoutSession) Session {
	s := Session{
		ID:            stock.Text(cs.ID),
		Status:        stock.Text(string(cs.Status)),
		PaymentStatus: stock.Text(string(cs.PaymentStatus)),
		Email:         stock.Text(cs.CustomerEmail),
		Currency:      stock.Text(string(cs.Currency)),
		URL:           cs.URL,
		AmountTotal:   cs.AmountTotal,
		Created:       unixTime(cs.Created),
		ExpiresAt:     unixTime(cs.ExpiresAt),
		Metadata:      cs.Metadata,
		Livemode:      cs.Livemode,
	}
	if cs.CustomerDetails != nil && cs.CustomerDetails.Email != "" {
		s.Email = stock.Text(cs.CustomerDetails.Email)
	}
	if cs.PaymentIntent != nil {
		s.PaymentIntentStatus = stock.Text(string(cs.PaymentIntent.Status))
	}
	return s
}

// unixTime keeps an absent timestamp zero rather than 1970.
func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}
