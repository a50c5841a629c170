package stock

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// DefaultLeaseTTL bounds how long a crashed process can block a sale. It
// must stay above the webhook time budget, so that a live process never
// loses its lease in the middle of a write.
const DefaultLeaseTTL = 20 * time.Second

// finishTimeout bounds recording an outcome after the budget is spent; the
// HTTP layer keeps this much of its budget in reserve.
const finishTimeout = time.Second

// maxDecisions bounds the read-decide-write loop when the journal or Sanity
// keep changing under us (another replica, an editor saving).
const maxDecisions = 5

// ArtworkResult is the outcome for one artwork of an event.
type ArtworkResult struct {
	ArtworkID string  `json:"id"`
	Outcome   Outcome `json:"outcome"`
}

// String is how text logs show it (JSON logs use the field tags).
func (r ArtworkResult) String() string { return r.ArtworkID + ":" + string(r.Outcome) }

// Result is what processing an event did.
type Result struct {
	Outcome  Outcome         `json:"outcome"`
	Artworks []ArtworkResult `json:"artworks,omitempty"`
}

// Fulfiller applies checkout events to the catalog and records them in the
// journal. It is the one idempotent fulfil routine that the webhook (and any
// other caller) goes through; it is safe to run concurrently, in several
// processes, for the same session.
type Fulfiller struct {
	Catalog Catalog
	Journal Journal
	Logger  *slog.Logger
	// Owner names this process in sale leases; unique per process.
	Owner    string
	LeaseTTL time.Duration
	Now      func() time.Time
	// Reservations, when set, are ended by their sessions' events
	// (checkout with reservation, see reserve.go); nil turns that off.
	Reservations Reservations
	// Mode, when set, is the Stripe mode of the shop: events of the other
	// mode are refused (Misconfigured, left unapplied). A test endpoint
	// pointed at production, or a test secret added beside the live one,
	// would otherwise let a test checkout withdraw a real piece.
	Mode StripeMode
	// ModeSource says what set Mode, for the message that refuses an event.
	ModeSource string

	locks keyedLocks
}

func (f *Fulfiller) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Fulfiller) leaseTTL() time.Duration {
	if f.LeaseTTL > 0 {
		return f.LeaseTTL
	}
	return DefaultLeaseTTL
}

// Handle records ev, applies it unless an earlier delivery already did, and
// records the outcome. A non-nil error means the event was not (fully)
// applied and must be delivered again.
func (f *Fulfiller) Handle(ctx context.Context, ev Event) (Result, error) {
	rec, err := f.Journal.RecordDelivery(ctx, ev, f.now())
	if err != nil {
		return Result{}, err
	}
	if rec.Outcome.Final() {
		return Result{Outcome: OutcomeDuplicate}, nil
	}
	// One delivery per artwork at a time in this process, from the decision
	// until its outcome is recorded, so that a duplicate waits and then finds
	// the sale settled instead of racing to write it again.
	unlock, err := f.locks.lockAll(ctx, uniq(ev.Session.ArtworkIDs))
	if err != nil {
		return Result{}, Wrap(Unavailable, fmt.Errorf("%w (%w)", ErrContended, err), "waiting for another delivery of an artwork of session %s", ev.Session.ID)
	}
	defer unlock()
	first := rec.Attempts == 1
	for round := 1; ; round++ {
		res, procErr, err := f.processAndFinish(ctx, ev, first)
		if errors.Is(err, ErrStale) && procErr == nil && round < maxDecisions && ctx.Err() == nil {
			// Another process changed a sale of this session while this one
			// decided (a double sale recorded against a hold being
			// released): decide again now rather than leave Sanity as this
			// round wrote it until Stripe's retry. What the round logged
			// may no longer hold: the operator is told which lines count.
			f.Logger.Info("another process changed a sale of this artwork while this event's decision was recorded: deciding again; the lines logged for the earlier decision no longer hold, the next ones do",
				"event_id", ev.ID, "session_id", ev.Session.ID, "round", round+1)
			first = false
			continue
		}
		if errors.Is(err, ErrStale) {
			err = Wrap(Unavailable, err, "another process changed a sale of session %s while this one recorded it; Stripe will retry", ev.Session.ID)
		}
		if err != nil && procErr == nil {
			return res, err
		}
		return res, procErr
	}
}

// Refuse records a delivery that cannot be applied as it stands (a signed
// event this soldout cannot read) as not applied, with cause as its error,
// and returns cause: listed with the failed events, it is read again by its
// next delivery, or by `soldout replay` once soldout can. An event without
// an id cannot be journaled; then only cause is returned.
func (f *Fulfiller) Refuse(ctx context.Context, ev Event, cause error) (Result, error) {
	if ev.ID == "" {
		return Result{}, cause
	}
	rec, err := f.Journal.RecordDelivery(ctx, ev, f.now())
	if err != nil {
		return Result{}, err
	}
	if rec.Outcome.Final() {
		return Result{Outcome: OutcomeDuplicate}, nil
	}
	if err := f.Journal.FinishEvent(ctx, ev.ID, OutcomeFailed, "", cause.Error(), f.now()); err != nil {
		return Result{}, err
	}
	return Result{}, cause
}

