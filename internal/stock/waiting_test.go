package stock_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
)

// TestAFailedHoldKeepsThePieceForAWaitingBuyer: when a held sale's delayed
// payment fails while another buyer checked the piece out meanwhile (a
// double sale), the piece must end unavailable, whatever the interleaving:
// re-offering it would sell it a third time.
func TestAFailedHoldKeepsThePieceForAWaitingBuyer(t *testing.T) {
	// Replica p2 records the paying buyer while replica p1 releases the
	// hold, just before or just after p1's Sanity write.
	for _, when := range []string{"before the release's write", "after the release's write"} {
		t.Run("another replica records the buyer "+when, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			p1, p2 := e.fulfiller("p1"), e.fulfiller("p2")
			e.mustHandle(p1, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
			var fired atomic.Bool
			hook := func(r *http.Request) {
				if sanitytest.IsMutate(r) && fired.CompareAndSwap(false, true) {
					e.mustHandle(p2, paid("evt_C", "cs_C", "a1"), stock.OutcomeDoubleSale)
				}
			}
			if when == "before the release's write" {
				e.setHandler(e.around(hook, nil))
			} else {
				e.setHandler(e.around(nil, hook))
			}
			res, err := e.handle(p1, event("evt_2", stock.CheckoutAsyncFailed, "cs_A", "", "a1"))
			e.setHandler(nil)
			if !fired.Load() {
				t.Fatal("the release wrote nothing to Sanity")
			}
			if err != nil || res.Outcome != stock.OutcomeReleaseSkipped {
				t.Errorf("release: %v, %v; want release_skipped", res.Outcome, err)
			}
			if e.available("a1") != "false" {
				t.Fatal("the piece is on sale while a buyer who paid for it waits")
			}
			if s := e.sale("a1", "cs_C"); s.State != stock.SaleDoubleSale {
				t.Errorf("waiting buyer %+v", s)
			}
			// A third buyer does not get it either.
			e.mustHandle(p1, paid("evt_D", "cs_D", "a1"), stock.OutcomeDoubleSale)
		})
	}

	t.Run("the release's journal record lost, a buyer meanwhile, then the redelivery", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		e.artwork("drafts.a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		failed := event("evt_2", stock.CheckoutAsyncFailed, "cs_A", "", "a1")
		if _, err := e.handle(e.fulfillerWith("p1", e.catalog(token), crashJournal{e.journal, "FinishEvent"}), failed); err == nil {
			t.Fatal("the crash did not surface")
		}
		if e.available("a1") != "true" {
			t.Fatal("the release was not written before the crash")
		}
		// The journal still says cs_A holds it: the buyer is a double sale.
		e.mustHandle(f, paid("evt_C", "cs_C", "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, failed, stock.OutcomeReleaseSkipped)
		if e.available("a1") != "false" || e.available("drafts.a1") != "false" {
			t.Fatalf("not closed again for the waiting buyer: %s / %s", e.available("a1"), e.available("drafts.a1"))
		}
		if got := e.logs.lines(slog.LevelError, "cs_C"); len(got) < 2 {
			t.Errorf("the operator is not told that cs_C waits: %q", got)
		}
	})

	t.Run("a double sale of an earlier hold does not block a later one's release", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		e.mustHandle(f, paid("evt_2", "cs_B", "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, event("evt_3", stock.CheckoutAsyncFailed, "cs_A", "", "a1"), stock.OutcomeReleaseSkipped)
		// The operator refunded cs_B and offered the piece again.
		e.artwork("a1", map[string]any{"isAvailable": true})
		e.advance(30 * 24 * time.Hour)
		e.mustHandle(f, event("evt_4", stock.CheckoutCompleted, "cs_C", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		e.mustHandle(f, event("evt_5", stock.CheckoutAsyncFailed, "cs_C", "", "a1"), stock.OutcomeReleased)
		if e.available("a1") != "true" {
			t.Fatal("not offered again")
		}
	})
}

// TestEveryWriteHasItsOwnTransactionID: Sanity refuses a transaction id it
// has committed, and soldout reads that refusal as "already done" (a retry
// whose first answer was lost). So a second, different write for the same
// sale must not reuse the id of the first, even when the published
// document, outside the write, kept its _rev.
func TestEveryWriteHasItsOwnTransactionID(t *testing.T) {
	t.Run("reapplied twice after a release version was offered again", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		e.artwork("versions.rSpring.a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
		for i := 1; i <= 2; i++ {
			e.artwork("versions.rSpring.a1", map[string]any{"isAvailable": true})
			if _, err := f.Reapply(t.Context(), paid(fmt.Sprintf("reconcile:%d", i), "cs_1", "a1")); err != nil {
				t.Fatal(err)
			}
			if e.available("versions.rSpring.a1") != "false" {
				t.Fatalf("reapply %d left the version on sale", i)
			}
		}
	})
	t.Run("an already unavailable piece closed twice", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1", map[string]any{"isAvailable": false})
		e.artwork("drafts.a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1"), stock.OutcomeAlreadyUnavailable)
		e.artwork("versions.rSpring.a1")
		e.mustHandle(f, event("evt_2", stock.CheckoutAsyncSucceeded, "cs_1", "", "a1"), stock.OutcomeAlreadyUnavailable)
		if e.available("versions.rSpring.a1") != "false" {
			t.Fatal("the second close was dropped as a duplicate of the first")
		}
	})
	t.Run("a late draft patched twice", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
		for i := 1; i <= 2; i++ {
			e.artwork("drafts.a1") // an editor opens a stale copy
			if _, err := f.Reapply(t.Context(), paid(fmt.Sprintf("reconcile:%d", i), "cs_1", "a1")); err != nil {
				t.Fatal(err)
			}
			if e.available("drafts.a1") != "false" {
				t.Fatalf("reapply %d left the draft on sale", i)
			}
		}
	})
}

// pauseDoubleSale holds a double sale's insert until resume is closed, so
// that another process runs while the buyer is half recorded.
type pauseDoubleSale struct {
	stock.Journal
	started, resume, recorded chan struct{}
	once                      sync.Once
}

// InsertDoubleSale pauses the first double sale's record until resume, and
// says when it is done.
func (p *pauseDoubleSale) InsertDoubleSale(ctx context.Context, s stock.Sale, winner *stock.Sale) error {
	first := false
	p.once.Do(func() { first = true; close(p.started) })
	if !first {
		return p.Journal.InsertDoubleSale(ctx, s, winner)
	}
	select {
	case <-p.resume:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer close(p.recorded)
	return p.Journal.InsertDoubleSale(ctx, s, winner)
}

// TestAWaitingBuyerIsFoundWhateverTheOrder: the cases where a failed hold
// could overlook the buyer waiting for it.
func TestAWaitingBuyerIsFoundWhateverTheOrder(t *testing.T) {
	hold := func(session string) stock.Event {
		return event("evt_"+session, stock.CheckoutCompleted, session, stock.PaymentUnpaid, "a1")
	}
	failure := func(session string) stock.Event {
		return event("evt_fail_"+session, stock.CheckoutAsyncFailed, session, "", "a1")
	}
	keptFor := func(t *testing.T, e *env, f *stock.Fulfiller, buyer string) {
		t.Helper()
		if e.available("a1") != "false" {
			t.Fatalf("a1 is on sale while %s waits for it", buyer)
		}
		if s := e.sale("a1", buyer); s.State != stock.SaleDoubleSale {
			t.Fatalf("waiting buyer %+v", s)
		}
		e.mustHandle(f, paid("evt_late", "cs_late", "a1"), stock.OutcomeDoubleSale)
	}

	t.Run("the buyer half recorded while the release decides", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		p1 := e.fulfiller("p1")
		pj := &pauseDoubleSale{Journal: e.journal, started: make(chan struct{}), resume: make(chan struct{}), recorded: make(chan struct{})}
		p2 := e.fulfillerWith("p2", e.catalog(token), pj)
		e.mustHandle(p1, hold("cs_A"), stock.OutcomeHeld)
		var fired atomic.Bool
		done := make(chan struct{})
		// The release has decided (its mutate is on its way): cs_C decides
		// it is a double sale, and its row is recorded before the release
		// writes Sanity and records itself.
		e.setHandler(e.around(func(r *http.Request) {
			if sanitytest.IsMutate(r) && fired.CompareAndSwap(false, true) {
				go func() { defer close(done); _, _ = e.handle(p2, paid("evt_C", "cs_C", "a1")) }()
				reached := func(step chan struct{}) bool {
					select {
					case <-step:
						return true
					case <-time.After(5 * time.Second):
						t.Error("cs_C never reached its double sale's record")
						return false
					}
				}
				if reached(pj.started) {
					close(pj.resume)
					reached(pj.recorded)
				}
			}
		}, nil))
		_, err := e.handle(p1, failure("cs_A"))
		<-done
		e.setHandler(nil)
		if err != nil {
			_, err = e.handle(p1, failure("cs_A")) // Stripe delivers it again
		}
		if err != nil {
			t.Fatal(err)
		}
		// cs_C was recorded before the release: the release's record finds
		// the hold changed, decides again, and keeps the piece for cs_C.
		keptFor(t, e, p1, "cs_C")
	})
	t.Run("the buyer recorded by a replica whose clock is behind", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		p1, p2 := e.fulfiller("p1"), e.fulfiller("p2")
		p2.Now = func() time.Time { return e.clock().Add(-50 * time.Millisecond) }
		e.mustHandle(p1, hold("cs_A"), stock.OutcomeHeld)
		e.mustHandle(p2, paid("evt_C", "cs_C", "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(p1, failure("cs_A"), stock.OutcomeReleaseSkipped)
		keptFor(t, e, p1, "cs_C")
	})
	t.Run("an editor's save after the release's lost record", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, hold("cs_A"), stock.OutcomeHeld)
		if _, err := e.handle(e.fulfillerWith("p1", e.catalog(token), crashJournal{e.journal, "FinishEvent"}), failure("cs_A")); err == nil {
			t.Fatal("the crash did not surface")
		}
		e.artwork("a1", map[string]any{"title": "retitled"})
		e.mustHandle(f, paid("evt_C", "cs_C", "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, failure("cs_A"), stock.OutcomeReleaseSkipped)
		keptFor(t, e, f, "cs_C")
	})
}

// TestWhatTheOperatorIsToldAboutWaitingBuyers: the buyers a failed hold is
// kept for are all named, and one whose payment then succeeds is the one
// who paid, not someone to refund.
func TestWhatTheOperatorIsToldAboutWaitingBuyers(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	f := e.fulfiller("p1")
	e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
	e.mustHandle(f, event("evt_2", stock.CheckoutCompleted, "cs_B", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
	e.mustHandle(f, paid("evt_3", "cs_C", "a1"), stock.OutcomeDoubleSale)
	e.mustHandle(f, event("evt_4", stock.CheckoutAsyncFailed, "cs_A", "", "a1"), stock.OutcomeReleaseSkipped)
	if got := e.logs.lines(slog.LevelError, "evt_4"); len(got) != 1 || !strings.Contains(got[0], "cs_B") || !strings.Contains(got[0], "cs_C") {
		t.Errorf("the release names every waiting buyer: %q", got)
	}
	// cs_C paid too: one of the two is to be refunded.
	e.mustHandle(f, event("evt_5", stock.CheckoutAsyncSucceeded, "cs_B", "", "a1"), stock.OutcomeDoubleSale)
	if got := e.logs.lines(slog.LevelError, "evt_5"); len(got) != 1 || !strings.Contains(got[0], "give the piece to one of them") {
		t.Errorf("cs_B and cs_C both paid for a piece kept for them: %q", got)
	}

	// Alone, the buyer whose payment succeeds is the one who paid.
	e = newEnv(t)
	e.artwork("a1")
	f = e.fulfiller("p1")
	e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
	e.mustHandle(f, event("evt_2", stock.CheckoutCompleted, "cs_B", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
	e.mustHandle(f, event("evt_4", stock.CheckoutAsyncFailed, "cs_A", "", "a1"), stock.OutcomeReleaseSkipped)
	e.mustHandle(f, event("evt_5", stock.CheckoutAsyncSucceeded, "cs_B", "", "a1"), stock.OutcomeDoubleSale)
	if got := e.logs.lines(slog.LevelError, "evt_5"); len(got) != 1 || strings.Contains(got[0], "refund one buyer") || !strings.Contains(got[0], "give them the piece") {
		t.Errorf("cs_B paid for a piece kept for them: %q", got)
	}
}

// TestADoubleSaleFromBeforeWaitsFor: a row recorded before double sales
// named the sale they lost to does not make a later, unrelated failure
// withdraw the piece.
func TestADoubleSaleFromBeforeWaitsFor(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	old := e.clock().Add(-90 * 24 * time.Hour)
	for _, s := range []stock.Sale{
		{ArtworkID: "a1", SessionID: "cs_A", State: stock.SaleReleased, EventIDs: []string{"evt_o1"}, CreatedAt: old, UpdatedAt: old, Version: 3},
		{ArtworkID: "a1", SessionID: "cs_B", State: stock.SaleDoubleSale, EventIDs: []string{"evt_o2"}, CreatedAt: old, UpdatedAt: old, Version: 1},
	} {
		if err := e.journal.InsertSale(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	e.mustHandle(e.fulfiller("p1"), event("evt_fail", stock.CheckoutAsyncFailed, "cs_S", "", "a1"), stock.OutcomeReleased)
	if e.available("a1") != "true" {
		t.Fatal("a failure that took nothing withdrew the piece")
	}
}

// afterFirstRead runs after once, right after the first Artwork read
// returns: another process acts between this one's read and its next step.
type afterFirstRead struct {
	stock.Catalog
	fired atomic.Bool
	after func()
}

func (h *afterFirstRead) Artwork(ctx context.Context, id string) (stock.Artwork, error) {
	a, err := h.Catalog.Artwork(ctx, id)
	if h.after != nil && h.fired.CompareAndSwap(false, true) {
		h.after()
	}
	return a, err
}

// TestAClaimRacingAFailedHold: a buyer's claim that read Sanity while a
// hold that is failing still held the piece.
func TestAClaimRacingAFailedHold(t *testing.T) {
	held := event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1")
	failed := event("evt_2", stock.CheckoutAsyncFailed, "cs_A", "", "a1")

	t.Run("read before the release: the buyer gets the piece", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		p1 := e.fulfiller("p1")
		e.mustHandle(p1, held, stock.OutcomeHeld)
		c := &afterFirstRead{Catalog: e.catalog(token), after: func() { e.mustHandle(p1, failed, stock.OutcomeReleased) }}
		e.mustHandle(e.fulfillerWith("p2", c, e.journal), paid("evt_C", "cs_C", "a1"), stock.OutcomeSold)
		if e.available("a1") != "false" {
			t.Fatal("sold to cs_C and on sale")
		}
	})
	t.Run("read before the piece was kept for a waiting buyer: a double sale", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		p1 := e.fulfiller("p1")
		e.mustHandle(p1, held, stock.OutcomeHeld)
		// The release's record lost: the hold stays in the journal while
		// the piece is on sale, and a paying buyer waits for it.
		if _, err := e.handle(e.fulfillerWith("p1", e.catalog(token), crashJournal{e.journal, "FinishEvent"}), failed); err == nil {
			t.Fatal("the crash did not surface")
		}
		e.mustHandle(p1, paid("evt_B", "cs_B", "a1"), stock.OutcomeDoubleSale)
		c := &afterFirstRead{Catalog: e.catalog(token), after: func() { e.mustHandle(p1, failed, stock.OutcomeReleaseSkipped) }}
		e.mustHandle(e.fulfillerWith("p2", c, e.journal), paid("evt_D", "cs_D", "a1"), stock.OutcomeDoubleSale)
		if d := e.sale("a1", "cs_D"); d.State != stock.SaleDoubleSale {
			t.Fatalf("cs_D %+v: took the piece kept for cs_B", d)
		}
		if e.available("a1") != "false" {
			t.Fatal("on sale while cs_B waits")
		}
		if got := e.logs.lines(slog.LevelError, "evt_D"); len(got) != 1 {
			t.Errorf("cs_D's double sale not reported: %q", got)
		}
	})
	t.Run("two buyers wait, one's payment fails: no advice to offer it again", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, held, stock.OutcomeHeld)
		e.mustHandle(f, paid("evt_B", "cs_B", "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, failed, stock.OutcomeReleaseSkipped)
		e.mustHandle(f, event("evt_D", stock.CheckoutCompleted, "cs_D", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, event("evt_D2", stock.CheckoutAsyncFailed, "cs_D", "", "a1"), stock.OutcomeReleased)
		if got := e.logs.lines(slog.LevelWarn, "evt_D2"); len(got) != 0 {
			t.Errorf("cs_B paid and waits, yet: %q", got)
		}
	})
}

// TestAKeepHoldsAgainstLaterBuyers: once a failed hold keeps the piece for
// the buyers waiting for it, a buyer who comes after does not take it,
// even when the first of those buyers drops out or an editor opens a draft
// in the middle of it.
func TestAKeepHoldsAgainstLaterBuyers(t *testing.T) {
	held := event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1")
	failed := event("evt_2", stock.CheckoutAsyncFailed, "cs_A", "", "a1")
	// setup: cs_A held, its release written but its record lost (the hold
	// stays in the journal, the piece on sale), then cs_B pays: it waits.
	setup := func(t *testing.T) (*env, *stock.Fulfiller) {
		e := newEnv(t)
		e.artwork("a1")
		p1 := e.fulfiller("p1")
		e.mustHandle(p1, held, stock.OutcomeHeld)
		if _, err := e.handle(e.fulfillerWith("p1", e.catalog(token), crashJournal{e.journal, "FinishEvent"}), failed); err == nil {
			t.Fatal("the crash did not surface")
		}
		return e, p1
	}
	t.Run("the buyer the keep is named after drops out", func(t *testing.T) {
		e, p1 := setup(t)
		e.mustHandle(p1, event("evt_B", stock.CheckoutCompleted, "cs_B", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(p1, paid("evt_C", "cs_C", "a1"), stock.OutcomeDoubleSale)
		c := &afterFirstRead{Catalog: e.catalog(token), after: func() {
			e.mustHandle(p1, failed, stock.OutcomeReleaseSkipped) // kept, under cs_B's name
			e.mustHandle(p1, event("evt_B2", stock.CheckoutAsyncFailed, "cs_B", "", "a1"), stock.OutcomeReleased)
		}}
		e.mustHandle(e.fulfillerWith("p2", c, e.journal), paid("evt_D", "cs_D", "a1"), stock.OutcomeDoubleSale)
		if e.available("a1") != "false" {
			t.Fatal("on sale while cs_C waits")
		}
	})
	t.Run("the buyer the keep is named after drops out, one who came after it waits", func(t *testing.T) {
		e, p1 := setup(t)
		e.mustHandle(p1, event("evt_B", stock.CheckoutCompleted, "cs_B", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
		c := &afterFirstRead{Catalog: e.catalog(token), after: func() {
			e.mustHandle(p1, failed, stock.OutcomeReleaseSkipped)                  // kept, under cs_B's name
			e.mustHandle(p1, paid("evt_C", "cs_C", "a1"), stock.OutcomeDoubleSale) // waits for the keep
			e.mustHandle(p1, event("evt_B2", stock.CheckoutAsyncFailed, "cs_B", "", "a1"), stock.OutcomeReleased)
		}}
		e.mustHandle(e.fulfillerWith("p2", c, e.journal), paid("evt_D", "cs_D", "a1"), stock.OutcomeDoubleSale)
	})
	t.Run("an editor opens a draft while the piece is kept", func(t *testing.T) {
		e, p1 := setup(t)
		e.mustHandle(p1, paid("evt_B", "cs_B", "a1"), stock.OutcomeDoubleSale)
		opens := &afterFirstRead{Catalog: e.catalog(token), after: func() { e.artwork("drafts.a1") }}
		e.mustHandle(e.fulfillerWith("p1", opens, e.journal), failed, stock.OutcomeReleaseSkipped)
		if e.available("a1") != "false" || e.available("drafts.a1") != "false" {
			t.Fatalf("kept for cs_B, yet a1=%s, its draft=%s: publishing the draft re-offers it", e.available("a1"), e.available("drafts.a1"))
		}
	})
	t.Run("a later buyer finds the kept piece's draft on sale", func(t *testing.T) {
		e, p1 := setup(t)
		e.mustHandle(p1, paid("evt_B", "cs_B", "a1"), stock.OutcomeDoubleSale)
		opens := &afterFirstRead{Catalog: e.catalog(token), after: func() { e.artwork("drafts.a1") }}
		c := &afterFirstRead{Catalog: e.catalog(token), after: func() {
			e.mustHandle(e.fulfillerWith("p1", opens, e.journal), failed, stock.OutcomeReleaseSkipped)
		}}
		e.mustHandle(e.fulfillerWith("p2", c, e.journal), paid("evt_D", "cs_D", "a1"), stock.OutcomeDoubleSale)
	})
	t.Run("a later buyer whose payment is pending is not to be given the piece", func(t *testing.T) {
		e, p1 := setup(t)
		e.mustHandle(p1, paid("evt_B", "cs_B", "a1"), stock.OutcomeDoubleSale)
		c := &afterFirstRead{Catalog: e.catalog(token), after: func() { e.mustHandle(p1, failed, stock.OutcomeReleaseSkipped) }}
		e.mustHandle(e.fulfillerWith("p2", c, e.journal), event("evt_D", stock.CheckoutCompleted, "cs_D", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
		if got := e.logs.lines(slog.LevelError, "evt_D"); len(got) != 1 || !strings.Contains(got[0], "pending") {
			t.Errorf("cs_D has not paid: %q", got)
		}
	})
}

// TestAnOldDoubleSaleDoesNotSilenceANewOne: a refunded double sale of an
// earlier hold stays double_sale in the journal (soldout does not see
// refunds); it is no fellow of a buyer who waits for a later hold.
func TestAnOldDoubleSaleDoesNotSilenceANewOne(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	f := e.fulfiller("p1")
	e.mustHandle(f, event("evt_o1", stock.CheckoutCompleted, "cs_old", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
	e.mustHandle(f, paid("evt_o2", "cs_oldbuyer", "a1"), stock.OutcomeDoubleSale)
	e.mustHandle(f, event("evt_o3", stock.CheckoutAsyncFailed, "cs_old", "", "a1"), stock.OutcomeReleaseSkipped)
	e.artwork("a1", map[string]any{"isAvailable": true}) // refunded, offered again
	e.advance(30 * 24 * time.Hour)

	e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
	e.mustHandle(f, event("evt_2", stock.CheckoutCompleted, "cs_D", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
	e.mustHandle(f, event("evt_3", stock.CheckoutAsyncFailed, "cs_A", "", "a1"), stock.OutcomeReleaseSkipped)
	e.mustHandle(f, event("evt_4", stock.CheckoutAsyncFailed, "cs_D", "", "a1"), stock.OutcomeReleased)
	if got := e.logs.lines(slog.LevelWarn, "evt_4"); len(got) != 1 || !strings.Contains(got[0], "nobody holds") {
		t.Errorf("the piece is kept for nobody now, and nobody says so: %q", got)
	}
}

// TestADoubleSaleAgainstAPendingHold: the holder has not paid yet, so the
// buyer who did is not to be refunded yet.
func TestADoubleSaleAgainstAPendingHold(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	f := e.fulfiller("p1")
	e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
	e.mustHandle(f, paid("evt_2", "cs_B", "a1"), stock.OutcomeDoubleSale)
	if got := e.logs.lines(slog.LevelError, "evt_2"); len(got) != 1 || !strings.Contains(got[0], "refund nobody yet") {
		t.Errorf("%q", got)
	}
}

// TestFellowsOfAKeptPiece: buyers waiting for one failed hold are told
// apart from nobody, however they came to wait.
func TestFellowsOfAKeptPiece(t *testing.T) {
	// cs_A's release written, its record lost; cs_B (pending) and cs_D
	// (paid) check out; the redelivered failure keeps the piece under
	// cs_B's name; cs_C (pending) comes after the keep; cs_B drops out.
	setup := func(t *testing.T) (*env, *stock.Fulfiller) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		failed := event("evt_2", stock.CheckoutAsyncFailed, "cs_A", "", "a1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		if _, err := e.handle(e.fulfillerWith("p1", e.catalog(token), crashJournal{e.journal, "FinishEvent"}), failed); err == nil {
			t.Fatal("the crash did not surface")
		}
		e.mustHandle(f, event("evt_B", stock.CheckoutCompleted, "cs_B", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, paid("evt_D", "cs_D", "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, failed, stock.OutcomeReleaseSkipped)
		e.mustHandle(f, event("evt_C", stock.CheckoutCompleted, "cs_C", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, event("evt_B2", stock.CheckoutAsyncFailed, "cs_B", "", "a1"), stock.OutcomeReleased)
		return e, f
	}
	t.Run("cs_C's payment fails: cs_D still waits, no advice to offer it again", func(t *testing.T) {
		e, f := setup(t)
		e.mustHandle(f, event("evt_C2", stock.CheckoutAsyncFailed, "cs_C", "", "a1"), stock.OutcomeReleased)
		if got := e.logs.lines(slog.LevelWarn, "evt_C2"); len(got) != 0 {
			t.Errorf("%q", got)
		}
	})
	t.Run("cs_C's payment succeeds: cs_D paid too", func(t *testing.T) {
		e, f := setup(t)
		e.mustHandle(f, event("evt_C2", stock.CheckoutAsyncSucceeded, "cs_C", "", "a1"), stock.OutcomeDoubleSale)
		if got := e.logs.lines(slog.LevelError, "evt_C2"); len(got) != 1 || !strings.Contains(got[0], "give the piece to one of them") {
			t.Errorf("%q", got)
		}
	})
	t.Run("a buyer recorded before double sales named what they wait for", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		now := e.clock()
		if err := e.journal.InsertSale(t.Context(), stock.Sale{ArtworkID: "a1", SessionID: "cs_B", State: stock.SaleDoubleSale,
			Email: "cs_B@example.com", EventIDs: []string{"evt_B"}, CreatedAt: now, UpdatedAt: now, Version: 1}); err != nil {
			t.Fatal(err)
		}
		e.mustHandle(f, event("evt_2", stock.CheckoutAsyncFailed, "cs_A", "", "a1"), stock.OutcomeReleaseSkipped)
		e.mustHandle(f, paid("evt_C", "cs_C", "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, event("evt_B2", stock.CheckoutAsyncFailed, "cs_B", "", "a1"), stock.OutcomeReleased)
		if got := e.logs.lines(slog.LevelWarn, "evt_B2"); len(got) != 0 {
			t.Errorf("cs_C paid and waits, yet: %q", got)
		}
	})
}

// TestTwoReleasesAtOnceOfferThePieceAgain: a hold (cs_A) and the double sale
// waiting for it (cs_B) both fail, on two replicas at once. Each decision
// reads the other's row: cs_A's release keeps the piece while cs_B waits,
// cs_B's says nothing while cs_A holds. Done in either order, the piece is
// offered again (or the operator told to); interleaved, both used to commit
// on what they had read, and the piece stayed unavailable with nobody
// waiting and nothing said.
func TestTwoReleasesAtOnceOfferThePieceAgain(t *testing.T) {
	for _, holdFirst := range []bool{true, false} {
		name := "the double sale's release decides first"
		if holdFirst {
			name = "the hold's release decides first"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			p1, p2 := e.fulfiller("p1"), e.fulfiller("p2")
			e.mustHandle(p1, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
			e.mustHandle(p2, event("evt_2", stock.CheckoutCompleted, "cs_B", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
			failA := event("evt_3", stock.CheckoutAsyncFailed, "cs_A", "", "a1")
			failB := event("evt_4", stock.CheckoutAsyncFailed, "cs_B", "", "a1")
			var fired atomic.Bool
			inside := func(f *stock.Fulfiller, ev stock.Event) func() {
				return func() {
					if fired.CompareAndSwap(false, true) {
						if _, err := e.handle(f, ev); err != nil {
							t.Errorf("release of %s: %v", ev.Session.ID, err)
						}
					}
				}
			}
			// The other release runs to its end between the first one's
			// journal read and its record: during the hold release's Sanity
			// read, or before the double sale's record (it reads no Sanity).
			var err error
			if holdFirst {
				run := inside(p2, failB)
				e.setHandler(e.around(func(r *http.Request) {
					if !sanitytest.IsMutate(r) {
						run()
					}
				}, nil))
				_, err = e.handle(p1, failA)
				e.setHandler(nil)
			} else {
				j := &beforeFinish{Journal: e.journal, run: inside(p1, failA)}
				_, err = e.handle(e.fulfillerWith("p2", e.catalog(token), j), failB)
			}
			if err != nil {
				t.Errorf("first release: %v", err)
			}
			if !fired.Load() {
				t.Fatal("the second release did not run inside the first")
			}
			for _, s := range []string{"cs_A", "cs_B"} {
				if got := e.sale("a1", s).State; got != stock.SaleReleased {
					t.Errorf("sale %s: %s, want released", s, got)
				}
			}
			warned := len(e.logs.lines(slog.LevelWarn, "nobody holds this artwork any more"))
			if e.available("a1") != "true" && warned == 0 {
				t.Fatal("both payments failed and nobody waits, yet the piece stays unavailable and nobody was told to offer it again")
			}
			// The release that recorded second decided again, and said so:
			// what it had logged for its first decision no longer holds.
			if len(e.logs.lines(slog.LevelInfo, "deciding again")) == 0 {
				t.Error("a decision superseded without a word in the log")
			}
		})
	}
}

// beforeFinish runs run once, just before the first FinishEvent: between a
// round's decision and its record.
type beforeFinish struct {
	stock.Journal
	run func()
}

func (j *beforeFinish) FinishEvent(ctx context.Context, eventID string, outcome stock.Outcome, detail, lastError string, at time.Time, settled ...stock.Sale) error {
	j.run()
	return j.Journal.FinishEvent(ctx, eventID, outcome, detail, lastError, at, settled...)
}

// A hold whose artwork was deleted from Sanity meanwhile: the failure is
// recorded, and the operator hears that there was nothing to give back.
func TestReleaseOfADeletedArtworkSaysSo(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	f := e.fulfiller("p1")
	e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
	e.lake.Delete("a1")
	e.mustHandle(f, event("evt_2", stock.CheckoutAsyncFailed, "cs_A", "", "a1"), stock.OutcomeReleased)
	if got := e.sale("a1", "cs_A").State; got != stock.SaleReleased {
		t.Errorf("sale: %s, want released", got)
	}
	if len(e.logs.lines(slog.LevelWarn, "no longer exists in Sanity")) != 1 {
		t.Error("the release of a deleted artwork is not logged")
	}
}
