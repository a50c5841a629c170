package stripehook

import (
	"cmp"
	"encoding/json"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"

	"soldout/internal/stock"
)

// SampleAPIVersion is the API version written into sample events. soldout
// accepts any version; this one is just what a current account sends.
const SampleAPIVersion = "2026-03-25.dahlia"

// Sample describes a Checkout event to build, for `soldout demo`,
// `soldout trigger`, benchmarks and tests.
type Sample struct {
	EventID       string
	Type          string // a stock.Checkout* type
	SessionID     string
	PaymentStatus string // defaults from Type
	ArtworkIDs    []string
	Email         string
	AmountTotal   int64
	Currency      string
	Created       time.Time
	Livemode      bool
	APIVersion    string // defaults to SampleAPIVersion
}

// JSON renders the event as Stripe would send it (the fields soldout reads,
// plus enough of the rest to look like the real thing).
func (s Sample) JSON() []byte {
	status, payment := "complete", s.PaymentStatus
	switch s.Type {
	case stock.CheckoutExpired:
		status, payment = "expired", "unpaid"
	case stock.CheckoutAsyncSucceeded:
		payment = stock.PaymentPaid
	case stock.CheckoutAsyncFailed:
		payment = stock.PaymentUnpaid
	}
	if payment == "" {
		payment = stock.PaymentPaid
	}
	metadata := map[string]string{}
	switch len(s.ArtworkIDs) {
	case 0:
	case 1:
		metadata["artworkId"] = s.ArtworkIDs[0]
	default:
		metadata["artworkIds"] = strings.Join(s.ArtworkIDs, ",")
	}
	created := s.Created
	if created.IsZero() {
		created = time.Now()
	}
	currency := s.Currency
	if currency == "" {
		currency = "eur"
	}
	session := map[string]any{
		"id": s.SessionID, "object": "checkout.session", "mode": "payment",
		"status": status, "payment_status": payment,
		"amount_total": s.AmountTotal, "currency": currency,
		"customer_details": map[string]any{"email": s.Email},
		"metadata":         metadata,
		"livemode":         s.Livemode,
	}
	ev := map[string]any{
		"id": s.EventID, "object": "event", "type": s.Type,
		"api_version": cmp.Or(s.APIVersion, SampleAPIVersion), "created": created.Unix(), "livemode": s.Livemode,
		"pending_webhooks": 1,
		"data":             map[string]any{"object": session},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // only maps of plain values: cannot fail
	}
	return b
}

// Sign returns a Stripe-Signature header for payload, as Stripe computes it.
func Sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}