// processAndFinish runs one round of Handle: the rules, then the outcome and
// the sale rows they leave, recorded together. procErr is the rules' error,
// err the record's.
func (f *Fulfiller) processAndFinish(ctx context.Context, ev Event, first bool) (res Result, procErr, err error) {
	var settled []Sale
	res, procErr = f.process(ctx, ev, first, &settled)
	if procErr == nil {
		res, procErr = f.settleReservation(ctx, ev, res)
	}
	outcome, lastErr := res.Outcome, ""
	if procErr != nil {
		outcome, lastErr = OutcomeFailed, procErr.Error()
	}
	// The outcome is recorded even when the request's budget is spent, so
	// that the audit trail says why Stripe got a 5xx.
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	err = f.Journal.FinishEvent(finishCtx, ev.ID, outcome, res.detail(), lastErr, f.now(), settled...)
	return res, procErr, err
}

func (r Result) detail() string {
	parts := make([]string, len(r.Artworks))
	for i, a := range r.Artworks {
		parts[i] = a.ArtworkID + "=" + string(a.Outcome)
	}
	return strings.Join(parts, " ")
}

// action is what an event asks for, per artwork.
type action int

const (
	actNone action = iota
	actHold
	actSell
	actRelease
)

func (f *Fulfiller) actionFor(ev Event) action {
	switch ev.Type {
	case CheckoutCompleted:
		switch ev.Session.PaymentStatus {
		case PaymentPaid, PaymentNoPaymentRequired:
			return actSell
		case PaymentUnpaid:
			return actHold
		}
		f.Logger.Warn("checkout completed with an unknown payment_status: ignored; check the session in the Stripe Dashboard",
			"event_id", ev.ID, "session_id", ev.Session.ID, "payment_status", ev.Session.PaymentStatus)
	case CheckoutAsyncSucceeded:
		return actSell
	case CheckoutAsyncFailed:
		return actRelease
	}
	return actNone
}

// process applies ev; the sale rows it leaves behind are added to settled,
// for Handle to write with the outcome. first says that this is the
// event's first delivery.
func (f *Fulfiller) process(ctx context.Context, ev Event, first bool, settled *[]Sale) (Result, error) {
	if f.Mode != ModeAny && f.Mode.Live() != ev.Livemode {
		// Refused, not ignored: if the shop's own setting is the mistake (a
		// test key left on a live shop), every real sale lands here, and
		// Stripe must keep it for a retry once the setting is fixed.
		return Result{}, Errorf(Misconfigured, "event %s is of Stripe's %s mode, and this soldout runs in %s mode (from %s): nothing changed; if the event is the shop's, fix the setting and Stripe's retry applies it, else point that mode's endpoint at a soldout of its own",
			ev.ID, modeOf(ev.Livemode), f.Mode, cmp.Or(f.ModeSource, "its settings"))
	}
	act := f.actionFor(ev)
	if act == actNone {
		return Result{Outcome: OutcomeIgnored}, nil
	}
	ids := uniq(ev.Session.ArtworkIDs)
	switch {
	case len(ids) > 0:
	case act == actRelease:
		// A failed payment of a session that named nothing frees nothing.
		f.Logger.Warn("delayed payment failed for a checkout session without artworkId or artworkIds metadata: nothing to release",
			"event_id", ev.ID, "session_id", ev.Session.ID, "metadata_keys", ev.Session.MetadataKeys)
		return Result{Outcome: OutcomeIgnored}, nil
	default:
		// Every Checkout Session of the shop sells artworks: one that names
		// none comes from a checkout route that forgot the metadata, and the
		// piece it sold is still for sale. Stripe's retry cannot fix that; a
		// person must, so it is an outcome to alert on, not "ignored".
		f.Logger.Error("checkout session carries no artworkId or artworkIds metadata: nothing was marked unavailable; find which artwork was paid for, mark it unavailable in the Studio, and make the checkout route set metadata.artworkId",
			"event_id", ev.ID, "type", ev.Type, "session_id", ev.Session.ID, "email", ev.Session.Email, "metadata_keys", ev.Session.MetadataKeys)
		return Result{Outcome: OutcomeInvalidMetadata}, nil
	}
	res := Result{Artworks: make([]ArtworkResult, 0, len(ids))}
	var errs []error
	for _, id := range ids {
		var (
			out Outcome
			err error
		)
		switch {
		case !ValidArtworkID(id):
			out = OutcomeInvalidMetadata
			f.Logger.Error("checkout session names an artwork id that is not a published Sanity id: nothing was sent to Sanity; a person must find which artwork was paid for and mark it unavailable",
				"event_id", ev.ID, "session_id", ev.Session.ID, "artwork_id", truncate(id, 160), "email", ev.Session.Email)
		case act == actRelease:
			out, err = f.release(ctx, ev, id, settled)
		case act == actHold:
			out, err = f.take(ctx, ev, id, SaleHeld, first, settled)
		default:
			out, err = f.take(ctx, ev, id, SaleSold, first, settled)
		}
		if err != nil {
			errs = append(errs, err)
			out = OutcomeFailed
		}
		res.Artworks = append(res.Artworks, ArtworkResult{ArtworkID: truncate(id, MaxArtworkIDLength), Outcome: out})
	}
	res.Outcome = summarize(res.Artworks)
	return res, errors.Join(errs...)
}

