package stock_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"soldout/internal/sanity"
	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
)

// TestALateFailureLeavesAPaidSaleSold: Stripe does not keep order, and a
// stray async_payment_failed can reach a session whose sale is recorded as
// paid. Giving the piece back would put a paid piece on sale again.
func TestALateFailureLeavesAPaidSaleSold(t *testing.T) {
	for _, tt := range []struct {
		name   string
		events []stock.Event
		wants  []stock.Outcome
	}{
		{"paid at checkout", []stock.Event{paid("evt_1", "cs_1", "a1")}, []stock.Outcome{stock.OutcomeSold}},
		{"held, then its delayed payment succeeded", []stock.Event{
			event("evt_1", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1"),
			event("evt_2", stock.CheckoutAsyncSucceeded, "cs_1", "", "a1"),
		}, []stock.Outcome{stock.OutcomeHeld, stock.OutcomeSold}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			e.artwork("drafts.a1")
			f := e.fulfiller("p1")
			for i, ev := range tt.events {
				e.mustHandle(f, ev, tt.wants[i])
			}
			before := len(e.lake.Transactions())
			e.mustHandle(f, event("evt_late", stock.CheckoutAsyncFailed, "cs_1", "", "a1"), stock.OutcomeIgnored)
			if e.available("a1") != "false" || e.available("drafts.a1") != "false" {
				t.Fatalf("a paid piece is on sale again: a1=%s draft=%s", e.available("a1"), e.available("drafts.a1"))
			}
			if n := len(e.lake.Transactions()); n != before {
				t.Errorf("the stray failure wrote %d transactions to Sanity", n-before)
			}
			if s := e.sale("a1", "cs_1"); s.State != stock.SaleSold {
				t.Errorf("sale %+v, want sold", s)
			}
			if got := e.logs.lines(slog.LevelWarn, "evt_late"); len(got) != 1 {
				t.Errorf("the operator is not told to check the payment: %q", got)
			}
		})
	}
}

// TestAReleaseWaitsForAnotherReplicasLiveLease: a hold claimed by another
// replica whose Sanity write is not known to have committed (it is at work
// right now, or died before its lease ran out) is that replica's until the
// lease lapses. A release deciding on it meanwhile would record the sale
// released under the feet of the write in progress.
func TestAReleaseWaitsForAnotherReplicasLiveLease(t *testing.T) {
	for _, tt := range []struct {
		name string
		// dead is the replica that claimed the hold and stopped.
		dead      func(e *env) *stock.Fulfiller
		available string // a1 while the lease lives
	}{
		{"its Sanity write not made", func(e *env) *stock.Fulfiller {
			return e.fulfillerWith("p2", failingCatalog{e.catalog(token)}, e.journal)
		}, "true"},
		{"its Sanity write made, not recorded", func(e *env) *stock.Fulfiller {
			return e.fulfillerWith("p2", e.catalog(token), crashJournal{e.journal, "FinishEvent"})
		}, "false"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			if _, err := e.handle(tt.dead(e), event("evt_1", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1")); err == nil {
				t.Fatal("the crash did not surface")
			}
			if s := e.sale("a1", "cs_1"); s.State != stock.SaleHeld || s.AppliedRev != "" || s.LeaseOwner != "p2" || !s.LeaseUntil.After(e.clock()) {
				t.Fatalf("setup: sale %+v, want held under p2's live lease, not applied", s)
			}
			p1 := e.fulfiller("p1")
			failed := event("evt_2", stock.CheckoutAsyncFailed, "cs_1", "", "a1")
			before := len(e.lake.Transactions())
			_, err := e.handle(p1, failed)
			if !errors.Is(err, stock.ErrBusy) || stock.ErrorCode(err) != stock.Unavailable {
				t.Fatalf("release under another replica's live lease: %v, want busy (Stripe retries)", err)
			}
			if n := len(e.lake.Transactions()); n != before || e.available("a1") != tt.available {
				t.Errorf("Sanity written under another replica's lease: %d transactions, a1=%s", n-before, e.available("a1"))
			}
			if s := e.sale("a1", "cs_1"); s.State != stock.SaleHeld || s.LeaseOwner != "p2" {
				t.Errorf("sale %+v, want still held by p2", s)
			}
			if rec, err := e.journal.Event(t.Context(), "evt_2"); err != nil || rec.Outcome != stock.OutcomeFailed {
				t.Errorf("journal event %+v, %v; want failed", rec, err)
			}
			// Once the lease has lapsed, Stripe's retry releases it.
			e.advance(stock.DefaultLeaseTTL + time.Second)
			e.mustHandle(p1, failed, stock.OutcomeReleased)
			if e.available("a1") != "true" || e.sale("a1", "cs_1").State != stock.SaleReleased {
				t.Errorf("after the lease: a1=%s, sale %+v", e.available("a1"), e.sale("a1", "cs_1"))
			}
		})
	}
}

