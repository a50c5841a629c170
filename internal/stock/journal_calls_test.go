package stock_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"soldout/internal/stock"
)

// callLog records the journal writes, and the reads of sales, a Fulfiller
// makes.
type callLog struct {
	stock.Journal
	mu     sync.Mutex
	writes []string
}

func (w *callLog) add(s string) {
	w.mu.Lock()
	w.writes = append(w.writes, s)
	w.mu.Unlock()
}

func (w *callLog) RecordDelivery(ctx context.Context, ev stock.Event, at time.Time) (stock.EventRecord, error) {
	w.add("RecordDelivery")
	return w.Journal.RecordDelivery(ctx, ev, at)
}

func (w *callLog) Sales(ctx context.Context, artworkID string) ([]stock.Sale, error) {
	w.add("Sales")
	return w.Journal.Sales(ctx, artworkID)
}

func (w *callLog) InsertSale(ctx context.Context, s stock.Sale) error {
	w.add("InsertSale")
	return w.Journal.InsertSale(ctx, s)
}

func (w *callLog) InsertDoubleSale(ctx context.Context, s stock.Sale, winner *stock.Sale) error {
	w.add("InsertDoubleSale")
	return w.Journal.InsertDoubleSale(ctx, s, winner)
}

func (w *callLog) UpdateSale(ctx context.Context, s stock.Sale) (stock.Sale, error) {
	w.add("UpdateSale")
	return w.Journal.UpdateSale(ctx, s)
}

func (w *callLog) FinishEvent(ctx context.Context, id string, o stock.Outcome, d, le string, at time.Time, settled ...stock.Sale) error {
	w.add(fmt.Sprintf("FinishEvent+%d", len(settled)))
	return w.Journal.FinishEvent(ctx, id, o, d, le, at, settled...)
}

// TestASaleCostsThreeJournalWritesAndNoRead: the delivery, the claim (which
// must be on disk before Sanity is written), and the outcome with the sale
// marked applied, in one transaction. A first delivery does not read the artwork's
// sales first; where that guess is wrong, the journal's answer and a second
// round still reach the right outcome.
func TestASaleCostsThreeJournalWritesAndNoRead(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	e.artwork("a2")
	e.artwork("a3")
	j := &callLog{Journal: e.journal}
	f := e.fulfillerWith("p1", e.catalog(token), j)
	calls := func() string {
		defer func() { j.writes = nil }()
		return strings.Join(j.writes, " ")
	}
	e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
	if got := calls(); got != "RecordDelivery InsertSale FinishEvent+1" {
		t.Errorf("calls: %s", got)
	}
	if s := e.sale("a1", "cs_1"); s.AppliedRev != e.rev("a1") || s.LeaseOwner != "" {
		t.Errorf("sale not marked applied: %+v", s)
	}
	// a1 is taken: Sanity says unavailable, the journal says by whom.
	e.mustHandle(f, paid("evt_2", "cs_2", "a1", "a2"), stock.OutcomeDoubleSale)
	if got := calls(); got != "RecordDelivery Sales Sales InsertDoubleSale InsertSale FinishEvent+1" {
		t.Errorf("cart calls: %s", got)
	}
	// A redelivery reads before it decides.
	e.mustHandle(f, paid("evt_3", "cs_3", "a3"), stock.OutcomeSold)
	calls()
	e.mustHandle(f, paid("evt_3", "cs_3", "a3"), stock.OutcomeDuplicate)
	if got := calls(); got != "RecordDelivery" {
		t.Errorf("redelivery of a finished event: %s", got)
	}
}

// TestFirstDeliveryGuessesWrong: a first delivery that meets a row it did
// not read decides from it, as if it had read it. (The payment failure that
// overtakes its completion is in TestDelayedPayments.)
func TestFirstDeliveryGuessesWrong(t *testing.T) {
	t.Run("another process claimed the piece and has not written Sanity yet", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		now := time.Now()
		err := e.journal.InsertSale(context.Background(), stock.Sale{ArtworkID: "a1", SessionID: "cs_1", State: stock.SaleSold,
			EventIDs: []string{"evt_1"}, LeaseOwner: "p2", LeaseUntil: now.Add(time.Minute), CreatedAt: now, UpdatedAt: now, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		e.mustHandle(e.fulfiller("p1"), paid("evt_2", "cs_2", "a1"), stock.OutcomeDoubleSale)
		if e.available("a1") != "true" {
			t.Error("Sanity written for the buyer who lost")
		}
	})
	t.Run("the piece was sold, then deleted from Sanity", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
		e.lake.Delete("a1")
		// Not "the artwork does not exist": the journal knows who has it.
		e.mustHandle(f, paid("evt_2", "cs_2", "a1"), stock.OutcomeDoubleSale)
	})
}