// summarize picks the event-level outcome: the one a person most needs to see.
func summarize(rs []ArtworkResult) Outcome {
	rank := func(o Outcome) int {
		return slices.Index([]Outcome{OutcomeFailed, OutcomeInvalidMetadata, OutcomeDoubleSale, OutcomeAlreadyUnavailable,
			OutcomeReleaseSkipped, OutcomeSold, OutcomeHeld, OutcomeReleased, OutcomeIgnored, OutcomeDuplicate}, o)
	}
	best := rs[0].Outcome
	for _, r := range rs[1:] {
		if rank(r.Outcome) < rank(best) {
			best = r.Outcome
		}
	}
	return best
}

// take makes the artwork unavailable for ev's session, as held or sold.
// The journal decides who gets the piece (one active sale per artwork);
// Sanity follows, guarded by ifRevisionID.
//
// On the first delivery of a completed checkout the artwork almost always
// has no sale row, so the first round assumes none instead of reading them
// (one read per sale fewer; see BENCHMARKS.md). A wrong guess
// costs a round, not a wrong decision: claim's insert fails with
// ErrSaleExists or ErrSaleTaken when a row exists, and claim checks the
// journal before it trusts a surprise from Sanity; the next round reads.
func (f *Fulfiller) take(ctx context.Context, ev Event, id string, want SaleState, first bool, settled *[]Sale) (Outcome, error) {
	guessNone := first && ev.Type == CheckoutCompleted
	return f.decide(ctx, ev, id, guessNone, func(sales []Sale, log *slog.Logger) (Outcome, error) {
		own, active := FindSales(sales, ev.Session.ID)
		switch {
		case own != nil:
			return f.continueOwn(ctx, ev, *own, sales, want, settled, log)
		case active != nil:
			return f.doubleSale(ctx, ev, id, want, active, active.SessionID, log)
		default:
			return f.claim(ctx, ev, id, want, settled, log)
		}
	})
}

// decide runs one artwork's read-decide-write loop, under the artwork's
// in-process lock that Handle holds. Each round sees the artwork's sale rows
// afresh, except that with guessNone the first round takes them to be none,
// unread; a round that lost against another writer is decided again, a
// bounded number of times.
func (f *Fulfiller) decide(ctx context.Context, ev Event, id string, guessNone bool, round func(sales []Sale, log *slog.Logger) (Outcome, error)) (Outcome, error) {
	log := f.Logger.With("event_id", ev.ID, "type", ev.Type, "session_id", ev.Session.ID, "artwork_id", id)
	for i := range maxDecisions {
		var sales []Sale
		if i > 0 || !guessNone {
			var err error
			if sales, err = f.Journal.Sales(ctx, id); err != nil {
				return "", err
			}
		}
		out, err := round(sales, log)
		if errors.Is(err, ErrStale) || errors.Is(err, ErrSaleTaken) || errors.Is(err, ErrSaleExists) || errors.Is(err, ErrRevisionMismatch) {
			continue // another writer decided meanwhile: decide again
		}
		return out, err
	}
	return "", Wrap(Unavailable, ErrContended, "artwork %s: the journal or Sanity kept changing while deciding", id)
}

// claim handles an artwork nobody has taken in the journal yet.
func (f *Fulfiller) claim(ctx context.Context, ev Event, id string, want SaleState, settled *[]Sale, log *slog.Logger) (Outcome, error) {
	art, err := f.Catalog.Artwork(ctx, id)
	if err != nil {
		return "", err
	}
	pub := art.Published
	var sales []Sale
	if pub == nil || !pub.IsAvailable() {
		// Another process may have claimed and written it between our
		// journal read and this Sanity read, or this round guessed the
		// journal instead of reading it: decide again from the journal.
		if sales, err = f.Journal.Sales(ctx, id); err != nil {
			return "", err
		}
		if own, active := FindSales(sales, ev.Session.ID); own != nil || active != nil {
			return "", ErrSaleTaken
		}
		// Nobody holds it in the journal. A release writes Sanity before it
		// records itself, so the first read may show a hold released since;
		// a read taken after the journal's is not older than it.
		if art, err = f.Catalog.Artwork(ctx, id); err != nil {
			return "", err
		}
		pub = art.Published
	}
	if pub == nil {
		log.Error("artwork does not exist in Sanity: check SANITY_PROJECT_ID and SANITY_DATASET, or restore the document; the event is not applied: Stripe retries it, and `soldout replay EVENT_ID` applies it once fixed")
		return "", Errorf(Misconfigured, "artwork %s does not exist in the Sanity dataset", id)
	}
	switch {
	case pub.IsAvailable():
	case OwnTransaction(pub.Rev) && KeptForOthers(sales, id, ev.Session.ID, pub.Rev):
		// soldout made it unavailable for a sale the journal does not hold
		// as active: a buyer it keeps the piece for after a failed hold
		// (or, under a revision from before transaction ids named their
		// sale, may keep it: who waits cannot be told). This buyer's is a
		// second sale.
		return f.doubleSale(ctx, ev, id, want, nil, pub.Rev, log)
	case OwnTransaction(pub.Rev):
		// Kept for buyers who have all dropped out since (soldout said that
		// nobody holds it): the piece is this buyer's, as applyTake decides
		// when the keep comes between its read and its write.
		log.Info("artwork was kept unavailable by soldout for buyers whose payments have all failed since: it is this buyer's")
	default:
		log.Warn("artwork was already unavailable in Sanity, not through soldout: the buyer checked out a piece marked unavailable by someone else; check whether it was sold elsewhere",
			"email", ev.Session.Email)
		// A draft or release version still offering it would put it back on
		// sale when published, to a second buyer: it is closed too.
		closing := availableVariants(art.Others)
		if err := f.Catalog.SetAvailable(ctx, saleTransaction(ev.Session.ID, id, "close", closing), false, closing); err != nil {
			return "", err
		}
		return OutcomeAlreadyUnavailable, nil
	}
	now := f.now()
	sale := Sale{
		ArtworkID: id, SessionID: ev.Session.ID, State: want,
		Email: ev.Session.Email, Amount: ev.Session.AmountTotal, Currency: ev.Session.Currency,
		EventIDs:   []string{ev.ID},
		LeaseOwner: f.Owner, LeaseUntil: now.Add(f.leaseTTL()),
		CreatedAt: now, UpdatedAt: now, Version: 1,
	}
	// On disk before Sanity is written: a crash between the two leaves a
	// claim that the next delivery finds, never a write nobody recorded.
	if err := f.Journal.InsertSale(ctx, sale); err != nil {
		return "", err
	}
	if err := f.applyTake(ctx, sale, &art, settled, log); errors.Is(err, errKept) {
		return OutcomeDoubleSale, nil
	} else if err != nil {
		return "", err
	}
	return outcomeOf(want), nil
}

