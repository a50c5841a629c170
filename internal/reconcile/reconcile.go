// Package reconcile compares what Stripe sold with what soldout's journal and
// the Sanity catalog record, and names every difference: the safety net for
// webhooks that never arrived or that Stripe gave up on. Check only reads;
// Apply fixes what can be fixed through the same pipeline as the webhook
// (stock.Fulfiller), with events built from the sessions Stripe returned.
package reconcile

import (
	"context"
	"slices"
	"strings"
	"time"

	"soldout/internal/journal"
	"soldout/internal/stock"
	"soldout/internal/stripeapi"
	"soldout/internal/stripehook"
)

// Kind names an inconsistency between Stripe, the journal and Sanity.
type Kind string

const (
	// Missing: a completed checkout that the journal does not know, for an
	// artwork still for sale: the webhook never arrived or never succeeded.
	Missing Kind = "missing"
	// Unrecorded: a completed checkout that the journal does not know, for
	// an artwork already unavailable (marked by hand, or sold elsewhere).
	Unrecorded Kind = "unrecorded"
	// Unapplied: the journal holds the artwork for the session, but Sanity
	// offers it for sale: the write never completed, or someone undid it.
	Unapplied Kind = "unapplied"
	// HeldPaid: Stripe has the money, but the journal still holds the piece
	// as a pending delayed payment (async_payment_succeeded was missed).
	HeldPaid Kind = "held_paid"
	// HeldPaymentFailed: the delayed payment failed (its PaymentIntent says
	// so, or soldout received that event but never applied it): the piece
	// is still held.
	HeldPaymentFailed Kind = "held_payment_failed"
	// PaymentFailed: a delayed payment failed and the journal does not
	// know, while something still waits for it: a double-sale row (nothing
	// is owed to that buyer) or a checkout reservation (which holds the
	// piece for nobody).
	PaymentFailed Kind = "payment_failed"
	// DoubleSale: the session paid for an artwork that another session
	// holds; a person decides the refund.
	DoubleSale Kind = "double_sale"
	// UnknownArtwork: the session paid for an artwork id that is not in the
	// dataset.
	UnknownArtwork Kind = "unknown_artwork"
	// InvalidMetadata: the session's metadata names something that is not a
	// published Sanity id.
	InvalidMetadata Kind = "invalid_metadata"
)

// Finding is one inconsistency, for one artwork of one Checkout Session.
type Finding struct {
	Kind      Kind
	Session   stripeapi.Session
	ArtworkID string
	Sale      *stock.Sale // the session's journal row for the artwork, if any
	Holder    *stock.Sale // another session's active row, for a double sale
	// Fix says what Apply does ("marks the artwork unavailable") or, when
	// Fixable is false, what a person must do.
	Fix string
	// eventType is the type of the event Apply runs; "" when a person must act.
	eventType string
}

// Fixable reports whether Apply acts on the finding.
func (f Finding) Fixable() bool { return f.eventType != "" }

// eventKey names the event Apply runs for the finding: reconcile:<session
// id>:<payment status>, or reconcile:<session id>:payment_failed for a
// release; "" when the finding is not fixable. The findings of a cart share
// it.
func (f Finding) eventKey() string {
	switch f.eventType {
	case "":
		return ""
	case stock.CheckoutAsyncFailed:
		return "reconcile:" + f.Session.ID + ":payment_failed"
	}
	return "reconcile:" + f.Session.ID + ":" + f.Session.PaymentStatus
}

// event builds the event Apply runs, journaled as <eventKey>:<time in
// milliseconds> so that every run leaves its own record. Its payload has the
// shape of a Stripe event, so that `soldout replay` can run it again like any
// other.
func (f Finding) event(now time.Time) (stock.Event, error) {
	s := f.Session
	return stripehook.Decode(stripehook.Sample{
		EventID: f.eventKey() + ":" + now.UTC().Format(stampFormat), Type: f.eventType, SessionID: s.ID, PaymentStatus: s.PaymentStatus,
		ArtworkIDs: s.Stock().ArtworkIDs, Email: s.Email, AmountTotal: s.AmountTotal, Currency: s.Currency,
		Created: now, Livemode: s.Livemode, APIVersion: stripeapi.APIVersion,
	}.JSON())
}

