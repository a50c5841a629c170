package stock_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"soldout/internal/sanity"
	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
)

func TestMinorUnits(t *testing.T) {
	tests := []struct {
		price, currency string
		want            int64 // 0: refused
	}{
		{"1250", "eur", 125000},
		{"1250.5", "EUR", 125050},
		{"19.99", "usd", 1999}, // 19.99*100 is 1998.9999… in floats
		{"0.29", "eur", 29},
		{"1.005", "eur", 0}, // half a cent
		{"12.50", "eur", 1250},
		{"1.25e3", "eur", 125000},
		{"125E-1", "eur", 1250},
		{"70000", "jpy", 70000}, // zero-decimal
		{"70000.0", "jpy", 70000},
		{"70000.5", "jpy", 0},
		{"5000", "krw", 5000},
		{"1.25", "kwd", 1250}, // three decimals
		{"1.255", "kwd", 0},   // Stripe wants the last digit 0
		{"4990", "isk", 499000},
		{"4990.5", "isk", 0}, // whole krónur only
		{"0", "eur", 0},
		{"0.00", "eur", 0},
		{"-5", "eur", 0},
		{"", "eur", 0},
		{"12,50", "eur", 0},
		{"0x10", "eur", 0},
		{"1/2", "eur", 0},
		{"NaN", "eur", 0},
		{"1e999", "eur", 0},
		{"99999999999999999", "eur", 0}, // past int64 once in cents
		{"9999999999999999", "eur", 999999999999999900},
		{"123456789012345678901234567890.000", "eur", 0},
		{"10", "euro", 0},
		{"10", "", 0},
	}
	for _, tt := range tests {
		got, err := stock.MinorUnits(tt.price, tt.currency)
		if got != tt.want || (err != nil) != (tt.want == 0) {
			t.Errorf("MinorUnits(%q, %q) = %d, %v; want %d", tt.price, tt.currency, got, err, tt.want)
		}
		if err != nil && stock.ErrorCode(err) != stock.Invalid {
			t.Errorf("MinorUnits(%q, %q): code %s", tt.price, tt.currency, stock.ErrorCode(err))
		}
	}
}

func TestReservationLive(t *testing.T) {
	until := time.Unix(1_750_000_000, 0)
	tests := []struct {
		state stock.ReservationState
		at    time.Time
		live  bool
	}{
		{stock.ReservationOpen, until.Add(-time.Second), true},
		{stock.ReservationOpen, until, false},
		{stock.ReservationExpired, until.Add(-time.Hour), false},
		{stock.ReservationConverted, until.Add(-time.Hour), false},
		{stock.ReservationReleased, until.Add(-time.Hour), false},
	}
	for _, tt := range tests {
		if got := (stock.Reservation{State: tt.state, HeldUntil: until}).Live(tt.at); got != tt.live {
			t.Errorf("%s at %v: live %v", tt.state, tt.at.Sub(until), got)
		}
	}
}

// reserve gives session the artwork's reservation, as the checkout does.
func (e *env) reserve(artwork, session string) {
	e.t.Helper()
	now := e.clock()
	ctx := context.Background()
	r := stock.Reservation{ArtworkID: artwork, ClaimID: session, State: stock.ReservationOpen,
		ExpiresAt: now.Add(31 * time.Minute), HeldUntil: now.Add(36 * time.Minute), CreatedAt: now, UpdatedAt: now}
	if _, claimed, err := e.journal.ClaimReservation(ctx, r); err != nil || !claimed {
		e.t.Fatalf("claim: %v, %v", claimed, err)
	}
	if err := e.journal.SetReservationSession(ctx, artwork, session, session, now); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) reservationState(artwork string) stock.ReservationState {
	e.t.Helper()
	r, err := e.journal.Reservation(context.Background(), artwork)
	if err != nil || r == nil {
		e.t.Fatalf("reservation of %s: %v, %v", artwork, r, err)
	}
	return r.State
}