// continueOwn handles a session that already has a row for the artwork:
// a redelivery, held becoming sold, or a write a crash left undone. sales
// are the artwork's rows, own among them.
func (f *Fulfiller) continueOwn(ctx context.Context, ev Event, own Sale, sales []Sale, want SaleState, settled *[]Sale, log *slog.Logger) (Outcome, error) {
	switch own.State {
	case SaleDoubleSale:
		if ev.Type != CheckoutAsyncSucceeded {
			return OutcomeDoubleSale, nil
		}
		attrs := []any{"email", own.Email, "amount", own.Amount, "currency", own.Currency}
		_, active := FindSales(sales, own.SessionID)
		switch {
		case active != nil:
			log.Error("double sale: this buyer's delayed payment succeeded, for an artwork that another session holds; Sanity left untouched; refund one buyer (see `soldout sales list --state double_sale`)",
				append(attrs, "winning_session_id", active.SessionID, "winning_email", active.Email)...)
		case len(FellowWaiters(sales, own)) > 0:
			log.Error("double sale: this buyer's delayed payment succeeded; the sale they lost to is no longer active (its payment failed) and soldout keeps the artwork unavailable, but other buyers wait for it too: give the piece to one of them and refund the others who paid (see `soldout sales list --artwork "+own.ArtworkID+"`)",
				attrs...)
		default:
			// The hold this buyer lost to failed and soldout kept the piece
			// unavailable for them: they are the one who paid.
			log.Error("double sale: this buyer's delayed payment succeeded, and the sale they lost to is no longer active (its payment failed), so soldout kept the artwork unavailable for them: give them the piece, nothing to refund; or refund them and offer it again in the Studio",
				attrs...)
		}
		return OutcomeDoubleSale, nil
	case SaleReleased:
		log.Info("session's payment failed earlier: artwork not taken again")
		return OutcomeIgnored, nil
	}
	out := OutcomeDuplicate
	if own.State == SaleHeld && want == SaleSold {
		own.State, out = SaleSold, OutcomeSold
		own.EventIDs = append(own.EventIDs, ev.ID)
	}
	if own.AppliedRev != "" {
		if out == OutcomeSold {
			own.UpdatedAt = f.now()
			*settled = append(*settled, own)
		}
		return out, nil
	}
	// The sale was claimed but its Sanity write is not known to have
	// committed: a crash, a timeout, or another replica at work right now.
	now := f.now()
	if own.LeaseOwner != f.Owner && own.LeaseUntil.After(now) {
		return "", Wrap(Unavailable, ErrBusy, "artwork %s (lease until %s); Stripe will retry", own.ArtworkID, own.LeaseUntil.UTC().Format(time.RFC3339))
	}
	own.LeaseOwner, own.LeaseUntil, own.UpdatedAt = f.Owner, now.Add(f.leaseTTL()), now
	// Taking the lease over is written at once: it must hold before Sanity
	// is written, against another replica doing the same.
	own, err := f.Journal.UpdateSale(ctx, own)
	if err != nil {
		return "", err
	}
	if err := f.applyTake(ctx, own, nil, settled, log); errors.Is(err, errKept) {
		return OutcomeDoubleSale, nil
	} else if err != nil {
		return "", err
	}
	return outcomeOf(own.State), nil
}

