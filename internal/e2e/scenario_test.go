package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"soldout/internal/journal"
	"soldout/internal/stock"
)

// fate is what a scenario does to an artwork.
type fate int

const (
	untouched fate = iota // nobody pays (abandoned sessions at most)
	sold                  // one buyer pays
	competing             // two buyers pay at the same moment: one sale, one double sale
	delayed               // a delayed payment succeeds: held, then sold
)

type artwork struct {
	id       string
	fate     fate
	draft    bool     // an editor has a draft open
	sessions []string // the paying sessions
}

// eventKind says which outcomes the journal may record for an event.
type eventKind int

const (
	kindIgnored          eventKind = iota // expired session
	kindNoArtwork                         // a paid session naming no artwork: a person must look
	kindPaid                              // paid completion: sold for the winner, double_sale for the other
	kindDelayedCompleted                  // completion with payment_status unpaid
	kindDelayedSucceeded                  // async_payment_succeeded
)

// scenario is a seeded set of artworks, the events that Stripe would send
// about them, and the jobs that deliver them: shuffled, with duplicates.
type scenario struct {
	artworks []*artwork
	events   []*event
	kinds    map[string]eventKind
	jobs     []job
}

type scenarioSize struct {
	untouched, sold, competing, delayed int
	abandoned                           int     // expired sessions, on any artwork
	noMetadata                          int     // paid sessions naming no artwork
	second                              float64 // share of paying sessions for which Stripe sends a second, distinct event
	duplicate                           float64 // share of events delivered again
}

// newScenario needs at least two replicas: pairs go to two different ones.
func newScenario(seed uint64, replicas int, size scenarioSize) *scenario {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	s := &scenario{kinds: map[string]eventKind{}}
	for f, n := range map[fate]int{untouched: size.untouched, sold: size.sold, competing: size.competing, delayed: size.delayed} {
		for range n {
			s.artworks = append(s.artworks, &artwork{fate: f})
		}
	}
	// Map order is random: sort by fate, then number, for a seeded layout.
	slices.SortStableFunc(s.artworks, func(a, b *artwork) int { return int(a.fate) - int(b.fate) })
	for i, a := range s.artworks {
		a.id, a.draft = fmt.Sprintf("artwork-%03d", i), i%4 == 0
	}

	newEv := func(kind eventKind, typ, payment, session, artwork string) *event {
		ev := newEvent(fmt.Sprintf("evt_%04d", len(s.events)+1), typ, payment, session, artwork)
		s.events = append(s.events, ev)
		s.kinds[ev.id] = kind
		return ev
	}
	single := func(ev *event) job { return job{{ev, rng.IntN(replicas)}} }
	pair := func(a, b *event) job {
		first := rng.IntN(replicas)
		return job{{a, first}, {b, (first + 1 + rng.IntN(replicas-1)) % replicas}}
	}
	var jobs []job
	paid := func(a *artwork, session string) *event {
		a.sessions = append(a.sessions, session)
		ev := newEv(kindPaid, stock.CheckoutCompleted, stock.PaymentPaid, session, a.id)
		if rng.Float64() < size.second {
			jobs = append(jobs, single(newEv(kindPaid, stock.CheckoutCompleted, stock.PaymentPaid, session, a.id)))
		}
		return ev
	}
	for _, a := range s.artworks {
		switch a.fate {
		case sold:
			jobs = append(jobs, single(paid(a, "cs_"+a.id+"_a")))
		case competing:
			jobs = append(jobs, pair(paid(a, "cs_"+a.id+"_a"), paid(a, "cs_"+a.id+"_b")))
		case delayed:
			session := "cs_" + a.id + "_a"
			a.sessions = append(a.sessions, session)
			jobs = append(jobs,
				single(newEv(kindDelayedCompleted, stock.CheckoutCompleted, stock.PaymentUnpaid, session, a.id)),
				single(newEv(kindDelayedSucceeded, stock.CheckoutAsyncSucceeded, "", session, a.id)))
		}
	}
	for i := range size.abandoned {
		a := s.artworks[rng.IntN(len(s.artworks))]
		jobs = append(jobs, single(newEv(kindIgnored, stock.CheckoutExpired, "", fmt.Sprintf("cs_abandoned_%d", i), a.id)))
	}
	for i := range size.noMetadata {
		jobs = append(jobs, single(newEv(kindNoArtwork, stock.CheckoutCompleted, stock.PaymentPaid, fmt.Sprintf("cs_nometa_%d", i), "")))
	}
	for _, ev := range s.events {
		switch r := rng.Float64(); {
		case r < size.duplicate/2:
			jobs = append(jobs, pair(ev, ev)) // to two replicas at once
		case r < size.duplicate:
			jobs = append(jobs, single(ev))
		}
	}
	rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	s.jobs = jobs
	return s
}