// TestPaymentStatusOfACompletedCheckout: a completed session sells when
// nothing more is to be paid (a 100% discount: no_payment_required), holds
// while a delayed payment is pending, and ignores what it does not know.
func TestPaymentStatusOfACompletedCheckout(t *testing.T) {
	for _, tt := range []struct {
		status    string
		want      stock.Outcome
		state     stock.SaleState // "" when no sale is recorded
		available string
	}{
		{stock.PaymentPaid, stock.OutcomeSold, stock.SaleSold, "false"},
		{stock.PaymentNoPaymentRequired, stock.OutcomeSold, stock.SaleSold, "false"},
		{stock.PaymentUnpaid, stock.OutcomeHeld, stock.SaleHeld, "false"},
		{"something_new", stock.OutcomeIgnored, "", "true"},
	} {
		t.Run(tt.status, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			e.mustHandle(e.fulfiller("p1"), event("evt_1", stock.CheckoutCompleted, "cs_1", tt.status, "a1"), tt.want)
			if got := e.sale("a1", "cs_1").State; got != tt.state {
				t.Errorf("sale state %q, want %q", got, tt.state)
			}
			if e.available("a1") != tt.available {
				t.Errorf("a1 isAvailable %s, want %s", e.available("a1"), tt.available)
			}
		})
	}
}

// stalledCatalog is Sanity that never answers a read: the caller's
// deadline passes first.
type stalledCatalog struct{ stock.Catalog }

func (stalledCatalog) Artwork(ctx context.Context, id string) (stock.Artwork, error) {
	<-ctx.Done()
	return stock.Artwork{}, stock.Wrap(stock.Unavailable, ctx.Err(), "reading artwork %s", id)
}

// TestAnOutcomeIsRecordedPastTheRequestsDeadline: Sanity is so slow that
// the rules fail on the request's deadline. The journal still says that the
// event failed, and why: that is the audit trail of the 5xx Stripe got.
func TestAnOutcomeIsRecordedPastTheRequestsDeadline(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(e *env, f *stock.Fulfiller)
		ev    stock.Event
	}{
		{"a sale", func(*env, *stock.Fulfiller) {}, paid("evt_1", "cs_1", "a1")},
		{"a release", func(e *env, f *stock.Fulfiller) {
			e.mustHandle(f, event("evt_0", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		}, event("evt_1", stock.CheckoutAsyncFailed, "cs_1", "", "a1")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			f := e.fulfiller("p1")
			tt.setup(e, f)
			slow := e.fulfillerWith("p1", stalledCatalog{e.catalog(token)}, e.journal)
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err := slow.Handle(ctx, tt.ev)
			if stock.ErrorCode(err) != stock.Unavailable {
				t.Fatalf("err = %v, want unavailable", err)
			}
			if ctx.Err() == nil {
				t.Fatal("the rules ended before the deadline")
			}
			rec, err := e.journal.Event(context.Background(), tt.ev.ID)
			if err != nil || rec.Outcome != stock.OutcomeFailed || rec.LastError == "" {
				t.Fatalf("journal event %s: outcome %q, last error %q, %v; want failed, with its error", tt.ev.ID, rec.Outcome, rec.LastError, err)
			}
			// Sanity answers again: Stripe's retry applies it.
			want := stock.OutcomeSold
			if tt.ev.Type == stock.CheckoutAsyncFailed {
				want = stock.OutcomeReleased
			}
			e.mustHandle(f, tt.ev, want)
		})
	}
}