func TestSessionEventsEndTheReservation(t *testing.T) {
	t.Run("expired: released, Sanity untouched", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		e.reserve("a1", "cs_1")
		f := e.fulfiller("p1")
		f.Reservations = e.journal
		res := e.mustHandle(f, event("evt_1", stock.CheckoutExpired, "cs_1", "", "a1"), stock.OutcomeReleased)
		if len(res.Artworks) != 1 || res.Artworks[0] != (stock.ArtworkResult{ArtworkID: "a1", Outcome: stock.OutcomeReleased}) {
			t.Errorf("artworks %+v", res.Artworks)
		}
		if e.reservationState("a1") != stock.ReservationExpired || len(e.lake.Transactions()) != 0 {
			t.Error("not released, or Sanity written")
		}
		e.mustHandle(f, event("evt_1", stock.CheckoutExpired, "cs_1", "", "a1"), stock.OutcomeDuplicate)
		// Another session's expiry (the shop's own checkout route) holds nothing.
		e.mustHandle(f, event("evt_2", stock.CheckoutExpired, "cs_other", "", "a1"), stock.OutcomeIgnored)
	})
	t.Run("completed: converted once sold", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		e.reserve("a1", "cs_1")
		f := e.fulfiller("p1")
		f.Reservations = e.journal
		e.setHandler(sanitytest.Faulty(e.lake, sanitytest.Options{Rate: 1, Fault: sanitytest.Error503}))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := f.Handle(ctx, paid("evt_1", "cs_1", "a1")); err == nil {
			t.Fatal("applied with Sanity down")
		}
		if e.reservationState("a1") != stock.ReservationOpen {
			t.Fatal("the hold ended before the sale was applied")
		}
		e.setHandler(nil)
		e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
		if e.reservationState("a1") != stock.ReservationConverted || e.available("a1") != "false" {
			t.Errorf("reservation %s, available %s", e.reservationState("a1"), e.available("a1"))
		}
	})
	t.Run("without Reservations: untouched", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		e.reserve("a1", "cs_1")
		e.mustHandle(e.fulfiller("p1"), event("evt_1", stock.CheckoutExpired, "cs_1", "", "a1"), stock.OutcomeIgnored)
		if e.reservationState("a1") != stock.ReservationOpen {
			t.Error("ended although the feature is off")
		}
	})
}

// attachFails is a journal whose every attempt to record a session fails.
type attachFails struct{ stock.Reservations }

func (attachFails) SetReservationSession(context.Context, string, string, string, time.Time) error {
	return stock.Errorf(stock.Unavailable, "journal down")
}

// oneSession opens the same session for every request, and notes the
// sessions expired.
type oneSession struct{ expired []string }

func (*oneSession) CreateSession(_ context.Context, r stock.CheckoutRequest) (stock.CheckoutSession, error) {
	return stock.CheckoutSession{ID: "cs_1", URL: "https://checkout.stripe.com/c/pay/cs_1", Status: stock.SessionOpen, ExpiresAt: r.ExpiresAt}, nil
}

func (*oneSession) Session(context.Context, string) (stock.CheckoutSession, error) {
	return stock.CheckoutSession{}, errors.ErrUnsupported
}

func (s *oneSession) ExpireSession(_ context.Context, id string) error {
	s.expired = append(s.expired, id)
	return nil
}

// A session whose claim could not be recorded is never handed out, it is
// expired at Stripe, and the artwork is free again at once.
func TestCheckoutWithoutItsRecordReleases(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1", map[string]any{"price": 100})
	sessions := &oneSession{}
	c := &stock.Checkout{
		Products:     e.catalog(token).Products(sanity.ProductFields{Type: "artwork", Title: "title", Price: "price", Currency: "currency"}),
		Sessions:     sessions,
		Reservations: attachFails{e.journal},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		TTL:          31 * time.Minute, DefaultCurrency: "eur", Now: e.clock,
	}
	if s, err := c.Start(context.Background(), "a1"); err == nil || s.URL != "" {
		t.Fatalf("Start = %+v, %v; want an error and no link", s, err)
	}
	if e.reservationState("a1") != stock.ReservationReleased {
		t.Errorf("reservation %s, want released", e.reservationState("a1"))
	}
	if len(sessions.expired) != 1 || sessions.expired[0] != "cs_1" {
		t.Errorf("sessions expired: %v, want the one nobody was given", sessions.expired)
	}
}