// stampFormat is RFC 3339 in milliseconds.
const stampFormat = "2006-01-02T15:04:05.000Z07:00"

// Sessions lists Checkout Sessions (stripeapi.Client).
type Sessions interface {
	CompletedSessions(ctx context.Context, since, until time.Time, fn func(stripeapi.Session) error) error
}

// Journal is the part of journal.DB that reconciliation reads.
type Journal interface {
	Sales(ctx context.Context, artworkID string) ([]stock.Sale, error)
	ListEvents(ctx context.Context, f journal.EventFilter) ([]stock.EventRecord, error)
	Reservation(ctx context.Context, artworkID string) (*stock.Reservation, error)
}

// Fulfiller applies a fix (stock.Fulfiller).
type Fulfiller interface {
	Reapply(ctx context.Context, ev stock.Event) (stock.Result, error)
}

// Reconciler compares Stripe with the journal and the catalog.
type Reconciler struct {
	Stripe    Sessions
	Journal   Journal
	Catalog   stock.Catalog
	Fulfiller Fulfiller
	// Budget bounds each event Apply runs; 0 leaves only the caller's context.
	Budget time.Duration
	Now    func() time.Time
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Report is the result of Check.
type Report struct {
	Sessions        int // complete sessions Stripe listed in the window
	WithoutArtworks int // of those, the ones without artwork metadata (skipped)
	Findings        []Finding
}

// Check lists the complete sessions created in [since, until] (a zero until
// is open-ended) and compares each artwork they name with the journal and
// Sanity. It changes nothing.
func (r *Reconciler) Check(ctx context.Context, since, until time.Time) (Report, error) {
	var rep Report
	err := r.Stripe.CompletedSessions(ctx, since, until, func(s stripeapi.Session) error {
		rep.Sessions++
		ids := slices.Compact(slices.Sorted(slices.Values(s.Stock().ArtworkIDs)))
		if len(ids) == 0 {
			rep.WithoutArtworks++
			return nil
		}
		for _, id := range ids {
			f, found, err := r.compare(ctx, s, id)
			if err != nil {
				return err
			}
			if found {
				rep.Findings = append(rep.Findings, f)
			}
		}
		return nil
	})
	return rep, err
}

// compare decides what, if anything, is wrong with one artwork of s.
func (r *Reconciler) compare(ctx context.Context, s stripeapi.Session, id string) (Finding, bool, error) {
	f := Finding{Session: s, ArtworkID: id}
	found := func(k Kind, eventType, fix string) (Finding, bool, error) {
		f.Kind, f.eventType, f.Fix = k, eventType, fix
		return f, true, nil
	}
	if !stock.ValidArtworkID(id) {
		return found(InvalidMetadata, "", "find which artwork was paid for, mark it unavailable in the Studio, and fix the checkout route's metadata")
	}
	paid := s.PaymentStatus == stock.PaymentPaid || s.PaymentStatus == stock.PaymentNoPaymentRequired
	if !paid && s.PaymentStatus != stock.PaymentUnpaid {
		return f, false, nil // a payment status soldout does not act on
	}
	sales, err := r.Journal.Sales(ctx, id)
	if err != nil {
		return f, false, err
	}
	f.Sale, f.Holder = stock.FindSales(sales, s.ID)
	failed := s.PaymentFailed()
	if failed && f.Sale == nil {
		// Stripe still calls the session complete, but its delayed payment
		// failed: nothing to hold, nothing owed (applying the completion
		// would hold the piece for nobody). Only a reservation of the
		// session, its events lost, may still hold it.
		res, err := r.Journal.Reservation(ctx, id)
		if err != nil || res == nil || res.State != stock.ReservationOpen || res.SessionID != s.ID {
			return f, false, err
		}
		return found(PaymentFailed, stock.CheckoutAsyncFailed, "records the failed payment, which ends the checkout reservation that still holds the piece")
	}
	take := "records the sale and marks the artwork unavailable"
	if !paid {
		take = "records the hold (the delayed payment is pending) and marks the artwork unavailable"
	}
	switch own := f.Sale; {
	case own == nil && f.Holder != nil && !paid:
		return found(DoubleSale, stock.CheckoutCompleted, "records the double sale; this buyer's delayed payment is pending: nothing to refund yet")
	case own == nil && f.Holder != nil && f.Holder.State == stock.SaleHeld:
		return found(DoubleSale, stock.CheckoutCompleted, "records the double sale; the holder's delayed payment is pending: refund nobody yet; if it succeeds, refund this buyer; if it fails, soldout keeps the piece for this buyer")
	case own == nil && f.Holder != nil:
		return found(DoubleSale, stock.CheckoutCompleted, "records the double sale; then refund one buyer in the Stripe Dashboard")
	case own == nil:
		art, err := r.Catalog.Artwork(ctx, id)
		switch {
		case err != nil:
			return f, false, err
		case art.Published == nil:
			return found(UnknownArtwork, "", "check SANITY_PROJECT_ID and SANITY_DATASET, or restore the artwork; then apply again")
		case art.Published.IsAvailable():
			// The published document, as the pipeline's claim decides: a
			// draft still offering a piece unavailable is closed by it, not
			// sold.
			return found(Missing, stock.CheckoutCompleted, take)
		}
		if rev := art.Published.Rev; stock.OwnTransaction(rev) {
			// As the webhook's pipeline decides, which Apply runs.
			if stock.KeptForOthers(sales, id, s.ID, rev) {
				return found(DoubleSale, stock.CheckoutCompleted, "records the double sale: the piece is kept for buyers who wait after a failed hold")
			}
			return found(Missing, stock.CheckoutCompleted, "records the sale: soldout kept the piece for buyers whose payments have all failed since, so it is this buyer's")
		}
		// The artwork's own outcome, from the event's detail: a cart's
		// event-level outcome may be another artwork's.
		acknowledged, err := r.sessionEvent(ctx, s.ID, id, func(e stock.EventRecord) bool {
			return slices.Contains(strings.Fields(e.Detail), id+"="+string(stock.OutcomeAlreadyUnavailable))
		})
		if err != nil || acknowledged {
			return f, false, err
		}
		return found(Unrecorded, stock.CheckoutCompleted, "records it as already unavailable; check whether the piece was sold elsewhere")
	case own.State == stock.SaleDoubleSale && failed && f.Holder == nil && len(stock.FellowWaiters(sales, *own)) == 0:
		return found(PaymentFailed, stock.CheckoutAsyncFailed, "records the failed payment: nothing is owed to this buyer, no refund; soldout kept the piece for them and nobody else waits: make it available in the Studio if it is for sale")
	case own.State == stock.SaleDoubleSale && failed:
		return found(PaymentFailed, stock.CheckoutAsyncFailed, "records the failed payment: nothing is owed to this buyer, no refund")
	case own.State == stock.SaleDoubleSale && f.Holder == nil:
		// Kept for the buyers who wait after a failed hold: the journal
		// holds no sale that reconcile would check Sanity for.
		art, err := r.Catalog.Artwork(ctx, id)
		switch {
		case err != nil:
			return f, false, err
		case forSale(art):
			return found(DoubleSale, "", "kept for buyers who wait after a failed hold, yet for sale in Sanity: mark it unavailable in the Studio, then give it to one waiting buyer who paid and refund the others")
		case !paid:
			return found(DoubleSale, "", "waits for a piece kept after a failed hold, with a delayed payment pending: do not give it to them yet")
		case len(stock.FellowWaiters(sales, *own)) > 0:
			return found(DoubleSale, "", "waits, with others, for a piece kept after a failed hold: give it to one who paid (`soldout sales list --artwork "+id+"`) and refund the others who paid")
		default:
			return found(DoubleSale, "", "the sale this buyer lost to is no longer active (its payment failed) and the piece is kept unavailable for them: give it to them, or refund them and offer it again")
		}
	case own.State == stock.SaleDoubleSale && f.Holder.State == stock.SaleHeld:
		return found(DoubleSale, "", "the holder's delayed payment is pending: refund nobody yet; if it succeeds, refund this buyer; if it fails, soldout keeps the piece for this buyer")
	case own.State == stock.SaleDoubleSale && !paid:
		return found(DoubleSale, "", "this buyer's delayed payment is pending: nothing to refund yet; if it succeeds, refund one of the two buyers")
	case own.State == stock.SaleDoubleSale:
		return found(DoubleSale, "", "refund one of the two buyers in the Stripe Dashboard")
	case own.State == stock.SaleReleased:
		return f, false, nil
	case own.State == stock.SaleHeld && own.AppliedRev == "" && own.LeaseUntil.After(r.now()):
		return f, false, nil // a soldout process is writing it right now
	case own.State == stock.SaleHeld && paid:
		return found(HeldPaid, stock.CheckoutCompleted, "records the sale as paid, and marks the artwork unavailable wherever Sanity still offers it")
	case own.State == stock.SaleHeld:
		received, err := r.sessionEvent(ctx, s.ID, id, func(e stock.EventRecord) bool {
			return e.Type == stock.CheckoutAsyncFailed && !e.Outcome.Final()
		})
		if err != nil {
			return f, false, err
		}
		if (failed || received) && len(stock.FellowWaiters(sales, stock.Sale{ArtworkID: id, WaitsFor: own.SessionID})) > 0 {
			return found(HeldPaymentFailed, stock.CheckoutAsyncFailed, "records the failed payment; the piece stays unavailable, kept for the buyers who checked it out meanwhile (`soldout sales list --artwork "+id+"`)")
		}
		if failed || received {
			return found(HeldPaymentFailed, stock.CheckoutAsyncFailed, "releases the artwork, if nobody changed it since")
		}
	}
	if f.Sale.AppliedRev == "" {
		if f.Sale.LeaseUntil.After(r.now()) {
			return f, false, nil // a soldout process is writing it right now
		}
		return found(Unapplied, stock.CheckoutCompleted, "marks the artwork unavailable")
	}
	art, err := r.Catalog.Artwork(ctx, id)
	if err != nil || !forSale(art) {
		return f, false, err
	}
	return found(Unapplied, stock.CheckoutCompleted, "marks the artwork unavailable again")
}

// sessionEvent reports whether the journal has an event of session for
// artwork that satisfies match.
func (r *Reconciler) sessionEvent(ctx context.Context, session, artwork string, match func(stock.EventRecord) bool) (bool, error) {
	evs, err := r.Journal.ListEvents(ctx, journal.EventFilter{ArtworkID: artwork})
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(evs, func(e stock.EventRecord) bool { return e.SessionID == session && match(e) }), nil
}

// forSale reports whether any version of the artwork (published, draft or
// release) offers it for sale: a draft that does would put it back on sale
// when published.
func forSale(a stock.Artwork) bool {
	return slices.ContainsFunc(a.Variants(), stock.Variant.IsAvailable)
}

// Applied is what Apply did with one event.
type Applied struct {
	EventID   string
	SessionID string
	Result    stock.Result
	Err       error
}

// Apply runs the event of every fixable finding through the Fulfiller, once
// per event (the findings of a cart share one).
func (r *Reconciler) Apply(ctx context.Context, findings []Finding) []Applied {
	var out []Applied
	done := make(map[string]bool)
	now := r.now()
	for _, f := range findings {
		key := f.eventKey()
		if key == "" || done[key] {
			continue
		}
		done[key] = true
		ev, err := f.event(now)
		a := Applied{EventID: ev.ID, SessionID: f.Session.ID, Err: err}
		if err == nil {
			a.Result, a.Err = r.reapply(ctx, ev)
		}
		out = append(out, a)
	}
	return out
}

func (r *Reconciler) reapply(ctx context.Context, ev stock.Event) (stock.Result, error) {
	if r.Budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Budget)
		defer cancel()
	}
	return r.Fulfiller.Reapply(ctx, ev)
}

// Problem says in words what a kind of finding means.
func (k Kind) Problem() string {
	switch k {
	case Missing:
		return "checked out (paid, or a delayed payment pending), not in the journal, artwork still for sale"
	case Unrecorded:
		return "checked out (paid, or a delayed payment pending), not in the journal, artwork already unavailable"
	case Unapplied:
		return "taken in the journal, but for sale in Sanity"
	case HeldPaid:
		return "paid, but the journal still holds it as a pending payment"
	case HeldPaymentFailed:
		return "delayed payment failed, but the artwork is still held"
	case PaymentFailed:
		return "delayed payment failed; the journal does not know"
	case DoubleSale:
		return "checked out an artwork another session holds, or one kept for buyers waiting after a failed hold"
	case UnknownArtwork:
		return "paid for an artwork that is not in the dataset"
	case InvalidMetadata:
		return "the metadata names no valid artwork id"
	}
	return string(k)
}
