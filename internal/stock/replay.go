package stock

import "context"

// Reapply runs ev through the rules like Handle, for an operator who knows
// that Sanity may no longer match the journal (`soldout replay --force`,
// `soldout reconcile --apply`). The rules are idempotent, so what is in place
// stays as it is, with one addition: a sale the journal records as applied,
// whose artwork Sanity offers for sale again (an editor set it back, a stale
// draft was published), is marked unapplied first, so that the rules write
// the artwork unavailable once more.
//
// ev is journaled under its own ID, which the caller makes new (replay:…,
// reconcile:…): under the id of an event whose outcome is final, Handle
// would only answer duplicate.
func (f *Fulfiller) Reapply(ctx context.Context, ev Event) (Result, error) {
	if act := f.actionFor(ev); act == actSell || act == actHold {
		for _, id := range uniq(ev.Session.ArtworkIDs) {
			if !ValidArtworkID(id) {
				continue // the rules report it; it never reaches Sanity
			}
			if err := f.reopenSale(ctx, ev, id); err != nil {
				return Result{}, err
			}
		}
	}
	return f.Handle(ctx, ev)
}

// reopenSale clears AppliedRev of the session's active sale of artwork id
// when some version of the artwork is for sale in Sanity again.
func (f *Fulfiller) reopenSale(ctx context.Context, ev Event, id string) error {
	sales, err := f.Journal.Sales(ctx, id)
	if err != nil {
		return err
	}
	own, _ := FindSales(sales, ev.Session.ID)
	if own == nil || !own.State.Active() || own.AppliedRev == "" {
		return nil
	}
	art, err := f.Catalog.Artwork(ctx, id)
	if err != nil {
		return err
	}
	if len(availableVariants(art.Variants())) == 0 {
		return nil
	}
	f.Logger.Warn("artwork is for sale in Sanity again although the journal records it taken by this session: writing it unavailable again",
		"event_id", ev.ID, "session_id", ev.Session.ID, "artwork_id", id, "state", own.State, "soldout_rev", own.AppliedRev)
	own.AppliedRev, own.UpdatedAt = "", f.now()
	_, err = f.Journal.UpdateSale(ctx, *own)
	return err
}