// TestAnEditorSavingBetweenReadAndWriteIsDecidedAgain: each write a round
// makes is guarded by the revisions it read. An editor's save in between
// fails the guard; the artwork is read again and decided again, rather than
// answering Stripe with a 5xx.
func TestAnEditorSavingBetweenReadAndWriteIsDecidedAgain(t *testing.T) {
	for _, tt := range []struct {
		name string
		// setup returns the event whose write the editor's save precedes.
		setup func(e *env, f *stock.Fulfiller) stock.Event
		// edited is the document the editor saves, retitled.
		edited string
		extra  map[string]any
		want   stock.Outcome
	}{
		{
			name: "the release of a hold",
			setup: func(e *env, f *stock.Fulfiller) stock.Event {
				e.artwork("a1")
				e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
				return event("evt_2", stock.CheckoutAsyncFailed, "cs_A", "", "a1")
			},
			// The editor retitles the held piece: it is theirs now.
			edited: "a1", extra: map[string]any{"isAvailable": false},
			want: stock.OutcomeReleaseSkipped,
		},
		{
			name: "the close of a piece withdrawn by hand",
			setup: func(e *env, f *stock.Fulfiller) stock.Event {
				e.artwork("a1", map[string]any{"isAvailable": false})
				e.artwork("drafts.a1")
				return paid("evt_1", "cs_A", "a1")
			},
			edited: "drafts.a1",
			want:   stock.OutcomeAlreadyUnavailable,
		},
		{
			name: "the keep for a waiting buyer",
			setup: func(e *env, f *stock.Fulfiller) stock.Event {
				e.artwork("a1")
				e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
				failed := event("evt_2", stock.CheckoutAsyncFailed, "cs_A", "", "a1")
				if _, err := e.handle(e.fulfillerWith("p1", e.catalog(token), crashJournal{e.journal, "FinishEvent"}), failed); err == nil {
					e.t.Fatal("the crash did not surface")
				}
				e.mustHandle(f, paid("evt_C", "cs_C", "a1"), stock.OutcomeDoubleSale)
				return failed
			},
			edited: "a1",
			want:   stock.OutcomeReleaseSkipped,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.fulfiller("p1")
			ev := tt.setup(e, f)
			var once sync.Once
			e.setHandler(e.around(func(r *http.Request) {
				if sanitytest.IsMutate(r) {
					once.Do(func() { e.artwork(tt.edited, map[string]any{"title": "edited"}, tt.extra) })
				}
			}, nil))
			e.mustHandle(f, ev, tt.want)
			e.setHandler(nil)
			for _, id := range []string{"a1", "drafts.a1"} {
				if d, ok := e.lake.Get(id); ok && d["isAvailable"] != false {
					t.Errorf("%s = %v, want unavailable", id, d)
				}
			}
			if d, _ := e.lake.Get(tt.edited); d["title"] != "edited" {
				t.Errorf("the editor's save of %s was lost: %v", tt.edited, d)
			}
		})
	}
}

