package stock_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
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

// loseClaims stands for a journal that groups commits: ClaimSale answers
// once the row is written, and the row's batch may then fail to commit.
// The first n claims are lost that way: answered, never stored.
type loseClaims struct {
	stock.Journal
	n atomic.Int32
}

func (l *loseClaims) ClaimSale(ctx context.Context, s stock.Sale) error {
	if l.n.Add(-1) >= 0 {
		return nil
	}
	return l.Journal.ClaimSale(ctx, s)
}

// TestALostClaim: Sanity was written for a claim whose row never reached
// the disk. The write names its sale, so the sale is not mistaken for
// somebody else's: the event claims it again, and another buyer meanwhile
// is a double sale, never a second sale.
func TestALostClaim(t *testing.T) {
	t.Run("found by the same delivery", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		j := &loseClaims{Journal: e.journal}
		j.n.Store(1)
		e.mustHandle(e.fulfillerWith("p1", e.catalog(token), j), paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
		if s := e.sale("a1", "cs_1"); s.State != stock.SaleSold || s.AppliedRev != e.rev("a1") {
			t.Fatalf("sale %+v", s)
		}
		if e.flips("a1") != 1 {
			t.Errorf("%d writes of a1, want 1", e.flips("a1"))
		}
	})
	t.Run("another buyer before the redelivery", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		j := &loseClaims{Journal: crashJournal{e.journal, "FinishEvent"}}
		j.n.Store(1)
		sale := paid("evt_1", "cs_A", "a1")
		if _, err := e.handle(e.fulfillerWith("p1", e.catalog(token), j), sale); err == nil {
			t.Fatal("the crash did not surface")
		}
		if e.available("a1") != "false" {
			t.Fatal("Sanity was not written before the crash")
		}
		f := e.fulfiller("p1")
		e.mustHandle(f, paid("evt_2", "cs_B", "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, sale, stock.OutcomeSold)
		if a, b := e.sale("a1", "cs_A"), e.sale("a1", "cs_B"); a.State != stock.SaleSold || b.State != stock.SaleDoubleSale {
			t.Errorf("sales %+v / %+v", a, b)
		}
	})
}
