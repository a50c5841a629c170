package reconcile_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"soldout/internal/journal"
	"soldout/internal/reconcile"
	"soldout/internal/sanity"
	"soldout/internal/sanity/memlake"
	"soldout/internal/stock"
	"soldout/internal/stripeapi"
	"soldout/internal/stripeapi/stripetest"
	"soldout/internal/stripehook"
)

// shop is Stripe (the stateful fake), the journal (real SQLite), Sanity (an
// in-memory dataset behind real HTTP) and the pipeline that joins them.
type shop struct {
	t         *testing.T
	stripe    *stripetest.Server
	lake      *memlake.Lake
	journal   *journal.DB
	fulfiller *stock.Fulfiller
	r         *reconcile.Reconciler
	now       time.Time
}

func newShop(t *testing.T) *shop {
	t.Helper()
	s := &shop{t: t, stripe: stripetest.New(), lake: memlake.New("production", "tok"), now: time.Now().UTC().Truncate(time.Second)}
	t.Cleanup(s.stripe.Close)
	s.stripe.SetClock(func() time.Time { return s.now })
	lakeSrv := httptest.NewServer(s.lake)
	t.Cleanup(lakeSrv.Close)
	catalog, err := sanity.New(sanity.Config{ProjectID: "test", Dataset: "production", Token: "tok", Host: lakeSrv.URL, MutationsPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if s.journal, err = journal.Open(context.Background(), filepath.Join(t.TempDir(), "journal.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.journal.Close() })
	sc, err := stripeapi.New(stripeapi.Config{SecretKey: stripetest.SecretKey, APIBase: s.stripe.URL()})
	if err != nil {
		t.Fatal(err)
	}
	s.fulfiller = &stock.Fulfiller{Catalog: catalog, Journal: s.journal, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Owner: "test"}
	s.r = &reconcile.Reconciler{Stripe: sc, Journal: s.journal, Catalog: catalog, Fulfiller: s.fulfiller, Budget: 5 * time.Second,
		Now: func() time.Time { return s.now }}
	return s
}

func (s *shop) artwork(id string, available bool) {
	s.lake.Put(map[string]any{"_id": id, "_type": "artwork", "isAvailable": available})
}

// session stores a complete session in Stripe, created a minute ago.
func (s *shop) session(id, payment string, metadata map[string]string) {
	s.stripe.Put(stripetest.Session{ID: id, Status: stripetest.StatusComplete, PaymentStatus: payment, Email: id + "@example.com",
		AmountTotal: 120000, Currency: "eur", Metadata: metadata, Created: s.now.Add(-time.Minute)})
}

// deliver runs a webhook event through the pipeline, as serve would.
func (s *shop) deliver(id, typ, session, payment string, artworks ...string) {
	s.t.Helper()
	ev, err := stripehook.Decode(stripehook.Sample{EventID: id, Type: typ, SessionID: session, PaymentStatus: payment,
		ArtworkIDs: artworks, Email: session + "@example.com", AmountTotal: 120000}.JSON())
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.fulfiller.Handle(context.Background(), ev); err != nil {
		s.t.Fatalf("%s: %v", id, err)
	}
}

func (s *shop) check() reconcile.Report {
	s.t.Helper()
	rep, err := s.r.Check(context.Background(), s.now.Add(-72*time.Hour), s.now)
	if err != nil {
		s.t.Fatal(err)
	}
	return rep
}

// kinds renders findings as "session/artwork=kind" lines, sorted.
func kinds(fs []reconcile.Finding) string {
	var out []string
	for _, f := range fs {
		line := f.Session.ID + "/" + f.ArtworkID + "=" + string(f.Kind)
		if f.Fixable() {
			line += " (fixable)"
		}
		out = append(out, line)
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func (s *shop) available(id string) any {
	d, _ := s.lake.Get(id)
	return d["isAvailable"]
}

func (s *shop) saleState(artwork, session string) stock.SaleState {
	sales, err := s.journal.Sales(context.Background(), artwork)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, x := range sales {
		if x.SessionID == session {
			return x.State
		}
	}
	return ""
}

func meta(id string) map[string]string { return map[string]string{"artworkId": id} }

// paid puts a paid session of the artworks in Stripe and delivers its
// completion as event evt.
func (s *shop) paid(evt, session string, artworks ...string) {
	s.t.Helper()
	s.session(session, stripetest.PaymentPaid, map[string]string{"artworkIds": strings.Join(artworks, ",")})
	s.deliver(evt, stock.CheckoutCompleted, session, stripetest.PaymentPaid, artworks...)
}

func TestCheckFindsEveryKindAndApplyFixesWhatItCan(t *testing.T) {
	s := newShop(t)
	ctx := context.Background()
	paid, unpaid := stripetest.PaymentPaid, stripetest.PaymentUnpaid

	// Consistent: sold through the webhook.
	s.artwork("ok", true)
	s.session("cs_ok", paid, meta("ok"))
	s.deliver("evt_ok", stock.CheckoutCompleted, "cs_ok", paid, "ok")
	// Missing: the webhook never came.
	s.artwork("lost", true)
	s.session("cs_lost", paid, meta("lost"))
	// A cart whose webhook never came: one event fixes both pieces.
	s.artwork("c1", true)
	s.artwork("c2", true)
	s.session("cs_cart", paid, map[string]string{"artworkIds": "c1, c2"})
	// Unapplied: sold, then an editor set it back on sale.
	s.artwork("drift", true)
	s.session("cs_drift", paid, meta("drift"))
	s.deliver("evt_drift", stock.CheckoutCompleted, "cs_drift", paid, "drift")
	s.artwork("drift", true)
	// Unapplied: sold, then a draft offering it for sale appeared.
	s.artwork("drafty", true)
	s.session("cs_drafty", paid, meta("drafty"))
	s.deliver("evt_drafty", stock.CheckoutCompleted, "cs_drafty", paid, "drafty")
	s.artwork("drafts.drafty", true)
	// Unapplied: claimed, then the process died before writing to Sanity;
	// and the same, but a process is writing it right now (no finding).
	s.artwork("crashed", true)
	s.artwork("busy", true)
	s.session("cs_crashed", paid, meta("crashed"))
	s.session("cs_busy", paid, meta("busy"))
	for _, x := range []struct {
		artwork, session string
		until            time.Time
	}{{"crashed", "cs_crashed", s.now.Add(-time.Minute)}, {"busy", "cs_busy", time.Now().Add(time.Hour)}} {
		if err := s.journal.InsertSale(ctx, stock.Sale{ArtworkID: x.artwork, SessionID: x.session, State: stock.SaleSold,
			LeaseOwner: "dead", LeaseUntil: x.until, Version: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// Held, and Stripe has the money: async_payment_succeeded was missed.
	s.artwork("sepa", true)
	s.session("cs_sepa", paid, meta("sepa"))
	s.deliver("evt_sepa", stock.CheckoutCompleted, "cs_sepa", unpaid, "sepa")
	// Held, payment still on its way: nothing to report.
	s.artwork("pending", true)
	s.session("cs_pending", unpaid, meta("pending"))
	s.deliver("evt_pending", stock.CheckoutCompleted, "cs_pending", unpaid, "pending")
	// Held, the failure arrived but was never applied (a crash).
	s.artwork("bounced", true)
	s.session("cs_bounced", unpaid, meta("bounced"))
	s.deliver("evt_bounced_1", stock.CheckoutCompleted, "cs_bounced", unpaid, "bounced")
	failure, _ := stripehook.Decode(stripehook.Sample{EventID: "evt_bounced_2", Type: stock.CheckoutAsyncFailed, SessionID: "cs_bounced", ArtworkIDs: []string{"bounced"}}.JSON())
	if _, err := s.journal.RecordDelivery(ctx, failure, s.now); err != nil {
		t.Fatal(err)
	}
	// Released after a failed payment: consistent.
	s.artwork("freed", true)
	s.session("cs_freed", unpaid, meta("freed"))
	s.deliver("evt_freed_1", stock.CheckoutCompleted, "cs_freed", unpaid, "freed")
	s.deliver("evt_freed_2", stock.CheckoutAsyncFailed, "cs_freed", "", "freed")
	// A second buyer of "ok" whose webhook never came.
	s.session("cs_second", paid, meta("ok"))
	// Paid for a piece already marked unavailable by hand.
	s.artwork("byhand", false)
	s.session("cs_byhand", paid, meta("byhand"))
	// Paid for a piece that is not in the dataset, and bad metadata.
	s.session("cs_ghost", paid, meta("ghost"))
	s.session("cs_bad", paid, meta("drafts.ok"))
	// Skipped: no metadata, an open session, one outside the window.
	s.session("cs_plain", paid, nil)
	s.stripe.Put(stripetest.Session{ID: "cs_open", Metadata: meta("lost")})
	s.stripe.Put(stripetest.Session{ID: "cs_old", Status: stripetest.StatusComplete, PaymentStatus: paid, Metadata: meta("lost"), Created: s.now.Add(-100 * time.Hour)})

	writes := len(s.lake.Transactions())
	events, _ := s.journal.ListEvents(ctx, journal.EventFilter{})
	rep := s.check()
	want := `cs_bad/drafts.ok=invalid_metadata
cs_bounced/bounced=held_payment_failed (fixable)
cs_byhand/byhand=unrecorded (fixable)
cs_cart/c1=missing (fixable)
cs_cart/c2=missing (fixable)
cs_crashed/crashed=unapplied (fixable)
cs_drafty/drafty=unapplied (fixable)
cs_drift/drift=unapplied (fixable)
cs_ghost/ghost=unknown_artwork
cs_lost/lost=missing (fixable)
cs_second/ok=double_sale (fixable)
cs_sepa/sepa=held_paid (fixable)`
	if got := kinds(rep.Findings); got != want {
		t.Fatalf("findings:\n%s\nwant:\n%s", got, want)
	}
	if rep.Sessions != 16 || rep.WithoutArtworks != 1 {
		t.Errorf("sessions %d, without artworks %d; want 16 and 1", rep.Sessions, rep.WithoutArtworks)
	}
	for _, f := range rep.Findings {
		if f.Kind == reconcile.DoubleSale && (f.Holder == nil || f.Holder.SessionID != "cs_ok") {
			t.Errorf("double sale without its holder: %+v", f.Holder)
		}
	}
	after, _ := s.journal.ListEvents(ctx, journal.EventFilter{})
	if len(s.lake.Transactions()) != writes || len(after) != len(events) {
		t.Fatal("Check wrote to Sanity or the journal")
	}

	applied := s.r.Apply(ctx, rep.Findings)
	ids := make([]string, 0, len(applied))
	stamp := ":" + s.now.Format("2006-01-02T15:04:05.000Z")
	for _, a := range applied {
		if a.Err != nil {
			t.Errorf("%s: %v", a.EventID, a.Err)
		}
		id, ok := strings.CutSuffix(a.EventID, stamp)
		if !ok {
			t.Errorf("event id %s does not end with the time %s", a.EventID, stamp)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	wantIDs := []string{"reconcile:cs_bounced:payment_failed", "reconcile:cs_byhand:paid", "reconcile:cs_cart:paid", "reconcile:cs_crashed:paid",
		"reconcile:cs_drafty:paid", "reconcile:cs_drift:paid", "reconcile:cs_lost:paid", "reconcile:cs_second:paid", "reconcile:cs_sepa:paid"}
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("applied %v, want %v", ids, wantIDs)
	}
	for id, want := range map[string]any{"lost": false, "c1": false, "c2": false, "drift": false, "drafts.drafty": false,
		"crashed": false, "bounced": true, "pending": false, "ok": false, "byhand": false} {
		if got := s.available(id); got != want {
			t.Errorf("%s isAvailable = %v, want %v", id, got, want)
		}
	}
	for _, x := range []struct {
		artwork, session string
		want             stock.SaleState
	}{
		{"lost", "cs_lost", stock.SaleSold}, {"sepa", "cs_sepa", stock.SaleSold}, {"bounced", "cs_bounced", stock.SaleReleased},
		{"ok", "cs_second", stock.SaleDoubleSale}, {"ok", "cs_ok", stock.SaleSold}, {"pending", "cs_pending", stock.SaleHeld},
	} {
		if got := s.saleState(x.artwork, x.session); got != x.want {
			t.Errorf("sale %s/%s = %q, want %q", x.artwork, x.session, got, x.want)
		}
	}
	if rec, err := s.journal.Event(ctx, "reconcile:cs_lost:paid"+stamp); err != nil || rec.Outcome != stock.OutcomeSold || rec.SessionID != "cs_lost" {
		t.Errorf("journaled fix: %+v, %v", rec, err)
	}

	// What is left needs a person; applying again changes nothing.
	left := `cs_bad/drafts.ok=invalid_metadata
cs_ghost/ghost=unknown_artwork
cs_second/ok=double_sale`
	if got := kinds(s.check().Findings); got != left {
		t.Fatalf("after Apply:\n%s\nwant:\n%s", got, left)
	}
	writes = len(s.lake.Transactions())
	if a := s.r.Apply(ctx, s.check().Findings); len(a) != 0 {
		t.Errorf("applied again: %+v", a)
	}
	if len(s.lake.Transactions()) != writes {
		t.Error("a second Apply wrote to Sanity")
	}
}

func TestEditorUndoesASaleAgainAfterApply(t *testing.T) {
	s := newShop(t)
	s.artwork("a1", true)
	s.session("cs_1", stripetest.PaymentPaid, meta("a1"))
	for round := range 2 {
		// Each run is journaled under its own id.
		s.now = s.now.Add(time.Second)
		if got := kinds(s.check().Findings); got != "cs_1/a1=missing (fixable)" && got != "cs_1/a1=unapplied (fixable)" {
			t.Fatalf("round %d: %s", round, got)
		}
		if a := s.r.Apply(context.Background(), s.check().Findings); len(a) != 1 || a[0].Err != nil || a[0].Result.Outcome != stock.OutcomeSold {
			t.Fatalf("round %d: %+v", round, a)
		}
		if s.available("a1") != false {
			t.Fatalf("round %d: still available", round)
		}
		s.artwork("a1", true) // the editor puts it back on sale
	}
}

func TestStripeFailures(t *testing.T) {
	s := newShop(t)
	s.artwork("a1", true)
	// More than a page of sessions: the listing follows has_more and
	// starting_after to the end.
	for i := range 230 {
		s.stripe.Put(stripetest.Session{Status: stripetest.StatusComplete, PaymentStatus: stripetest.PaymentPaid, Created: s.now.Add(-time.Duration(i) * time.Second)})
	}
	s.session("cs_1", stripetest.PaymentPaid, meta("a1"))
	rep := s.check()
	if rep.Sessions != 231 || len(rep.Findings) != 1 || s.stripe.Requests(stripetest.EndpointList) != 3 {
		t.Fatalf("sessions %d, findings %d, list requests %d", rep.Sessions, len(rep.Findings), s.stripe.Requests(stripetest.EndpointList))
	}
	s.stripe.FailNext(1, 500)
	if _, err := s.r.Check(context.Background(), s.now.Add(-time.Hour), s.now); stock.ErrorCode(err) != stock.Unavailable {
		t.Fatalf("err = %v, want Unavailable", err)
	}
}

// keptShop: cs_h holds k by a delayed payment; cs_d1 pays by card and cs_d2
// checks out by a delayed payment meanwhile; cs_h's payment fails, and
// soldout keeps k for the two waiting buyers.
func keptShop(t *testing.T) *shop {
	return keptFor(t, stripetest.PaymentPaid, stripetest.PaymentUnpaid)
}

// keptFor is keptShop with waiting buyers cs_d1, cs_d2, … who check out
// with these payment statuses.
func keptFor(t *testing.T, payments ...string) *shop {
	s := newShop(t)
	unpaid := stripetest.PaymentUnpaid
	s.artwork("k", true)
	s.session("cs_h", unpaid, meta("k"))
	s.deliver("evt_h1", stock.CheckoutCompleted, "cs_h", unpaid, "k")
	for i, payment := range payments {
		n := strconv.Itoa(i + 1)
		s.session("cs_d"+n, payment, meta("k"))
		s.deliver("evt_d"+n, stock.CheckoutCompleted, "cs_d"+n, payment, "k")
	}
	s.deliver("evt_h2", stock.CheckoutAsyncFailed, "cs_h", "", "k")
	if s.available("k") != false {
		t.Fatal("not kept for the waiting buyers")
	}
	return s
}

func TestAPieceKeptForWaitingBuyers(t *testing.T) {
	fixOf := func(rep reconcile.Report, session string) (reconcile.Finding, bool) {
		for _, f := range rep.Findings {
			if f.Session.ID == session {
				return f, true
			}
		}
		return reconcile.Finding{}, false
	}
	t.Run("each waiting buyer is told what applies to them", func(t *testing.T) {
		s := keptShop(t)
		rep := s.check()
		if f, ok := fixOf(rep, "cs_d1"); !ok || f.Kind != reconcile.DoubleSale || !strings.Contains(f.Fix, "give it to one who paid") {
			t.Errorf("cs_d1 (paid, with another waiting): %+v", f)
		}
		if f, ok := fixOf(rep, "cs_d2"); !ok || !strings.Contains(f.Fix, "do not give it to them yet") {
			t.Errorf("cs_d2 (pending): %+v", f)
		}
	})
	t.Run("a lone waiting buyer who paid is told the piece is theirs", func(t *testing.T) {
		s := keptFor(t, stripetest.PaymentPaid)
		if f, ok := fixOf(s.check(), "cs_d1"); !ok || f.Kind != reconcile.DoubleSale || !strings.Contains(f.Fix, "give it to them, or refund them") {
			t.Errorf("cs_d1 (paid, alone): %+v", f)
		}
	})
	t.Run("offered again in Sanity: reported", func(t *testing.T) {
		s := keptShop(t)
		s.artwork("drafts.k", true)
		if f, ok := fixOf(s.check(), "cs_d1"); !ok || !strings.Contains(f.Fix, "yet for sale in Sanity") {
			t.Errorf("a kept piece on sale again is not reported: %+v", f)
		}
	})
	t.Run("a buyer after the keep whose webhook never came: a double sale", func(t *testing.T) {
		s := keptShop(t)
		s.session("cs_e", stripetest.PaymentPaid, meta("k"))
		f, ok := fixOf(s.check(), "cs_e")
		if !ok || f.Kind != reconcile.DoubleSale || !f.Fixable() {
			t.Fatalf("cs_e: %+v", f)
		}
		s.r.Apply(context.Background(), []reconcile.Finding{f})
		if s.saleState("k", "cs_e") != stock.SaleDoubleSale {
			t.Errorf("cs_e recorded %s", s.saleState("k", "cs_e"))
		}
	})
	t.Run("a buyer after every waiter dropped out: the sale", func(t *testing.T) {
		s := newShop(t)
		unpaid := stripetest.PaymentUnpaid
		s.artwork("k", true)
		s.session("cs_h", unpaid, meta("k"))
		s.deliver("evt_h1", stock.CheckoutCompleted, "cs_h", unpaid, "k")
		s.session("cs_w", unpaid, meta("k"))
		s.deliver("evt_w1", stock.CheckoutCompleted, "cs_w", unpaid, "k")
		s.deliver("evt_h2", stock.CheckoutAsyncFailed, "cs_h", "", "k") // kept for cs_w
		s.deliver("evt_w2", stock.CheckoutAsyncFailed, "cs_w", "", "k") // who drops out too
		if s.available("k") != false {
			t.Fatal("not kept")
		}
		s.session("cs_e", stripetest.PaymentPaid, meta("k"))
		f, ok := fixOf(s.check(), "cs_e")
		if !ok || f.Kind != reconcile.Missing || !f.Fixable() || !strings.Contains(f.Fix, "this buyer's") {
			t.Fatalf("cs_e: %+v", f)
		}
		s.r.Apply(context.Background(), []reconcile.Finding{f})
		if s.saleState("k", "cs_e") != stock.SaleSold {
			t.Errorf("cs_e recorded %s, want sold, as the preview said", s.saleState("k", "cs_e"))
		}
	})
}

// TestADraftOnSaleDoesNotMakeASale: with the published document unavailable,
// a draft that still offers the piece makes no sale: what reconcile reports
// is what --apply, through the pipeline, then does.
func TestADraftOnSaleDoesNotMakeASale(t *testing.T) {
	fixOf := func(rep reconcile.Report, session string) reconcile.Finding {
		t.Helper()
		for _, f := range rep.Findings {
			if f.Session.ID == session {
				return f
			}
		}
		t.Fatalf("no finding for %s", session)
		return reconcile.Finding{}
	}
	t.Run("kept for a waiting buyer", func(t *testing.T) {
		s := keptShop(t)
		s.artwork("drafts.k", true)
		s.session("cs_e", stripetest.PaymentPaid, meta("k"))
		f := fixOf(s.check(), "cs_e")
		if f.Kind != reconcile.DoubleSale {
			t.Fatalf("cs_e: %s (%s), want double_sale", f.Kind, f.Fix)
		}
		s.r.Apply(context.Background(), []reconcile.Finding{f})
		if s.saleState("k", "cs_e") != stock.SaleDoubleSale {
			t.Errorf("cs_e recorded %s, not what reconcile said", s.saleState("k", "cs_e"))
		}
	})
	t.Run("withdrawn by someone else", func(t *testing.T) {
		s := newShop(t)
		s.artwork("w", false)
		s.artwork("drafts.w", true)
		s.session("cs_w", stripetest.PaymentPaid, meta("w"))
		f := fixOf(s.check(), "cs_w")
		if f.Kind != reconcile.Unrecorded {
			t.Fatalf("cs_w: %s (%s), want unrecorded", f.Kind, f.Fix)
		}
		s.r.Apply(context.Background(), []reconcile.Finding{f})
		if st := s.saleState("w", "cs_w"); st != "" {
			t.Errorf("cs_w recorded as %s, not what reconcile said", st)
		}
		if s.available("drafts.w") != false {
			t.Error("the draft still offers the piece")
		}
	})
}

// TestACartAcknowledgedPerArtwork: a cart whose event-level outcome is
// another artwork's (double_sale ranks above already_unavailable) is still
// seen as having recorded its unavailable artwork.
func TestACartAcknowledgedPerArtwork(t *testing.T) {
	s := newShop(t)
	s.artwork("a", true)
	s.paid("evt_first", "cs_first", "a")
	s.artwork("b", false)
	s.paid("evt_cart", "cs_cart", "a", "b")
	if got := kinds(s.check().Findings); strings.Contains(got, "cs_cart/b") {
		t.Errorf("the cart's unavailable artwork is reported again: %s", got)
	}
}

// TestAcknowledgedPerSession: another buyer's event that found the piece
// unavailable does not acknowledge this buyer's missed one.
func TestAcknowledgedPerSession(t *testing.T) {
	s := newShop(t)
	s.artwork("u", false)
	s.paid("evt_seen", "cs_seen", "u")
	s.session("cs_missed", stripetest.PaymentPaid, meta("u"))
	if got := kinds(s.check().Findings); got != "cs_missed/u=unrecorded (fixable)" {
		t.Errorf("findings %q, want only the missed session's unavailable artwork", got)
	}
}

func TestADoubleSaleAgainstAPendingHold(t *testing.T) {
	s := newShop(t)
	s.artwork("p", true)
	s.session("cs_h", stripetest.PaymentUnpaid, meta("p"))
	s.deliver("evt_h", stock.CheckoutCompleted, "cs_h", stripetest.PaymentUnpaid, "p")
	s.session("cs_b", stripetest.PaymentPaid, meta("p"))
	s.deliver("evt_b", stock.CheckoutCompleted, "cs_b", stripetest.PaymentPaid, "p")
	for _, f := range s.check().Findings {
		if f.Session.ID == "cs_b" && !strings.Contains(f.Fix, "refund nobody yet") {
			t.Errorf("cs_b: %+v", f)
		}
	}
}

// A delayed payment that failed shows only on its PaymentIntent: the session
// stays complete and unpaid. Reconcile must not take that for a pending
// payment, which would hold the piece for a buyer who owes nothing.
func TestAFailedDelayedPaymentIsNotAHold(t *testing.T) {
	s := newShop(t)
	for _, id := range []string{"lost", "held", "double"} {
		s.artwork(id, true)
	}
	// Both webhooks missed: the journal knows nothing of cs_lost.
	s.session("cs_lost", stripetest.PaymentUnpaid, meta("lost"))
	// Held, then the failure event missed.
	s.session("cs_held", stripetest.PaymentUnpaid, meta("held"))
	s.deliver("evt_held", stock.CheckoutCompleted, "cs_held", stripetest.PaymentUnpaid, "held")
	// A second buyer of a sold piece, paying by SEPA, whose payment failed.
	s.session("cs_sold", stripetest.PaymentPaid, meta("double"))
	s.deliver("evt_sold", stock.CheckoutCompleted, "cs_sold", stripetest.PaymentPaid, "double")
	s.session("cs_double", stripetest.PaymentUnpaid, meta("double"))
	s.deliver("evt_double", stock.CheckoutCompleted, "cs_double", stripetest.PaymentUnpaid, "double")
	// The payments fail: their PaymentIntents need a new payment method.
	for _, id := range []string{"cs_lost", "cs_held", "cs_double"} {
		sess, _ := s.stripe.Session(id)
		sess.PaymentIntentStatus = stripetest.IntentRequiresPaymentMethod
		s.stripe.Put(sess)
	}
	want := "cs_double/double=payment_failed (fixable)\ncs_held/held=held_payment_failed (fixable)"
	if got := kinds(s.check().Findings); got != want {
		t.Fatalf("findings:\n%s\nwant\n%s", got, want)
	}
	for _, a := range s.r.Apply(context.Background(), s.check().Findings) {
		if a.Err != nil {
			t.Errorf("%s: %v", a.SessionID, a.Err)
		}
	}
	if got := kinds(s.check().Findings); got != "" {
		t.Errorf("after --apply: %s", got)
	}
	for _, c := range []struct{ artwork, session string }{{"held", "cs_held"}, {"double", "cs_double"}} {
		if st := s.saleState(c.artwork, c.session); st != stock.SaleReleased {
			t.Errorf("%s: %s, want released", c.session, st)
		}
	}
	if s.available("lost") != true || s.available("held") != true || s.available("double") != false {
		t.Errorf("isAvailable lost=%v held=%v double=%v, want true, true, false", s.available("lost"), s.available("held"), s.available("double"))
	}
	if st := s.saleState("lost", "cs_lost"); st != "" {
		t.Errorf("cs_lost recorded as %s: a failed payment was taken for a sale", st)
	}
}

// A checkout reservation whose session completed unpaid and then failed,
// both events lost: Stripe calls the session complete, so the checkout
// answers "sold" for ever, until reconcile records the failure.
func TestAFailedPaymentEndsAForgottenReservation(t *testing.T) {
	s := newShop(t)
	s.fulfiller.Reservations = s.journal
	s.artwork("r", true)
	ctx := context.Background()
	now := s.now
	r := stock.Reservation{ArtworkID: "r", ClaimID: "claim", State: stock.ReservationOpen,
		ExpiresAt: now.Add(31 * time.Minute), HeldUntil: now.Add(36 * time.Minute), CreatedAt: now, UpdatedAt: now}
	if _, claimed, err := s.journal.ClaimReservation(ctx, r); err != nil || !claimed {
		t.Fatal(claimed, err)
	}
	if err := s.journal.SetReservationSession(ctx, "r", "claim", "cs_res", now); err != nil {
		t.Fatal(err)
	}
	s.session("cs_res", stripetest.PaymentUnpaid, meta("r"))
	sess, _ := s.stripe.Session("cs_res")
	sess.PaymentIntentStatus = stripetest.IntentRequiresPaymentMethod
	s.stripe.Put(sess)
	if got := kinds(s.check().Findings); got != "cs_res/r=payment_failed (fixable)" {
		t.Fatalf("findings: %q", got)
	}
	for _, a := range s.r.Apply(ctx, s.check().Findings) {
		if a.Err != nil {
			t.Fatal(a.Err)
		}
	}
	if res, err := s.journal.Reservation(ctx, "r"); err != nil || res.State == stock.ReservationOpen {
		t.Errorf("reservation after --apply: %+v, %v", res, err)
	}
	if got := kinds(s.check().Findings); got != "" || s.available("r") != true {
		t.Errorf("after --apply: findings %q, isAvailable %v", got, s.available("r"))
	}
}

// TestTheFixSaysWhatApplyDoes: the FIX column of the cases where the
// pipeline that --apply runs does more, or less, than the plain words would
// say.
func TestTheFixSaysWhatApplyDoes(t *testing.T) {
	failPayment := func(s *shop, id string) {
		sess, _ := s.stripe.Session(id)
		sess.PaymentIntentStatus = stripetest.IntentRequiresPaymentMethod
		s.stripe.Put(sess)
	}
	finding := func(t *testing.T, s *shop, session string) reconcile.Finding {
		t.Helper()
		for _, f := range s.check().Findings {
			if f.Session.ID == session {
				return f
			}
		}
		t.Fatalf("no finding for %s", session)
		return reconcile.Finding{}
	}
	paid, unpaid := stripetest.PaymentPaid, stripetest.PaymentUnpaid
	t.Run("a failed hold another buyer waits for stays unavailable", func(t *testing.T) {
		s := newShop(t)
		s.artwork("k", true)
		s.session("cs_h", unpaid, meta("k"))
		s.deliver("e1", stock.CheckoutCompleted, "cs_h", unpaid, "k")
		s.session("cs_d", paid, meta("k"))
		s.deliver("e2", stock.CheckoutCompleted, "cs_d", paid, "k")
		failPayment(s, "cs_h")
		f := finding(t, s, "cs_h")
		if !strings.Contains(f.Fix, "stays unavailable") {
			t.Errorf("fix %q", f.Fix)
		}
		s.r.Apply(context.Background(), []reconcile.Finding{f})
		if s.available("k") != false {
			t.Error("released though a buyer waits: the fix was right, the pipeline wrong")
		}
	})
	t.Run("the last waiter's failure leaves the piece to a person", func(t *testing.T) {
		s := newShop(t)
		s.artwork("k", true)
		s.session("cs_h", unpaid, meta("k"))
		s.deliver("e1", stock.CheckoutCompleted, "cs_h", unpaid, "k")
		s.session("cs_w", unpaid, meta("k"))
		s.deliver("e2", stock.CheckoutCompleted, "cs_w", unpaid, "k")
		s.deliver("e3", stock.CheckoutAsyncFailed, "cs_h", "", "k")
		failPayment(s, "cs_w")
		if f := finding(t, s, "cs_w"); !strings.Contains(f.Fix, "make it available in the Studio") {
			t.Errorf("fix %q", f.Fix)
		}
	})
	t.Run("a second buyer of a piece whose holder's payment is pending", func(t *testing.T) {
		s := newShop(t)
		s.artwork("k", true)
		s.session("cs_a", unpaid, meta("k"))
		s.deliver("e1", stock.CheckoutCompleted, "cs_a", unpaid, "k")
		s.session("cs_b", paid, meta("k"))
		if f := finding(t, s, "cs_b"); !strings.Contains(f.Fix, "refund nobody yet") {
			t.Errorf("fix %q", f.Fix)
		}
		s.session("cs_c", unpaid, meta("k"))
		if f := finding(t, s, "cs_c"); !strings.Contains(f.Fix, "nothing to refund yet") {
			t.Errorf("a pending buyer's fix %q", f.Fix)
		}
	})
	t.Run("a pending buyer nobody has recorded is held", func(t *testing.T) {
		s := newShop(t)
		s.artwork("k", true)
		s.session("cs_p", unpaid, meta("k"))
		f := finding(t, s, "cs_p")
		if !strings.Contains(f.Fix, "records the hold") {
			t.Errorf("fix %q", f.Fix)
		}
		s.r.Apply(context.Background(), []reconcile.Finding{f})
		if st := s.saleState("k", "cs_p"); st != stock.SaleHeld {
			t.Errorf("recorded %s, want held", st)
		}
	})
	t.Run("a recorded double sale whose buyer has not paid yet", func(t *testing.T) {
		s := newShop(t)
		s.artwork("k", true)
		s.session("cs_a", paid, meta("k"))
		s.deliver("e1", stock.CheckoutCompleted, "cs_a", paid, "k")
		s.session("cs_b", unpaid, meta("k"))
		s.deliver("e2", stock.CheckoutCompleted, "cs_b", unpaid, "k")
		if f := finding(t, s, "cs_b"); !strings.Contains(f.Fix, "nothing to refund yet") {
			t.Errorf("fix %q", f.Fix)
		}
	})
	t.Run("a hold a process is writing right now is left to it", func(t *testing.T) {
		s := newShop(t)
		s.artwork("k", true)
		s.session("cs_h", paid, meta("k"))
		if err := s.journal.InsertSale(context.Background(), stock.Sale{ArtworkID: "k", SessionID: "cs_h", State: stock.SaleHeld,
			LeaseOwner: "other", LeaseUntil: s.now.Add(time.Hour), CreatedAt: s.now, UpdatedAt: s.now, Version: 1}); err != nil {
			t.Fatal(err)
		}
		for _, f := range s.check().Findings {
			t.Errorf("reported while another process holds the lease: %s (%s)", f.Kind, f.Fix)
		}
	})
}

// A checkout that needed no payment (a 100 % coupon) whose webhook never
// came is found and applied like a paid one: the piece was given away.
func TestAFreeSaleIsFoundAndApplied(t *testing.T) {
	s := newShop(t)
	s.artwork("art-free", true)
	s.session("cs_free", stock.PaymentNoPaymentRequired, meta("art-free"))
	if got, want := kinds(s.check().Findings), "cs_free/art-free=missing (fixable)"; got != want {
		t.Fatalf("findings:\n%s\nwant\n%s", got, want)
	}
	for _, a := range s.r.Apply(context.Background(), s.check().Findings) {
		if a.Err != nil || a.Result.Outcome != stock.OutcomeSold {
			t.Errorf("%s: %+v, %v; want sold", a.SessionID, a.Result, a.Err)
		}
	}
	if s.available("art-free") != false {
		t.Error("the piece given away is still for sale after --apply")
	}
}