// afterRead runs hook once, right after the wrapped read of a product.
type afterRead struct {
	stock.Products
	hook func()
}

func (a *afterRead) Product(ctx context.Context, id string) (stock.Product, error) {
	p, err := a.Products.Product(ctx, id)
	if h := a.hook; h != nil {
		a.hook = nil
		h()
	}
	return p, err
}

// openedSessions opens a Checkout Session for every request and counts them.
type openedSessions struct{ n int }

func (*openedSessions) ExpireSession(context.Context, string) error { return nil }

func (s *openedSessions) CreateSession(_ context.Context, r stock.CheckoutRequest) (stock.CheckoutSession, error) {
	s.n++
	return stock.CheckoutSession{ID: "cs_B", URL: "https://checkout.stripe.com/c/pay/cs_B", Status: stock.SessionOpen, ExpiresAt: r.ExpiresAt}, nil
}

func (s *openedSessions) Session(context.Context, string) (stock.CheckoutSession, error) {
	return stock.CheckoutSession{ID: "cs_A", Status: stock.SessionComplete}, nil
}

// TestStartAfterASaleBetweenItsReads: buyer A's payment is applied (the
// piece unavailable, A's reservation converted) while buyer B's Start is
// between its read of the artwork and its claim. The claim succeeds, as A's
// reservation is no longer open; B must still not get a session for the
// sold piece, or B's payment would be the double sale reservations prevent.
func TestStartAfterASaleBetweenItsReads(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1", map[string]any{"price": 100})
	e.reserve("a1", "cs_A")
	f := e.fulfiller("p1")
	f.Reservations = e.journal
	products := &afterRead{Products: e.catalog(token).Products(sanity.ProductFields{Type: "artwork", Title: "title", Price: "price", Currency: "currency"})}
	products.hook = func() { e.mustHandle(f, paid("evt_A", "cs_A", "a1"), stock.OutcomeSold) }
	sessions := &openedSessions{}
	c := &stock.Checkout{Products: products, Sessions: sessions, Reservations: e.journal,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), TTL: 31 * time.Minute, DefaultCurrency: "eur", Now: e.clock}
	if _, err := c.Start(t.Context(), "a1"); !errors.Is(err, stock.ErrSold) {
		t.Fatalf("Start: %v, want sold", err)
	}
	if sessions.n != 0 {
		t.Error("a Checkout Session was opened for a sold piece")
	}
	if st := e.reservationState("a1"); st == stock.ReservationOpen {
		t.Error("B's claim still holds the sold piece")
	}
}

// TestStartGivenUpDuringItsClaimHoldsNothing: the buyer's request runs out
// of time while the claim commits. The journal's answer can then be the
// caller's context error although the claim is on disk; a claim so lost
// would hold the piece, with no session and nobody to pay, until it lapses.
func TestStartGivenUpDuringItsClaimHoldsNothing(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1", map[string]any{"price": 100})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := &stock.Checkout{
		Products:     e.catalog(token).Products(sanity.ProductFields{Type: "artwork", Title: "title", Price: "price", Currency: "currency"}),
		Sessions:     &openedSessions{},
		Reservations: &givenUpDuringClaim{Reservations: e.journal, cancel: cancel},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)), TTL: 31 * time.Minute, DefaultCurrency: "eur", Now: e.clock,
	}
	if _, err := c.Start(ctx, "a1"); err == nil {
		t.Fatal("Start succeeded for a buyer who had gone")
	}
	if st := e.reservationState("a1"); st == stock.ReservationOpen {
		t.Error("the lost claim holds the piece for nobody")
	}
}

// givenUpDuringClaim commits the claim, then cancels the caller and, as the
// journal's wait does, answers the caller's context error if it is done.
type givenUpDuringClaim struct {
	stock.Reservations
	cancel func()
}

func (r *givenUpDuringClaim) ClaimReservation(ctx context.Context, res stock.Reservation) (stock.Reservation, bool, error) {
	holder, claimed, err := r.Reservations.ClaimReservation(context.WithoutCancel(ctx), res)
	r.cancel()
	if ctx.Err() != nil {
		return stock.Reservation{}, false, ctx.Err()
	}
	return holder, claimed, err
}