func (s *scenario) put(f *fakeSanity) {
	ids := make([]string, len(s.artworks))
	drafts := map[string]bool{}
	for i, a := range s.artworks {
		ids[i], drafts[a.id] = a.id, a.draft
	}
	f.putArtworks(ids, drafts)
}

func (s *scenario) deliveries() int {
	n := 0
	for _, j := range s.jobs {
		n += len(j)
	}
	return n
}

// checkOptions loosen what a stopped or killed replica may blur.
type checkOptions struct {
	// soldAnswerMayBeLost: a replica died after applying a sale, before its
	// answer reached the driver; the redelivery then answers duplicate.
	soldAnswerMayBeLost bool
}

// check asserts the invariants of a finished scenario, from the three
// points of view: the driver (Stripe), the fake Sanity and the journal.
func (s *scenario) check(t *testing.T, c *cluster, d *driver, opt checkOptions) {
	t.Helper()
	answers, gaveUp := d.snapshot()
	if len(gaveUp) > 0 {
		t.Errorf("%d deliveries never got a 2xx, e.g. %v", len(gaveUp), gaveUp[:min(5, len(gaveUp))])
	}

	// Stripe: every event answered 2xx eventually, nothing refused as
	// invalid, every answer within the budget.
	okOutcomes := map[string][]stock.Outcome{} // event → outcomes of its 2xx answers
	for _, a := range answers {
		switch {
		case a.ok():
			okOutcomes[a.event] = append(okOutcomes[a.event], a.outcome)
		case a.status >= 400 && a.status < 500:
			t.Errorf("event %s: %d %s from replica %d: a request Stripe would send was refused", a.event, a.status, a.code, a.slot)
		case a.status >= 500 && a.status != 503:
			t.Errorf("event %s: %d %s from replica %d: only 503 is expected from a sound setup", a.event, a.status, a.code, a.slot)
		}
		if a.status != 0 && a.took > testBudget+budgetSlack {
			t.Errorf("event %s: answered after %v, over the %v budget", a.event, a.took, testBudget)
		}
	}
	for _, ev := range s.events {
		if len(okOutcomes[ev.id]) == 0 {
			t.Errorf("event %s (%s %s) never answered 2xx", ev.id, ev.typ, ev.session)
		}
	}

	ctx := context.Background()
	db := c.journal()
	flips := c.sanity.flips()
	winners := map[string]bool{} // sessions that own their artwork
	for _, a := range s.artworks {
		checkArtwork(t, c, db, a, flips, winners)
	}

	// The journal: every event recorded once, with a final outcome that fits
	// what it was; and no answer contradicting the journal.
	recs, err := db.ListEvents(ctx, journal.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(s.events) {
		t.Errorf("journal holds %d events, the scenario sent %d", len(recs), len(s.events))
	}
	soldAnswers := map[string]int{} // artwork → 2xx "sold" answers
	for _, ev := range s.events {
		rec, err := db.Event(ctx, ev.id)
		if err != nil {
			t.Errorf("event %s: %v", ev.id, err)
			continue
		}
		allowed := s.allowed(ev, winners)
		if !rec.Outcome.Final() || !slices.Contains(allowed, rec.Outcome) {
			t.Errorf("event %s (%s, session %s): journal outcome %q, want one of %v", ev.id, ev.typ, ev.session, rec.Outcome, allowed)
		}
		for _, o := range okOutcomes[ev.id] {
			if o != stock.OutcomeDuplicate && !slices.Contains(allowed, o) {
				t.Errorf("event %s (session %s): answered 2xx %q, want one of %v or duplicate", ev.id, ev.session, o, allowed)
			}
			if o == stock.OutcomeSold {
				soldAnswers[ev.artwork]++
			}
			// What Stripe was told is what the audit trail says: a replica
			// that lost the race later must not overwrite it.
			if o != stock.OutcomeDuplicate && rec.Outcome != o {
				t.Errorf("event %s: answered 2xx %q, but the journal records %q", ev.id, o, rec.Outcome)
			}
		}
	}
	for _, a := range s.artworks {
		want := 1
		if a.fate == untouched {
			want = 0
		}
		if n := soldAnswers[a.id]; n > want || n < want && !opt.soldAnswerMayBeLost {
			t.Errorf("%s: %d 2xx answers said sold, want %d", a.id, n, want)
		}
	}
}

// budgetSlack is what an answer may take beyond the budget as the driver
// measures it: soldout answers within the budget, but the driver's clock also
// counts connecting and scheduling on a busy machine.
const budgetSlack = time.Second

// checkArtwork asserts one artwork's state in Sanity and in the journal,
// and notes in winners the session that owns it.
func checkArtwork(t *testing.T, c *cluster, db *journal.DB, a *artwork, flips map[string]int, winners map[string]bool) {
	t.Helper()
	lake := c.sanity.lake
	ids := []string{a.id}
	if a.draft {
		ids = append(ids, "drafts."+a.id)
	}
	// Sanity: sold pieces unavailable in every variant, untouched ones as
	// they were; one write per sold piece, the one that flipped it.
	writes := 1
	if a.fate == untouched {
		writes = 0
	}
	for _, id := range ids {
		doc, ok := lake.Get(id)
		if !ok {
			t.Errorf("%s: missing from the dataset", id)
			continue
		}
		if available(doc) != (a.fate == untouched) {
			t.Errorf("%s (%s): isAvailable %v", id, describe(a.fate), available(doc))
		}
		if flips[id] != writes {
			t.Errorf("%s (%s): made unavailable by %d writes, want %d", id, describe(a.fate), flips[id], writes)
		}
	}
	if n := lake.Writes(a.id); n != writes {
		t.Errorf("%s (%s): %d Sanity writes, want %d", a.id, describe(a.fate), n, writes)
	}

	// The journal: one applied sale for the winner, a double sale for the
	// other buyer, nothing for untouched pieces.
	sales, err := db.Sales(context.Background(), a.id)
	if err != nil {
		t.Fatal(err)
	}
	wantRows := len(a.sessions)
	if len(sales) != wantRows {
		t.Errorf("%s (%s): %d sale rows, want %d: %+v", a.id, describe(a.fate), len(sales), wantRows, sales)
		return
	}
	var active, doubles int
	for _, sale := range sales {
		if !slices.Contains(a.sessions, sale.SessionID) {
			t.Errorf("%s: sale row of unexpected session %s", a.id, sale.SessionID)
		}
		switch sale.State {
		case stock.SaleSold:
			active++
			winners[sale.SessionID] = true
			if sale.AppliedRev == "" || sale.LeaseOwner != "" {
				t.Errorf("%s: sale of %s not settled: applied_rev %q, lease %q", a.id, sale.SessionID, sale.AppliedRev, sale.LeaseOwner)
			}
			if doc, _ := lake.Get(a.id); doc["_rev"] != sale.AppliedRev {
				t.Errorf("%s: _rev %v, but the journal says soldout's write was %s", a.id, doc["_rev"], sale.AppliedRev)
			}
		case stock.SaleDoubleSale:
			doubles++
		default:
			t.Errorf("%s: sale of %s in state %s", a.id, sale.SessionID, sale.State)
		}
	}
	if wantRows > 0 && (active != 1 || doubles != wantRows-1) {
		t.Errorf("%s (%s): %d sold and %d double sales, want 1 and %d", a.id, describe(a.fate), active, doubles, wantRows-1)
	}
}

// allowed lists the journal outcomes that fit ev, once winners are known.
func (s *scenario) allowed(ev *event, winners map[string]bool) []stock.Outcome {
	switch s.kinds[ev.id] {
	case kindPaid:
		if winners[ev.session] {
			return []stock.Outcome{stock.OutcomeSold, stock.OutcomeDuplicate}
		}
		return []stock.Outcome{stock.OutcomeDoubleSale}
	case kindDelayedCompleted:
		// Held, or (after the success overtook it) the sale it joined.
		return []stock.Outcome{stock.OutcomeHeld, stock.OutcomeSold, stock.OutcomeDuplicate}
	case kindDelayedSucceeded:
		return []stock.Outcome{stock.OutcomeSold, stock.OutcomeDuplicate}
	case kindNoArtwork:
		return []stock.Outcome{stock.OutcomeInvalidMetadata}
	}
	return []stock.Outcome{stock.OutcomeIgnored}
}

func describe(f fate) string {
	return [...]string{"untouched", "sold", "two buyers", "delayed payment"}[f]
}
