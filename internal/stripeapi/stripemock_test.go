package stripeapi_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"soldout/internal/stripeapi"
)

// TestStripeMock runs every call against stripe-mock, Stripe's own mock of
// its API, which validates requests against Stripe's OpenAPI spec: it checks
// that what stripe-go encodes from soldout's params is a valid request and
// that Stripe's fixtures decode. stripe-mock is stateless and answers with
// fixtures, so only shapes are asserted.
func TestStripeMock(t *testing.T) {
	base := os.Getenv("SOLDOUT_TEST_STRIPE_MOCK")
	if base == "" {
		t.Skip("SOLDOUT_TEST_STRIPE_MOCK is not set. To run: go install github.com/stripe/stripe-mock@v0.203.0 && " +
			"stripe-mock -http-addr 127.0.0.1:12111 -https-addr 127.0.0.1:12112 & " +
			"SOLDOUT_TEST_STRIPE_MOCK=http://127.0.0.1:12111 go test ./internal/stripeapi/")
	}
	c := newClient(t, stripeapi.Config{SecretKey: "sk_test_123", APIBase: base, MaxNetworkRetries: -1})
	ctx := t.Context()
	shape := func(what string, s stripeapi.Session) {
		t.Helper()
		if !strings.HasPrefix(s.ID, "cs_") || s.Status == "" || s.PaymentStatus == "" || s.Created.IsZero() || s.ExpiresAt.IsZero() {
			t.Errorf("%s: session does not look decoded: %+v", what, s)
		}
	}

	s, err := c.Session(ctx, "cs_test_soldout")
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	shape("Session", s)

	var listed int
	err = c.CompletedSessions(ctx, time.Now().Add(-24*time.Hour), time.Now(), func(s stripeapi.Session) error {
		listed++
		shape("CompletedSessions", s)
		return nil
	})
	if err != nil || listed == 0 {
		t.Errorf("CompletedSessions: %d sessions, %v", listed, err)
	}

	created, err := c.CreateSession(ctx, stripeapi.CreateParams{
		ArtworkID: "artwork-42", ProductName: "Blue Heron", ImageURL: "https://cdn.sanity.io/images/p/d/heron.jpg",
		UnitAmount: 125000, Currency: "eur",
		SuccessURL: "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}", CancelURL: "https://shop.example/artworks/artwork-42",
		ExpiresAt: time.Now().Add(time.Hour), IdempotencyKey: "soldout-stripe-mock-test", CustomerEmail: "buyer@example.com",
	})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	shape("CreateSession", created)

	expired, err := c.ExpireSession(ctx, created.ID)
	if err != nil {
		t.Fatalf("ExpireSession: %v", err)
	}
	shape("ExpireSession", expired)
}
