package stock

import (
	"context"
	"time"
)

// Outcome is what soldout did with an event or with one artwork of it.
type Outcome string

const (
	OutcomeSold               Outcome = "sold"
	OutcomeHeld               Outcome = "held"
	OutcomeReleased           Outcome = "released"
	OutcomeReleaseSkipped     Outcome = "release_skipped" // someone changed the artwork since soldout took it
	OutcomeDuplicate          Outcome = "duplicate"
	OutcomeDoubleSale         Outcome = "double_sale"
	OutcomeAlreadyUnavailable Outcome = "already_unavailable"
	OutcomeIgnored            Outcome = "ignored"
	OutcomeInvalidMetadata    Outcome = "invalid_metadata"
	// OutcomeFailed marks an event that was not applied; Stripe retries it.
	OutcomeFailed Outcome = "failed"
)

// Final reports whether an event with this outcome needs no more work, so
// that a redelivery is a duplicate. An empty outcome means the event was
// recorded but processing never finished (a crash).
func (o Outcome) Final() bool { return o != "" && o != OutcomeFailed }

// SaleState is the state of one artwork's sale to one Checkout Session.
type SaleState string

const (
	// SaleHeld: paid by a delayed method; the piece is reserved while the money arrives.
	SaleHeld SaleState = "held"
	SaleSold SaleState = "sold"
	// SaleReleased: the delayed payment failed, or the sale was handed back.
	SaleReleased SaleState = "released"
	// SaleDoubleSale: the buyer paid for a piece that another session had
	// already taken; a person decides the refund.
	SaleDoubleSale SaleState = "double_sale"
)

// Active reports whether the state holds the artwork. The journal keeps at
// most one active sale per artwork; that unique rule is what decides a race.
func (s SaleState) Active() bool { return s == SaleHeld || s == SaleSold }

// Sale is the journal's row for one artwork and one Checkout Session.
type Sale struct {
	ArtworkID string
	SessionID string
	State     SaleState
	Email     string
	Amount    int64 // minor units, the session's amount_total
	Currency  string
	EventIDs  []string // every event that touched this row, oldest first
	// AppliedRev is the Sanity transaction id whose commit made the artwork
	// unavailable for this sale; empty while the write is still to be done.
	// Sanity sets a document's _rev to the id of the transaction that last
	// wrote it, so comparing _rev with AppliedRev tells whether anybody
	// changed the artwork since.
	AppliedRev string
	// WaitsFor, on a double sale, names the sale it lost to: that sale's
	// session, or, when the journal held no active sale (a buyer kept
	// waiting after a failed hold), the soldout revision found in Sanity,
	// whose id names the sale it was written for. A failed hold keeps the
	// piece unavailable for the buyers waiting for it.
	WaitsFor string
	// LeaseOwner and LeaseUntil say which process is applying the sale to
	// Sanity. An expired lease may be taken over: a crashed replica blocks
	// nobody for longer than the lease.
	LeaseOwner string
	LeaseUntil time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Version guards UpdateSale: a row is written only if nobody else wrote
	// it since it was read. InsertSale stores new rows at version 1.
	Version int64
}

// EventRecord is the journal's row for one Stripe event.
type EventRecord struct {
	ID            string
	Type          string
	Created       time.Time
	Livemode      bool
	SessionID     string
	ArtworkIDs    []string
	FirstReceived time.Time
	LastReceived  time.Time
	Attempts      int
	Outcome       Outcome // "" until processing finished
	Detail        string  // per-artwork outcomes, "id=outcome" joined by spaces
	LastError     string
	Payload       []byte
}

// Journal is soldout's durable record. Implementations must make every
// method safe for concurrent use by several processes sharing the database.
type Journal interface {
	// RecordDelivery records that ev arrived: a new row on the first
	// delivery, attempts and last_received bumped on the next ones. It
	// returns the row as stored, whose Outcome is the one from before this
	// delivery.
	RecordDelivery(ctx context.Context, ev Event, at time.Time) (EventRecord, error)
	// FinishEvent stores the outcome of processing an event and, in the
	// same transaction, the sale rows the processing settled, each as
	// UpdateSale would write it (UpdatedAt zero: at). If one of them was
	// written by somebody else meanwhile, nothing is stored: ErrStale.
	FinishEvent(ctx context.Context, eventID string, outcome Outcome, detail, lastError string, at time.Time, settled ...Sale) error
	// Sales returns every sale row of an artwork.
	Sales(ctx context.Context, artworkID string) ([]Sale, error)
	// InsertSale adds a row. It fails with ErrSaleTaken if s is active and
	// another active row exists for the artwork, and with ErrSaleExists if
	// the (artwork, session) row exists.
	InsertSale(ctx context.Context, s Sale) error
	// InsertDoubleSale inserts s, a double sale, and rewrites winner's row
	// unchanged under its version check (ErrStale), in one transaction, so
	// that a release of winner that did not see s fails to record itself;
	// winner nil: s alone.
	InsertDoubleSale(ctx context.Context, s Sale, winner *Sale) error
	// UpdateSale rewrites the row of (s.ArtworkID, s.SessionID) if its
	// version is still s.Version, and returns it with the new version.
	// ErrStale when another writer came first; ErrSaleTaken when s becomes
	// active while another active row exists.
	UpdateSale(ctx context.Context, s Sale) (Sale, error)
}