// doubleSale records that ev's buyer checked out a piece another session
// holds: paid (want is SaleSold), or with a delayed payment pending. winner
// is that session's active row; nil when the journal holds none (see
// claim). waitsFor names the sale the buyer lost to (see Sale.WaitsFor).
func (f *Fulfiller) doubleSale(ctx context.Context, ev Event, id string, want SaleState, winner *Sale, waitsFor string, log *slog.Logger) (Outcome, error) {
	// A release of a hold that read the rows before this one is recorded
	// would not see this buyer wait: the winner's row is rewritten in the
	// same transaction, so that release fails to record itself and decides
	// again. One recorded first makes this fail instead, and this buyer's
	// next round finds the piece free.
	var bump *Sale
	if winner != nil && winner.State == SaleHeld {
		bump = winner
	}
	now := f.now()
	err := f.Journal.InsertDoubleSale(ctx, Sale{
		ArtworkID: id, SessionID: ev.Session.ID, State: SaleDoubleSale,
		Email: ev.Session.Email, Amount: ev.Session.AmountTotal, Currency: ev.Session.Currency,
		EventIDs: []string{ev.ID}, CreatedAt: now, UpdatedAt: now, Version: 1, WaitsFor: waitsFor,
	}, bump)
	if err != nil {
		return "", err
	}
	msg := "double sale: this buyer paid for an artwork that another session already took; Sanity left untouched; refund one buyer (see `soldout sales list --state double_sale`)"
	switch {
	case want == SaleHeld:
		msg = "double sale: this buyer checked out an artwork that another session already took, and their delayed payment is pending; Sanity left untouched; nothing to refund yet: if the payment succeeds soldout logs it again, if it fails nothing is owed"
	case bump != nil:
		msg = "double sale: this buyer paid for an artwork held for another session whose delayed payment is pending; Sanity left untouched; refund nobody yet: if that payment succeeds, refund this buyer; if it fails, soldout keeps the piece for this buyer"
	}
	attrs := []any{"email", ev.Session.Email, "amount", ev.Session.AmountTotal, "currency", ev.Session.Currency}
	if winner != nil {
		attrs = append(attrs, "winning_session_id", winner.SessionID, "winning_email", winner.Email, "winning_state", winner.State)
	} else {
		attrs = append(attrs, "winning_session_id", "none active: soldout keeps the artwork unavailable for a buyer who checked it out while a hold that has since failed held it: see `soldout sales list --artwork "+id+"`")
	}
	log.Error(msg, attrs...)
	return OutcomeDoubleSale, nil
}

// applyTake makes every version of the artwork unavailable and adds the
// sale, marked applied, to settled. art, when given, is a fresh read.
//
// The write is one transaction: the published document and every draft and
// release version that offers the piece, each guarded by the revision read.
// Creating a draft does not change the published _rev, so a draft opened
// between the read and the write escapes the guards; patchLateDraft reads the
// draft again once the write has committed. Both reads of the draft go to the
// doc endpoint, which is strongly consistent: Sanity's patch by query would
// be one request fewer, but its query runs on the search store, which lags
// the documents by up to seconds and would miss exactly that draft.
func (f *Fulfiller) applyTake(ctx context.Context, sale Sale, art *Artwork, settled *[]Sale, log *slog.Logger) error {
	var appliedRev string
	for attempt := 0; appliedRev == ""; attempt++ {
		if attempt == maxDecisions {
			return Wrap(Unavailable, ErrContended, "artwork %s kept changing in Sanity while soldout wrote it", sale.ArtworkID)
		}
		if art == nil || attempt > 0 {
			a, err := f.Catalog.Artwork(ctx, sale.ArtworkID)
			if err != nil {
				return err
			}
			art = &a
		}
		if art.Published == nil {
			log.Error("artwork was deleted from Sanity before soldout could mark it unavailable; restore it or settle the sale by hand")
			return Errorf(Misconfigured, "artwork %s does not exist in the Sanity dataset", sale.ArtworkID)
		}
		if pub := art.Published; !pub.IsAvailable() && OwnTransaction(pub.Rev) && !writtenFor(pub.Rev, sale.SessionID, sale.ArtworkID) {
			// soldout itself may keep it for a buyer waiting after a failed
			// hold, whatever a draft or release version still offers.
			if kept, err := f.keptForAnother(ctx, sale, pub.Rev, log); kept {
				return errKept
			} else if err != nil {
				return err
			}
		}
		open := availableVariants(art.Variants())
		if len(open) == 0 {
			// Unavailable everywhere: an earlier attempt committed and its
			// answer was lost, or someone else withdrew the piece.
			appliedRev = art.Published.Rev
			break
		}
		txID := saleTransaction(sale.SessionID, sale.ArtworkID, "take", open)
		err := f.Catalog.SetAvailable(ctx, txID, false, open)
		if errors.Is(err, ErrRevisionMismatch) {
			continue
		}
		if err != nil {
			return err
		}
		appliedRev = art.Published.Rev
		if art.Published.IsAvailable() {
			appliedRev = txID
		}
	}
	if err := f.patchLateDraft(ctx, sale); err != nil {
		return err
	}
	// Recorded with the event's outcome, not on its own: one commit fewer
	// per sale. Until then the lease keeps other replicas off the row, and a
	// crash leaves a sale that the next delivery finds written in Sanity.
	sale.AppliedRev, sale.LeaseOwner, sale.LeaseUntil, sale.UpdatedAt = appliedRev, "", time.Time{}, f.now()
	*settled = append(*settled, sale)
	return nil
}

