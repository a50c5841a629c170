package stock_test

import (
	"context"
	"testing"

	"soldout/internal/stock"
)

func TestReapply(t *testing.T) {
	tests := []struct {
		name string
		// after the first event was handled, before Reapply
		change func(e *env)
		want   stock.Outcome
		// isAvailable of a1 and its draft afterwards
		published, draft string
		writes           int // Sanity transactions made by Reapply
	}{
		{"nothing changed", func(*env) {}, stock.OutcomeDuplicate, "false", "false", 0},
		{"editor set it back on sale", func(e *env) { e.artwork("a1") }, stock.OutcomeSold, "false", "false", 1},
		{"stale draft published", func(e *env) { e.artwork("a1"); e.artwork("drafts.a1") }, stock.OutcomeSold, "false", "false", 1},
		{"only a draft offers it", func(e *env) { e.artwork("drafts.a1") }, stock.OutcomeSold, "false", "false", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			e.artwork("drafts.a1")
			f := e.fulfiller("p1")
			e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
			tt.change(e)
			before := len(e.lake.Transactions())
			rerun := paid("replay:evt_1:1", "cs_1", "a1")
			res, err := f.Reapply(context.Background(), rerun)
			if err != nil || res.Outcome != tt.want {
				t.Fatalf("Reapply = %+v, %v; want %s", res, err, tt.want)
			}
			if e.available("a1") != tt.published || e.available("drafts.a1") != tt.draft {
				t.Fatalf("a1=%s draft=%s", e.available("a1"), e.available("drafts.a1"))
			}
			if n := len(e.lake.Transactions()) - before; n != tt.writes {
				t.Fatalf("%d Sanity writes, want %d", n, tt.writes)
			}
			if s := e.sale("a1", "cs_1"); s.State != stock.SaleSold || s.AppliedRev == "" {
				t.Fatalf("sale %+v", s)
			}
			// The original event keeps its outcome; the rerun has its own.
			if rec, _ := e.journal.Event(context.Background(), "evt_1"); rec.Outcome != stock.OutcomeSold {
				t.Fatalf("original now %s", rec.Outcome)
			}
			if rec, _ := e.journal.Event(context.Background(), rerun.ID); rec.Outcome != tt.want {
				t.Fatalf("rerun journaled as %s", rec.Outcome)
			}
		})
	}
}

func TestReapplyLeavesOtherSessionsAndReleases(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	f := e.fulfiller("p1")
	e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
	e.mustHandle(f, paid("evt_2", "cs_2", "a1"), stock.OutcomeDoubleSale)
	e.artwork("a1") // back on sale
	// The double sale's session does not get the piece by being reapplied.
	res, err := f.Reapply(context.Background(), paid("replay:evt_2:1", "cs_2", "a1"))
	if err != nil || res.Outcome != stock.OutcomeDoubleSale || e.available("a1") != "true" {
		t.Fatalf("%+v, %v, a1=%s", res, err, e.available("a1"))
	}
	// A held piece whose payment failed is released, not taken again.
	e.artwork("a2")
	e.mustHandle(f, event("evt_3", stock.CheckoutCompleted, "cs_3", stock.PaymentUnpaid, "a2"), stock.OutcomeHeld)
	res, err = f.Reapply(context.Background(), event("replay:evt_4", stock.CheckoutAsyncFailed, "cs_3", "", "a2"))
	if err != nil || res.Outcome != stock.OutcomeReleased || e.available("a2") != "true" {
		t.Fatalf("%+v, %v, a2=%s", res, err, e.available("a2"))
	}
}
