package main

import (
	"log/slog"

	"soldout/internal/httpapi"
	"soldout/internal/sanity"
	"soldout/internal/stock"
	"soldout/internal/stripeapi"
)

// newStorefront wires checkout with reservation: artworks read from
// Sanity's live API, sessions opened with Stripe, reservations decided by
// the journal and ended by the webhook's expired and completed events.
func newStorefront(cfg config, a *app, stripeClient *stripeapi.Client, log *slog.Logger) *httpapi.Storefront {
	c := cfg.Checkout
	log.Info("checkout with reservation on: POST /api/checkout, GET /api/availability/{artworkId}",
		"reservation_ttl", c.ReservationTTL.String(), "allowed_origins", c.AllowedOrigins,
		"success_url_set", c.SuccessURL != "", "cancel_url_set", c.CancelURL != "", "client_holds", c.ClientHolds)
	var holds *httpapi.HoldLimiter
	if c.ClientHolds > 0 {
		holds = httpapi.NewHoldLimiter(c.ClientHolds, a.journal, nil)
	}
	return &httpapi.Storefront{
		Holds: holds,
		Checkout: &stock.Checkout{
			Products:     a.catalog.Products(sanity.ProductFields{Type: c.ArtworkType, Title: c.TitleField, Price: c.PriceField, Currency: c.CurrencyField, Image: c.ImageField}),
			Sessions:     stripeapi.Checkout{Client: stripeClient, SuccessURL: c.SuccessURL, CancelURL: c.CancelURL},
			Reservations: a.journal,
			Logger:       log,
			TTL:          c.ReservationTTL, DefaultCurrency: c.DefaultCurrency,
		},
	}
}
