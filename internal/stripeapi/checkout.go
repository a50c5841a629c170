package stripeapi

import (
	"context"

	"soldout/internal/stock"
)

// Checkout is the stock.CheckoutSessions that checkout with reservation
// opens sessions with: the client plus the shop's return pages.
type Checkout struct {
	Client *Client
	// SuccessURL (SOLDOUT_SUCCESS_URL) may contain {CHECKOUT_SESSION_ID};
	// CancelURL is SOLDOUT_CANCEL_URL.
	SuccessURL, CancelURL string
}

var _ stock.CheckoutSessions = Checkout{}

// CreateSession implements stock.CheckoutSessions.
func (c Checkout) CreateSession(ctx context.Context, r stock.CheckoutRequest) (stock.CheckoutSession, error) {
	s, err := c.Client.CreateSession(ctx, CreateParams{
		ArtworkID: r.ArtworkID, ProductName: r.ProductName, ImageURL: r.ImageURL,
		UnitAmount: r.UnitAmount, Currency: r.Currency,
		SuccessURL: c.SuccessURL, CancelURL: c.CancelURL,
		ExpiresAt: r.ExpiresAt, IdempotencyKey: r.IdempotencyKey,
	})
	return checkoutSession(s), err
}

// Session implements stock.CheckoutSessions.
func (c Checkout) Session(ctx context.Context, id string) (stock.CheckoutSession, error) {
	s, err := c.Client.Session(ctx, id)
	return checkoutSession(s), err
}

// ExpireSession implements stock.CheckoutSessions.
func (c Checkout) ExpireSession(ctx context.Context, id string) error {
	_, err := c.Client.ExpireSession(ctx, id)
	return err
}

func checkoutSession(s Session) stock.CheckoutSession {
	return stock.CheckoutSession{ID: s.ID, URL: s.URL, Status: s.Status, ExpiresAt: s.ExpiresAt}
}