// errKept says that applyTake found the piece kept for another buyer and
// recorded this sale as a double sale instead.
var errKept = errors.New("artwork kept for another buyer: recorded as a double sale")

// keptForAnother turns sale into a double sale, and reports true, when the
// piece it was to take is unavailable under a write soldout made to keep it
// for a buyer who waits after a failed hold: a release finished between
// this sale's read and its write. rev naming no waiting buyer (a soldout
// write from before transaction ids named their sale) reports false.
func (f *Fulfiller) keptForAnother(ctx context.Context, sale Sale, rev string, log *slog.Logger) (bool, error) {
	sales, err := f.Journal.Sales(ctx, sale.ArtworkID)
	if err != nil {
		return false, err
	}
	var waiting []string
	for _, w := range waitersFor(sales, sale, rev) {
		waiting = append(waiting, w.SessionID+" ("+w.Email+")")
	}
	if len(waiting) == 0 {
		return false, nil
	}
	pending := sale.State == SaleHeld
	sale.State, sale.WaitsFor, sale.LeaseOwner, sale.LeaseUntil, sale.UpdatedAt = SaleDoubleSale, rev, "", time.Time{}, f.now()
	if _, err := f.Journal.UpdateSale(ctx, sale); err != nil {
		return false, err
	}
	msg := "double sale: this buyer checked out an artwork that soldout keeps for a buyer who waits after a failed hold; Sanity left as it is; give the piece to one of them and refund the others who paid (see `soldout sales list --state double_sale`)"
	if pending {
		msg = "double sale: this buyer checked out an artwork that soldout keeps for a buyer who waits after a failed hold, and their delayed payment is pending; Sanity left as it is; do not give them the piece: if the payment succeeds soldout logs it again, if it fails nothing is owed"
	}
	log.Error(msg,
		"email", sale.Email, "amount", sale.Amount, "currency", sale.Currency, "waiting", waiting)
	return true, nil
}

// waitersFor returns, among an artwork's sales, the buyers other than
// sale's who wait after a failed hold for the piece soldout keeps under rev:
// the buyer the keep is named after, those who came after it, even once
// that buyer's own payment has failed. None when they have all dropped out,
// or when rev names no sale of the journal's (a soldout write from before
// transaction ids named their sale).
func waitersFor(sales []Sale, sale Sale, rev string) []Sale {
	if !namesSale(sales, rev) {
		return nil
	}
	return FellowWaiters(sales, Sale{ArtworkID: sale.ArtworkID, SessionID: sale.SessionID, WaitsFor: rev})
}

// KeptForOthers reports whether the piece soldout made unavailable under
// rev, while the journal holds no active sale of it, is kept for buyers
// other than session's who wait after a failed hold; or may be: under a
// revision that names no sale of the journal's (an older version's keep),
// who waits cannot be told. sales are the artwork's rows. When it reports
// false, the waiters have all dropped out and the piece is the next
// buyer's.
func KeptForOthers(sales []Sale, artworkID, session, rev string) bool {
	return !namesSale(sales, rev) || len(waitersFor(sales, Sale{ArtworkID: artworkID, SessionID: session}, rev)) > 0
}

// namesSale reports whether rev, a soldout write, names one of sales.
func namesSale(sales []Sale, rev string) bool {
	return slices.ContainsFunc(sales, func(o Sale) bool { return writtenFor(rev, o.SessionID, o.ArtworkID) })
}

// patchLateDraft makes unavailable a draft that an editor opened between
// applyTake's read and its write: it copied isAvailable: true, and publishing
// it would put the sold piece back on sale.
func (f *Fulfiller) patchLateDraft(ctx context.Context, sale Sale) error {
	for range maxDecisions {
		d, err := f.Catalog.Draft(ctx, sale.ArtworkID)
		if err != nil || d == nil || !d.IsAvailable() {
			return err
		}
		err = f.Catalog.SetAvailable(ctx, saleTransaction(sale.SessionID, sale.ArtworkID, "draft", []Variant{*d}), false, []Variant{*d})
		if !errors.Is(err, ErrRevisionMismatch) {
			return err
		}
	}
	return Wrap(Unavailable, ErrContended, "draft of artwork %s kept changing while soldout wrote it", sale.ArtworkID)
}

// release hands an artwork back after a delayed payment failed, but only if
// soldout itself took it for this session and nobody changed it since.
func (f *Fulfiller) release(ctx context.Context, ev Event, id string, settled *[]Sale) (Outcome, error) {
	return f.decide(ctx, ev, id, false, func(sales []Sale, log *slog.Logger) (Outcome, error) {
		return f.releaseOwn(ctx, ev, id, sales, settled, log)
	})
}

