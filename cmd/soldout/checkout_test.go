package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"soldout/internal/stock"
	"soldout/internal/stripeapi/stripetest"
	"soldout/internal/stripehook"
)

// postCheckout clicks "Buy" from the shop's page.
func postCheckout(t *testing.T, url, artworkID string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/api/checkout", strings.NewReader(`{"artworkId":"`+artworkID+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://shop.example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("checkout answer is not JSON: %v", err)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" {
		t.Errorf("SOLDOUT_ALLOWED_ORIGINS not applied: %v", resp.Header)
	}
	return resp.StatusCode, m
}

// TestServeCheckout runs checkout with reservation through the whole
// program, wired from the environment, against the Stripe fake.
func TestServeCheckout(t *testing.T) {
	stripe := stripetest.New()
	t.Cleanup(stripe.Close)
	s := startServe(t, map[string]string{
		"STRIPE_SECRET_KEY": stripetest.SecretKey, "STRIPE_API_BASE": stripe.URL(),
		"SOLDOUT_ALLOWED_ORIGINS": "https://shop.example.com", "SOLDOUT_SUCCESS_URL": "https://shop.example.com/thanks?s={CHECKOUT_SESSION_ID}",
		"SOLDOUT_FIELD_PRICE": "amount",
	})
	s.lake.Put(map[string]any{"_id": "art-1", "_type": "artwork", "title": "Blue Heron", "amount": 1200, "isAvailable": true})

	status, first := postCheckout(t, s.url, "art-1")
	session, _ := first["sessionId"].(string)
	if status != 200 || session == "" {
		t.Fatalf("checkout: %d %v", status, first)
	}
	if got, _ := stripe.Session(session); got.AmountTotal != 120000 || got.Currency != "eur" || got.SuccessURL == "" {
		t.Errorf("session %+v", got)
	}
	if status, m := postCheckout(t, s.url, "art-1"); status != 409 || m["error"] != "reserved" {
		t.Errorf("second buyer: %d %v", status, m)
	}
	expired := stripehook.Sample{EventID: "evt_x", Type: stock.CheckoutExpired, SessionID: session, ArtworkIDs: []string{"art-1"}}.JSON()
	if status := postWebhook(t, s.url, expired, signed(expired)); status != 200 {
		t.Fatalf("expired: %d", status)
	}
	if status, m := postCheckout(t, s.url, "art-1"); status != 200 || m["sessionId"] == session {
		t.Errorf("after the expiry: %d %v", status, m)
	}
}

// TestServeCheckoutStripeMock opens a session through the whole program on
// stripe-mock, which checks the create request against Stripe's OpenAPI
// spec (stripeapi's TestStripeMock covers create and expire on their own).
func TestServeCheckoutStripeMock(t *testing.T) {
	base := os.Getenv("SOLDOUT_TEST_STRIPE_MOCK")
	if base == "" {
		t.Skip("SOLDOUT_TEST_STRIPE_MOCK is not set (see internal/stripeapi's TestStripeMock for how to run stripe-mock)")
	}
	s := startServe(t, map[string]string{"STRIPE_SECRET_KEY": "sk_test_123", "STRIPE_API_BASE": base, "SOLDOUT_ALLOWED_ORIGINS": "https://shop.example.com"})
	s.lake.Put(map[string]any{"_id": "art-1", "_type": "artwork", "title": "Blue Heron", "price": 1250.5, "imageUrl": "https://cdn.example/h.jpg"})
	status, m := postCheckout(t, s.url, "art-1")
	if id, _ := m["sessionId"].(string); status != 200 || !strings.HasPrefix(id, "cs_") {
		t.Errorf("checkout against stripe-mock: %d %v", status, m)
	}
}
