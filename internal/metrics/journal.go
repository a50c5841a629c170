package metrics

import (
	"context"
	"errors"
	"time"

	"soldout/internal/stock"
)

// Journal operations, as the op label of soldout_journal_errors_total.
var journalOps = []string{"record_delivery", "finish_event", "sales", "insert_sale", "insert_double_sale", "update_sale", "end_reservation"}

// Journal wraps the journal the Fulfiller uses, so that m counts what the
// journal alone can tell exactly.
//
// Journal errors are counted at this boundary, where nothing else is mixed
// in, rather than guessed from the codes of the errors an event ends with.
// A lost race (stock.Conflict: ErrSaleTaken, ErrSaleExists, ErrStale) is the
// journal doing its job and is not counted; nor is a call that failed only
// because its caller's time ran out, since the time may have gone to Sanity
// (a slow journal still shows, as 503s and event durations).
//
// Double sales are counted when their row is inserted, which happens once
// per artwork and session, in one process: counting double_sale outcomes
// instead would count one sale again for every later event of the same
// session (its success-page fulfilment, its async payment events).
func (m *Metrics) Journal(j stock.Journal) stock.Journal { return observedJournal{j, m} }

type observedJournal struct {
	j stock.Journal
	m *Metrics
}

// checkJournal counts err, a journal call's, unless it is a lost race or
// only its caller's time running out, and returns it.
func (m *Metrics) checkJournal(ctx context.Context, op string, err error) error {
	if err == nil || stock.ErrorCode(err) == stock.Conflict {
		return err
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	m.journalError(op)
	return err
}

func (o observedJournal) RecordDelivery(ctx context.Context, ev stock.Event, at time.Time) (stock.EventRecord, error) {
	rec, err := o.j.RecordDelivery(ctx, ev, at)
	return rec, o.m.checkJournal(ctx, "record_delivery", err)
}

func (o observedJournal) FinishEvent(ctx context.Context, eventID string, outcome stock.Outcome, detail, lastError string, at time.Time, settled ...stock.Sale) error {
	return o.m.checkJournal(ctx, "finish_event", o.j.FinishEvent(ctx, eventID, outcome, detail, lastError, at, settled...))
}

func (o observedJournal) Sales(ctx context.Context, artworkID string) ([]stock.Sale, error) {
	sales, err := o.j.Sales(ctx, artworkID)
	return sales, o.m.checkJournal(ctx, "sales", err)
}

func (o observedJournal) InsertSale(ctx context.Context, s stock.Sale) error {
	return o.m.checkJournal(ctx, "insert_sale", o.j.InsertSale(ctx, s))
}

func (o observedJournal) InsertDoubleSale(ctx context.Context, s stock.Sale, winner *stock.Sale) error {
	err := o.j.InsertDoubleSale(ctx, s, winner)
	if err == nil {
		o.m.DoubleSale()
	}
	return o.m.checkJournal(ctx, "insert_double_sale", err)
}

func (o observedJournal) UpdateSale(ctx context.Context, s stock.Sale) (stock.Sale, error) {
	out, err := o.j.UpdateSale(ctx, s)
	if err == nil && s.State == stock.SaleDoubleSale {
		o.m.DoubleSale() // a claim that found the piece kept for a waiting buyer
	}
	return out, o.m.checkJournal(ctx, "update_sale", err)
}

// Reservations wraps the reservations the Fulfiller ends when a session's
// event arrives (checkout with reservation), counting their failures as
// Journal does: they are journal calls of the same pipeline.
func (m *Metrics) Reservations(r stock.Reservations) stock.Reservations {
	return observedReservations{r, m}
}

type observedReservations struct {
	stock.Reservations // the storefront's calls, passed through
	m                  *Metrics
}

func (o observedReservations) EndReservation(ctx context.Context, sessionID string, state stock.ReservationState, at time.Time) (stock.Reservation, bool, error) {
	r, ok, err := o.Reservations.EndReservation(ctx, sessionID, state, at)
	return r, ok, o.m.checkJournal(ctx, "end_reservation", err)
}