func (f *Fulfiller) releaseOwn(ctx context.Context, ev Event, id string, sales []Sale, settled *[]Sale, log *slog.Logger) (Outcome, error) {
	now := f.now()
	own, _ := FindSales(sales, ev.Session.ID)
	if own == nil {
		// The failure overtook the completion (Stripe does not keep order).
		// The claim is committed before Sanity is written, so nothing was
		// taken for this session: a released row makes the late completion
		// a no-op.
		log.Info("delayed payment failed before its checkout completion arrived: recorded as released")
		return OutcomeReleased, f.Journal.InsertSale(ctx, Sale{
			ArtworkID: id, SessionID: ev.Session.ID, State: SaleReleased,
			Email: ev.Session.Email, Amount: ev.Session.AmountTotal, Currency: ev.Session.Currency,
			EventIDs: []string{ev.ID}, CreatedAt: now, UpdatedAt: now, Version: 1,
		})
	}
	switch own.State {
	case SaleReleased:
		return OutcomeDuplicate, nil
	case SaleSold:
		log.Warn("delayed payment failed for a sale already recorded as paid: left sold; check the payment in the Stripe Dashboard")
		return OutcomeIgnored, nil
	case SaleDoubleSale:
		// Nothing was written to Sanity for this buyer and nothing is owed.
		// But a held sale released meanwhile left the piece unavailable for
		// this buyer's sake (see below), and now nobody waits for it.
		_, active := FindSales(sales, ev.Session.ID)
		fellows := FellowWaiters(sales, *own)
		if active == nil && len(fellows) == 0 {
			log.Warn("the delayed payment of a double-sale buyer failed: nothing is owed, but nobody holds this artwork any more and it may still be marked unavailable; make it available in the Studio if it is for sale")
		}
		// The hold this buyer waited for is not recorded: its own release,
		// were it deciding now, records this row (it keeps the piece for
		// this buyer), and the two records conflict there.
		dependOn(settled, fellows...)
		f.markReleased(ev, *own, settled)
		return OutcomeReleased, nil
	}
	if own.AppliedRev == "" && own.LeaseOwner != f.Owner && own.LeaseUntil.After(now) {
		return "", Wrap(Unavailable, ErrBusy, "artwork %s; Stripe will retry", id)
	}
	art, err := f.Catalog.Artwork(ctx, id)
	if err != nil {
		return "", err
	}
	pub := art.Published
	// mine: written by soldout for this sale, known to the journal or not
	// (a crash between a write and its record). The exact AppliedRev also
	// counts, for a sale applied before transaction ids named their sale.
	mine := func(v Variant) bool {
		return writtenFor(v.Rev, own.SessionID, id) || v.Rev == own.AppliedRev && OwnTransaction(v.Rev)
	}
	// Sanity shows only what soldout did for this sale: its hold, its own
	// release, or nothing yet.
	untouched := pub != nil && (mine(*pub) || own.AppliedRev == "" && pub.IsAvailable())
	out := OutcomeReleased
	switch waiting := waitingFor(sales, *own); {
	case pub == nil:
		log.Warn("delayed payment failed, but the artwork no longer exists in Sanity: released in the journal, nothing to give back; if it was deleted by mistake, restore it and check isAvailable")
	case len(waiting) > 0:
		// Another buyer checked it out while it was held: re-offering it
		// would sell it a third time. What is offered now (an earlier
		// delivery of this failure that the journal did not hear of, an
		// editor, a hold never written) is closed for that buyer: closing
		// never re-offers anyone's change.
		out = OutcomeReleaseSkipped
		if open := availableVariants(art.Variants()); len(open) > 0 {
			if err := f.Catalog.SetAvailable(ctx, saleTransaction(waiting[0].SessionID, id, "keep", open), false, open); err != nil {
				return "", err
			}
			if err := f.patchLateDraft(ctx, waiting[0]); err != nil {
				return "", err
			}
		}
		var buyers []string
		for _, w := range waiting {
			buyers = append(buyers, w.SessionID+" ("+w.Email+")")
		}
		log.Error("delayed payment failed, but other buyers checked out this artwork while it was held (double sales): kept unavailable for them; give it only to one whose payment has arrived (`soldout reconcile` tells, buyer by buyer) and refund the others who paid; soldout logs a pending buyer again when their payment succeeds or fails",
			"waiting", buyers)
		dependOn(settled, waiting...)
	case !untouched:
		// Changed since soldout's write, or withdrawn by someone else while
		// soldout was applying the sale (AppliedRev is then not soldout's).
		out = OutcomeReleaseSkipped
		log.Warn("delayed payment failed, but the artwork was changed in Sanity since soldout took it, or was withdrawn by someone else: left unavailable; check it in the Studio and make it available by hand if it is still for sale",
			"current_rev", pub.Rev, "soldout_rev", own.AppliedRev)
	case !pub.IsAvailable():
		// soldout's hold: give back every version soldout took for it.
		var revert []Variant
		for _, v := range art.Variants() {
			if mine(v) && !v.IsAvailable() {
				revert = append(revert, v)
			}
		}
		if err := f.Catalog.SetAvailable(ctx, saleTransaction(own.SessionID, id, "release", revert), true, revert); err != nil {
			return "", err
		}
	default:
		// Available: an earlier delivery released it and the journal did
		// not hear, or the hold was never written.
	}
	f.markReleased(ev, *own, settled)
	return out, nil
}

// FellowWaiters returns the other double sales that wait for the same sale
// as s, among an artwork's rows: the piece is kept for them too once that
// sale's hold failed. Rows of an older, settled double sale do not count;
// a row from before WaitsFor existed, which names nothing, counts as a
// fellow of every waiter (the cautious side: it keeps the piece).
func FellowWaiters(sales []Sale, s Sale) []Sale {
	root := waitRoot(sales, s)
	var fellows []Sale
	for _, o := range sales {
		if o.State != SaleDoubleSale || o.SessionID == s.SessionID {
			continue
		}
		if r := waitRoot(sales, o); r == root || r == "" || root == "" {
			fellows = append(fellows, o)
		}
	}
	return fellows
}