// TestTwoWaitingBuyersDroppingOutAtOnce: the analogue, for two double sales
// waiting for the same failed hold, of TestTwoReleasesAtOnceOfferThePieceAgain.
// Each release reads the other buyer as still waiting, so neither says that
// the piece is now kept for nobody; the release recorded second must find
// its fellow changed and decide again.
func TestTwoWaitingBuyersDroppingOutAtOnce(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	p1 := e.fulfiller("p1")
	e.mustHandle(p1, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
	e.mustHandle(p1, event("evt_2", stock.CheckoutCompleted, "cs_B", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
	e.mustHandle(p1, event("evt_3", stock.CheckoutCompleted, "cs_C", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
	e.mustHandle(p1, event("evt_4", stock.CheckoutAsyncFailed, "cs_A", "", "a1"), stock.OutcomeReleaseSkipped)

	failB := event("evt_5", stock.CheckoutAsyncFailed, "cs_B", "", "a1")
	failC := event("evt_6", stock.CheckoutAsyncFailed, "cs_C", "", "a1")
	fired := false
	// cs_C's release runs to its end between cs_B's decision and its record.
	j := &beforeFinish{Journal: e.journal, run: func() {
		if !fired {
			fired = true
			e.mustHandle(p1, failC, stock.OutcomeReleased)
		}
	}}
	e.mustHandle(e.fulfillerWith("p2", e.catalog(token), j), failB, stock.OutcomeReleased)
	if !fired {
		t.Fatal("cs_C's release did not run inside cs_B's")
	}
	for _, s := range []string{"cs_A", "cs_B", "cs_C"} {
		if got := e.sale("a1", s).State; got != stock.SaleReleased {
			t.Errorf("sale %s: %s, want released", s, got)
		}
	}
	if e.available("a1") != "false" {
		t.Fatalf("a1 = %s: the setup did not keep the piece", e.available("a1"))
	}
	if got := e.logs.lines(slog.LevelWarn, "nobody holds this artwork any more"); len(got) != 1 {
		t.Fatalf("both waiting buyers dropped out, the piece is kept for nobody, and the operator was told %d times: %q", len(got), got)
	}
	if len(e.logs.lines(slog.LevelInfo, "deciding again")) == 0 {
		t.Error("a decision superseded without a word in the log")
	}
}

// TestAKeepForABuyerWhoDroppedOutDoesNotMakeADoubleSale: a buyer's claim
// reads the piece on sale; before it writes, a failed hold keeps the piece
// for the one buyer waiting, and that buyer's payment fails too. Nobody
// waits any more: the piece is the claiming buyer's, not a double sale.
func TestAKeepForABuyerWhoDroppedOutDoesNotMakeADoubleSale(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	p1 := e.fulfiller("p1")
	failed := waitingAfterALostRelease(t, e, p1)
	c := &afterFirstRead{Catalog: e.catalog(token), after: func() {
		e.mustHandle(p1, failed, stock.OutcomeReleaseSkipped) // kept, under cs_B's name
		e.mustHandle(p1, event("evt_B2", stock.CheckoutAsyncFailed, "cs_B", "", "a1"), stock.OutcomeReleased)
	}}
	e.mustHandle(e.fulfillerWith("p2", c, e.journal), paid("evt_D", "cs_D", "a1"), stock.OutcomeSold)
	if s := e.sale("a1", "cs_D"); s.State != stock.SaleSold || s.AppliedRev != e.rev("a1") {
		t.Errorf("cs_D %+v, want sold, applied at %s", s, e.rev("a1"))
	}
	if e.available("a1") != "false" {
		t.Error("sold to cs_D and on sale")
	}
	if got := e.logs.lines(slog.LevelError, "evt_D"); len(got) != 0 {
		t.Errorf("a double sale reported though nobody waits: %q", got)
	}
}

// stripeSession is Stripe's side of a lapsed reservation: the session it
// reports (status, or err), and the sessions it opened.
type stripeSession struct {
	status  string
	err     error
	created int
}

func (s *stripeSession) Session(_ context.Context, id string) (stock.CheckoutSession, error) {
	if s.err != nil {
		return stock.CheckoutSession{}, s.err
	}
	return stock.CheckoutSession{ID: id, Status: s.status}, nil
}

func (s *stripeSession) CreateSession(_ context.Context, r stock.CheckoutRequest) (stock.CheckoutSession, error) {
	s.created++
	return stock.CheckoutSession{ID: "cs_B", URL: "https://checkout.stripe.com/c/pay/cs_B", Status: stock.SessionOpen, ExpiresAt: r.ExpiresAt}, nil
}

func (*stripeSession) ExpireSession(context.Context, string) error { return nil }

// TestStartAfterAReservationLapsed: cs_A's reservation is past its hold and
// no event ended it. Stripe is asked about cs_A before the piece is offered
// again, and its answer decides.
func TestStartAfterAReservationLapsed(t *testing.T) {
	for _, tt := range []struct {
		name    string
		stripe  stripeSession
		opened  bool             // a new session is opened for the buyer
		wantErr func(error) bool // when not opened
		session string           // the reservation's session afterwards
	}{
		{"still open at Stripe, whose clock is behind", stripeSession{status: stock.SessionOpen}, false,
			func(err error) bool {
				var r *stock.ReservedError
				return errors.As(err, &r) && stock.ErrorCode(err) == stock.Conflict
			}, "cs_A"},
		{"unknown to Stripe", stripeSession{err: stock.Errorf(stock.NotFound, "stripe: no such checkout session")}, true, nil, "cs_B"},
		{"expired at Stripe", stripeSession{status: "expired"}, true, nil, "cs_B"},
		{"completed at Stripe, its webhook on its way", stripeSession{status: stock.SessionComplete}, false,
			func(err error) bool { return errors.Is(err, stock.ErrSold) && stock.ErrorCode(err) == stock.Conflict }, "cs_A"},
		{"Stripe failing", stripeSession{err: errors.New("connection reset")}, false,
			func(err error) bool { return stock.ErrorCode(err) == stock.Upstream }, "cs_A"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1", map[string]any{"price": 100})
			e.reserve("a1", "cs_A")
			e.advance(37 * time.Minute) // past HeldUntil
			sessions := tt.stripe
			c := &stock.Checkout{
				Products:     e.catalog(token).Products(sanity.ProductFields{Type: "artwork", Title: "title", Price: "price", Currency: "currency"}),
				Sessions:     &sessions,
				Reservations: e.journal,
				Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
				TTL:          31 * time.Minute, DefaultCurrency: "eur", Now: e.clock,
			}
			s, err := c.Start(t.Context(), "a1")
			switch {
			case tt.opened && (err != nil || s.ID != "cs_B"):
				t.Fatalf("Start = %+v, %v; want a checkout for the buyer", s, err)
			case !tt.opened && (err == nil || !tt.wantErr(err)):
				t.Fatalf("Start = %+v, %v; want refused", s, err)
			}
			if want := map[bool]int{true: 1, false: 0}[tt.opened]; sessions.created != want {
				t.Errorf("%d sessions opened, want %d", sessions.created, want)
			}
			r, err := e.journal.Reservation(t.Context(), "a1")
			if err != nil || r == nil || r.State != stock.ReservationOpen || r.SessionID != tt.session {
				t.Errorf("reservation %+v, %v; want open for %s", r, err, tt.session)
			}
		})
	}
}

// waitingAfterALostRelease sets the stage for the keeps: cs_A's hold fails,
// but the release's record is lost, so the hold stays in the journal while
// the piece is on sale, and cs_B (pending) checks it out and waits for it.
// It returns cs_A's failure, whose redelivery keeps the piece for cs_B.
func waitingAfterALostRelease(t *testing.T, e *env, p1 *stock.Fulfiller) stock.Event {
	t.Helper()
	failed := event("evt_2", stock.CheckoutAsyncFailed, "cs_A", "", "a1")
	e.mustHandle(p1, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
	if _, err := e.handle(e.fulfillerWith("p1", e.catalog(token), crashJournal{e.journal, "FinishEvent"}), failed); err == nil {
		t.Fatal("the crash did not surface")
	}
	e.mustHandle(p1, event("evt_B", stock.CheckoutCompleted, "cs_B", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
	return failed
}

// TestAPieceKeptForBuyersWhoDroppedOutIsTheNextBuyers: once every buyer the
// piece was kept for after a failed hold has dropped out, a new buyer's
// claim takes it, as the keep-between-read-and-write path above decides,
// instead of recording a double sale against nobody.
func TestAPieceKeptForBuyersWhoDroppedOutIsTheNextBuyers(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	p1 := e.fulfiller("p1")
	failed := waitingAfterALostRelease(t, e, p1)
	e.mustHandle(p1, failed, stock.OutcomeReleaseSkipped) // kept, under cs_B's name
	e.mustHandle(p1, event("evt_B2", stock.CheckoutAsyncFailed, "cs_B", "", "a1"), stock.OutcomeReleased)
	if e.available("a1") != "false" {
		t.Fatal("the keep did not leave the piece unavailable")
	}
	e.mustHandle(p1, paid("evt_D", "cs_D", "a1"), stock.OutcomeSold)
	if s := e.sale("a1", "cs_D"); s.State != stock.SaleSold || s.AppliedRev != e.rev("a1") {
		t.Errorf("cs_D %+v, want sold, applied at %s", s, e.rev("a1"))
	}
	if got := e.logs.lines(slog.LevelError, "evt_D"); len(got) != 0 {
		t.Errorf("a double sale reported though nobody waits: %q", got)
	}
}

// TestALegacyKeepStaysKept: under a revision from before transaction ids
// named their sale, who waits cannot be told, so a new buyer's claim is a
// double sale, not a sale: a buyer who paid may be waiting for the piece.
func TestALegacyKeepStaysKept(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	f := e.fulfiller("p1")
	old := e.clock().Add(-time.Hour)
	const legacy = "soldout-0123456789abcdef" // a hold's write of an older version
	if err := e.catalog(token).SetAvailable(t.Context(), legacy, false, []stock.Variant{{ID: "a1", Rev: e.rev("a1")}}); err != nil {
		t.Fatal(err)
	}
	if err := e.journal.InsertSale(t.Context(), stock.Sale{ArtworkID: "a1", SessionID: "cs_A", State: stock.SaleHeld,
		Email: "a@example.com", EventIDs: []string{"evt_0"}, AppliedRev: legacy, CreatedAt: old, UpdatedAt: old, Version: 1}); err != nil {
		t.Fatal(err)
	}
	e.mustHandle(f, paid("evt_B", "cs_B", "a1"), stock.OutcomeDoubleSale)
	e.mustHandle(f, event("evt_Af", stock.CheckoutAsyncFailed, "cs_A", "", "a1"), stock.OutcomeReleaseSkipped)
	if e.available("a1") != "false" || e.rev("a1") != legacy {
		t.Fatalf("the failed hold did not keep the piece: available %s, rev %s", e.available("a1"), e.rev("a1"))
	}
	e.mustHandle(f, paid("evt_C", "cs_C", "a1"), stock.OutcomeDoubleSale)
}
