package stripetest

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sessionJSON is the subset of Stripe's checkout.session object that the
// fake models, with Stripe's nulls for absent values.
type sessionJSON struct {
	ID              string               `json:"id"`
	Object          string               `json:"object"`
	AmountSubtotal  int64                `json:"amount_subtotal"`
	AmountTotal     int64                `json:"amount_total"`
	CancelURL       *string              `json:"cancel_url"`
	Created         int64                `json:"created"`
	Currency        *string              `json:"currency"`
	CustomerDetails *customerDetailsJSON `json:"customer_details"`
	CustomerEmail   *string              `json:"customer_email"`
	ExpiresAt       int64                `json:"expires_at"`
	LineItems       *listJSON[itemJSON]  `json:"line_items,omitempty"`
	Livemode        bool                 `json:"livemode"`
	Metadata        map[string]string    `json:"metadata"`
	Mode            string               `json:"mode"`
	PaymentIntent   any                  `json:"payment_intent"` // null, an id, or expanded
	PaymentStatus   string               `json:"payment_status"`
	Status          string               `json:"status"`
	SuccessURL      *string              `json:"success_url"`
	URL             *string              `json:"url"`
}

// paymentIntentJSON is the subset of a payment_intent the fake models.
type paymentIntentJSON struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	Status string `json:"status"`
}

type customerDetailsJSON struct {
	Email string `json:"email"`
}

type listJSON[T any] struct {
	Object  string `json:"object"`
	URL     string `json:"url"`
	HasMore bool   `json:"has_more"`
	Data    []T    `json:"data"`
}

type itemJSON struct {
	ID             string    `json:"id"`
	Object         string    `json:"object"`
	AmountSubtotal int64     `json:"amount_subtotal"`
	AmountTotal    int64     `json:"amount_total"`
	Currency       string    `json:"currency"`
	Description    string    `json:"description"`
	Quantity       int64     `json:"quantity"`
	Price          priceJSON `json:"price"`
}

type priceJSON struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Currency   string `json:"currency"`
	UnitAmount int64  `json:"unit_amount"`
	Product    string `json:"product"`
}

// checkoutURL is where Stripe hosts an open session's payment page.
const checkoutURL = "https://checkout.stripe.com/c/pay/"

func render(s *Session, exp expansion) sessionJSON {
	j := sessionJSON{
		ID:             s.ID,
		Object:         "checkout.session",
		AmountSubtotal: s.AmountTotal,
		AmountTotal:    s.AmountTotal,
		CancelURL:      null(s.CancelURL),
		Created:        s.Created.Unix(),
		Currency:       null(s.Currency),
		CustomerEmail:  null(s.CustomerEmail),
		ExpiresAt:      s.ExpiresAt.Unix(),
		Livemode:       s.Livemode,
		Metadata:       s.Metadata,
		Mode:           "payment",
		PaymentStatus:  s.PaymentStatus,
		Status:         s.Status,
		SuccessURL:     null(s.SuccessURL),
	}
	if j.Metadata == nil {
		j.Metadata = map[string]string{}
	}
	if s.Email != "" {
		j.CustomerDetails = &customerDetailsJSON{Email: s.Email}
	}
	if s.Status == StatusOpen {
		j.URL = null(checkoutURL + s.ID)
	}
	if s.PaymentIntentStatus != "" {
		id := "pi_" + strings.TrimPrefix(s.ID, "cs_")
		j.PaymentIntent = id
		if exp.paymentIntent {
			j.PaymentIntent = paymentIntentJSON{ID: id, Object: "payment_intent", Status: s.PaymentIntentStatus}
		}
	}
	if exp.lineItems {
		suffix := strings.TrimPrefix(s.ID, "cs_")
		j.LineItems = &listJSON[itemJSON]{Object: "list", URL: "/v1/checkout/sessions/" + url.PathEscape(s.ID) + "/line_items", Data: []itemJSON{}}
		for i, li := range s.LineItems {
			id := suffix + "_" + strconv.Itoa(i)
			amount := li.UnitAmount * li.Quantity
			j.LineItems.Data = append(j.LineItems.Data, itemJSON{
				ID: "li_" + id, Object: "item", AmountSubtotal: amount, AmountTotal: amount, Currency: li.Currency,
				Description: li.Name, Quantity: li.Quantity,
				Price: priceJSON{ID: "price_" + id, Object: "price", Currency: li.Currency, UnitAmount: li.UnitAmount, Product: "prod_" + id},
			})
		}
	}
	return j
}

func null(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func total(items []LineItem) int64 {
	var n int64
	for _, li := range items {
		n += li.UnitAmount * li.Quantity
	}
	return n
}

func seconds(t time.Time) time.Time { return time.Unix(t.Unix(), 0) }

func clone(s Session) Session {
	s.Metadata = maps.Clone(s.Metadata)
	s.LineItems = slices.Clone(s.LineItems)
	for i := range s.LineItems {
		s.LineItems[i].Images = slices.Clone(s.LineItems[i].Images)
	}
	return s
}

func sortedKeys(form url.Values) []string { return slices.Sorted(maps.Keys(form)) }