// waitRoot follows a double sale's WaitsFor to the session of the sale it
// lost to: a revision soldout wrote names a sale, and a keep is named after
// a buyer who waited themselves (and may have dropped out since: their row
// still says what they waited for).
func waitRoot(sales []Sale, s Sale) string {
	for range len(sales) + 1 { // a bound: WaitsFor never loops, but rows are data
		if !OwnTransaction(s.WaitsFor) {
			return s.WaitsFor // a session, or "" on a row from before WaitsFor
		}
		i := slices.IndexFunc(sales, func(o Sale) bool { return writtenFor(s.WaitsFor, o.SessionID, o.ArtworkID) })
		if i < 0 {
			return s.WaitsFor
		}
		if sales[i].WaitsFor == "" {
			return sales[i].SessionID // the failed hold itself
		}
		s = sales[i]
	}
	return s.WaitsFor
}

// waitingFor returns the double sales that wait for own's sale (waitRoot:
// directly, or through a keep made for one of them). A row from before
// WaitsFor existed counts when it was recorded since own began.
func waitingFor(sales []Sale, own Sale) []Sale {
	var waiting []Sale
	for _, s := range sales {
		if s.State != SaleDoubleSale || s.SessionID == own.SessionID {
			continue
		}
		if waitRoot(sales, s) == own.SessionID ||
			s.WaitsFor == "" && !s.CreatedAt.Before(own.CreatedAt) {
			waiting = append(waiting, s)
		}
	}
	return waiting
}

// dependOn adds rows of other sessions that this round decided from,
// unchanged, to the rows recorded with the outcome. Each is rewritten under
// its version check, so the record fails with ErrStale, and Handle decides
// again, if another process changed one since the round read it. The
// in-process lock orders one process's decisions; this orders two
// replicas' decisions that read each other's rows (a hold and the double
// sale waiting for it, both released at once), which would otherwise both
// commit on what they read and leave the piece unavailable for nobody.
func dependOn(settled *[]Sale, rows ...Sale) {
	*settled = append(*settled, rows...)
}

// markReleased adds s, released by ev, to the rows recorded with ev's outcome.
func (f *Fulfiller) markReleased(ev Event, s Sale, settled *[]Sale) {
	s.State, s.LeaseOwner, s.LeaseUntil, s.UpdatedAt = SaleReleased, "", time.Time{}, f.now()
	s.EventIDs = append(s.EventIDs, ev.ID)
	*settled = append(*settled, s)
}

// saleTransaction is the Sanity transaction id of a write made for the sale
// of artwork to session: "soldout-<sale>-<write>". Sanity sets the _rev of
// every document a transaction writes to its id, so <sale> tells later
// which versions soldout made unavailable for which sale, even when the
// journal did not hear of the write (a crash). <write> covers the kind of
// write and every document and revision it is guarded by: a retry of the
// very same write, whose answer was lost, keeps its id and Sanity refuses
// to apply it twice, while any other write gets an id of its own (Sanity
// also refuses a committed id, and soldout reads that as done).
func saleTransaction(session, artwork, kind string, guards []Variant) string {
	parts := []string{kind}
	for _, v := range guards {
		parts = append(parts, v.ID, v.Rev)
	}
	return salePrefix(session, artwork) + digest(parts...)
}

// salePrefix starts the id of every write made for one sale.
func salePrefix(session, artwork string) string {
	return transactionPrefix + digest(session, artwork) + "-"
}

func digest(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:8])
}

// writtenFor reports whether rev is the id of a write soldout made for the
// sale of artwork to session.
func writtenFor(rev, session, artwork string) bool {
	return strings.HasPrefix(rev, salePrefix(session, artwork))
}

// transactionPrefix marks soldout's writes: Sanity sets a document's _rev to
// the id of the transaction that last wrote it, and its own ids never start
// with this.
const transactionPrefix = "soldout-"

// OwnTransaction reports whether rev, a document's _rev, is the id of a
// soldout transaction: soldout wrote the document last.
func OwnTransaction(rev string) bool { return strings.HasPrefix(rev, transactionPrefix) }

func outcomeOf(s SaleState) Outcome {
	if s == SaleHeld {
		return OutcomeHeld
	}
	return OutcomeSold
}

func availableVariants(vs []Variant) []Variant {
	out := vs[:0:0]
	for _, v := range vs {
		if v.IsAvailable() {
			out = append(out, v)
		}
	}
	return out
}

// FindSales returns, among an artwork's sale rows, the row of session (nil
// if none) and the active row of another session (nil if none): the two
// that the rules, reconciliation and the operator's listings decide on.
func FindSales(sales []Sale, session string) (own, active *Sale) {
	for i := range sales {
		switch {
		case sales[i].SessionID == session:
			own = &sales[i]
		case sales[i].State.Active():
			active = &sales[i]
		}
	}
	return own, active
}

func uniq(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func modeOf(livemode bool) StripeMode {
	if livemode {
		return ModeLive
	}
	return ModeTest
}
