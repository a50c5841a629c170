package stock

// Checkout with reservation. The webhook alone can only detect a double sale
// once two buyers have both paid. Here soldout opens the Checkout Session
// itself, and only after the journal has given that session the artwork's one
// reservation: a second buyer is refused before Stripe is even asked, so two
// open sessions for one piece never exist. The reservation ends when Stripe
// expires the session (the piece is free again), when the session completes
// (the sale takes over, under the webhook's rules), or at the latest
// ReservationGrace after the session's expires_at, without any sweeper.

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ReservationGrace is how long past its session's expires_at a reservation
// still holds when no event came. It covers the clock difference between
// soldout and Stripe; a session that completed late is caught by asking
// Stripe before the reservation is taken over (see Checkout.Start).
const ReservationGrace = 5 * time.Minute

// ReservationState is the state of an artwork's reservation row.
type ReservationState string

const (
	// ReservationOpen: the claim's session holds the artwork until HeldUntil.
	ReservationOpen ReservationState = "open"
	// ReservationConverted: the session completed; the sale holds it now.
	ReservationConverted ReservationState = "converted"
	// ReservationReleased: soldout let go, because Stripe opened no session
	// or the session's delayed payment failed.
	ReservationReleased ReservationState = "released"
	// ReservationExpired: Stripe expired the session.
	ReservationExpired ReservationState = "expired"
)

// Reservation is the journal's row for one artwork's latest claim.
type Reservation struct {
	ArtworkID string
	// ClaimID is random per claim; the Stripe idempotency key is derived
	// from it, so a retried create cannot open a second session.
	ClaimID   string
	SessionID string // "" until Stripe answered
	State     ReservationState
	ExpiresAt time.Time // the session's expires_at
	HeldUntil time.Time // ExpiresAt plus ReservationGrace
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Live reports whether r holds its artwork at now.
func (r Reservation) Live(now time.Time) bool {
	return r.State == ReservationOpen && now.Before(r.HeldUntil)
}

// Reservations is the journal's side of checkout with reservation. Every
// method must be safe for concurrent use by several processes sharing the
// database.
type Reservations interface {
	// ClaimReservation stores r, an open claim, as its artwork's reservation
	// unless another one is live at r.CreatedAt; then it returns that one
	// and false. One statement decides, so of two racing claims exactly one
	// wins, whichever replica makes them.
	ClaimReservation(ctx context.Context, r Reservation) (holder Reservation, claimed bool, err error)
	// SetReservationSession records the session Stripe opened for an open
	// claim; ErrStale if the claim no longer holds.
	SetReservationSession(ctx context.Context, artworkID, claimID, sessionID string, at time.Time) error
	// ReleaseReservation ends an open claim as released; a claim that is no
	// longer open is left alone.
	ReleaseReservation(ctx context.Context, artworkID, claimID string, at time.Time) error
	// EndReservation moves the open reservation of a session to state and
	// returns it; false when the session holds none (any more).
	EndReservation(ctx context.Context, sessionID string, state ReservationState, at time.Time) (Reservation, bool, error)
	// Reservation returns the artwork's reservation row; nil if there is none.
	Reservation(ctx context.Context, artworkID string) (*Reservation, error)
}

// ErrSold: the artwork is not for sale (isAvailable is false, or its session
// completed while the webhook is still on its way).
var ErrSold = errors.New("artwork is sold")

// ReservedError: another buyer's open Checkout Session holds the artwork.
type ReservedError struct {
	Until time.Time // when the hold ends at the latest
}

func (e *ReservedError) Error() string {
	return "reserved by another buyer's checkout until " + e.Until.UTC().Format(time.RFC3339)
}

func reserved(id string, until time.Time) error {
	return Wrap(Conflict, &ReservedError{Until: until}, "artwork %s", id)
}

func sold(id string) error { return Wrap(Conflict, ErrSold, "artwork %s", id) }

// Product is an artwork as the checkout needs it.
type Product struct {
	ID    string
	Title string // the line item's name
	// Price is in major units, as the decimal literal stored (e.g. "1250.5"),
	// so that MinorUnits converts it exactly; "" when the document has none.
	Price     string
	Currency  string // lowercase ISO 4217; "" when the document has none
	ImageURL  string // "" when there is none
	Available bool
}

// Products reads artworks for the checkout.
type Products interface {
	// Product reads the published artwork, strongly consistently; a NotFound
	// error when it does not exist.
	Product(ctx context.Context, id string) (Product, error)
}

// CheckoutRequest is the Checkout Session soldout asks Stripe for: payment
// mode, one line item, metadata.artworkId.
type CheckoutRequest struct {
	ArtworkID      string
	ProductName    string
	ImageURL       string // optional
	UnitAmount     int64  // minor units
	Currency       string
	ExpiresAt      time.Time
	IdempotencyKey string
}

// CheckoutSession is what soldout reads of a Checkout Session.
type CheckoutSession struct {
	ID        string
	URL       string // the hosted payment page, while open
	Status    string // open, complete, expired
	ExpiresAt time.Time
}

// Stripe Checkout Session statuses.
const (
	SessionOpen     = "open"
	SessionComplete = "complete"
)

// CheckoutSessions is Stripe Checkout as the reservation rules need it.
type CheckoutSessions interface {
	CreateSession(ctx context.Context, req CheckoutRequest) (CheckoutSession, error)
	// Session retrieves one; a NotFound error when Stripe has no such session.
	Session(ctx context.Context, id string) (CheckoutSession, error)
	// ExpireSession ends an open session, so that nobody can pay it.
	ExpireSession(ctx context.Context, id string) error
}

// Checkout opens a Stripe Checkout Session for one artwork while holding it
// for that session alone. It is safe for concurrent use, in several
// processes sharing the journal.
type Checkout struct {
	Products     Products
	Sessions     CheckoutSessions
	Reservations Reservations
	Logger       *slog.Logger
	// TTL sets the session's expires_at from now: Stripe refuses less than
	// 30 minutes, so keep a margin against clock skew; at most 24 h.
	TTL time.Duration
	// DefaultCurrency prices artworks that have no currency.
	DefaultCurrency string
	Now             func() time.Time

	mu    sync.Mutex
	ended map[string]endedSession // lapsed reservations' sessions Stripe called ended, by id
}

// endedSession is Stripe's final word on a lapsed reservation's session.
type endedSession struct {
	complete bool // else expired (or unknown to Stripe)
	at       time.Time
}

// endedKept is how long Stripe's final word on a lapsed reservation's
// session is taken as said: complete and expired are final, and the
// piece's page loads must not each ask Stripe again while the webhook is
// late.
const endedKept = 10 * time.Minute

func (c *Checkout) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Start reserves the artwork and opens its Checkout Session. A sold piece is
// a Conflict wrapping ErrSold, a held one a Conflict wrapping *ReservedError,
// an unknown one NotFound; when Stripe fails the reservation is released at
// once and the error is Upstream.
func (c *Checkout) Start(ctx context.Context, artworkID string) (CheckoutSession, error) {
	p, err := c.product(ctx, artworkID)
	if err != nil {
		return CheckoutSession{}, err
	}
	if !p.Available {
		return CheckoutSession{}, sold(artworkID)
	}
	req, err := c.request(p)
	if err != nil {
		return CheckoutSession{}, err
	}
	now := c.now()
	if err := c.settleLapsed(ctx, artworkID, now); err != nil {
		return CheckoutSession{}, err
	}
	r, err := c.claim(ctx, artworkID, now)
	if err != nil {
		return CheckoutSession{}, err
	}
	// The first read may predate a sale that converted the reservation this
	// claim replaced: the webhook writes Sanity before it converts, so a
	// read now that the claim holds sees that sale.
	if p, err := c.product(ctx, artworkID); err != nil || !p.Available {
		c.release(ctx, r)
		if err == nil {
			err = sold(artworkID)
		}
		return CheckoutSession{}, err
	}
	req.ExpiresAt, req.IdempotencyKey = r.ExpiresAt, "soldout-checkout-"+r.ClaimID
	s, err := c.Sessions.CreateSession(ctx, req)
	if err != nil {
		c.release(ctx, r)
		return CheckoutSession{}, Wrap(Upstream, err, "Stripe did not open a checkout for artwork %s, which stays available; try again", artworkID)
	}
	if err := c.Reservations.SetReservationSession(ctx, artworkID, r.ClaimID, s.ID, c.now()); err != nil {
		// Nobody has the session's link, so nobody can pay through it; it
		// is expired all the same, so that no completion of it can ever
		// come for a piece offered again.
		c.expire(ctx, artworkID, s.ID)
		c.release(ctx, r)
		return CheckoutSession{}, err
	}
	return s, nil
}

// expire ends a session nobody was given, even if the caller has gone. If
// Stripe refuses, the session still lapses by itself at its expires_at, and
// its link was never handed out.
func (c *Checkout) expire(ctx context.Context, artworkID, sessionID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), journalWriteTimeout)
	defer cancel()
	if err := c.Sessions.ExpireSession(ctx, sessionID); err != nil {
		c.Logger.Warn("could not expire a Checkout Session nobody was given: it lapses by itself at its expires_at",
			"artwork_id", artworkID, "session_id", sessionID, "err", err)
	}
}

// product reads the artwork; an id from a browser that is not a published
// Sanity id never reaches Sanity.
func (c *Checkout) product(ctx context.Context, id string) (Product, error) {
	if !ValidArtworkID(id) {
		return Product{}, Errorf(Invalid, "%.64q is not an artwork id", id)
	}
	return c.Products.Product(ctx, id)
}

// request builds the session's line item from the artwork.
func (c *Checkout) request(p Product) (CheckoutRequest, error) {
	if strings.TrimSpace(p.Title) == "" {
		return CheckoutRequest{}, Errorf(Misconfigured, "artwork %s has no title, which Stripe needs as the product name; set it in the Studio", p.ID)
	}
	currency := p.Currency
	if currency == "" {
		currency = c.DefaultCurrency
	}
	if p.Price == "" {
		return CheckoutRequest{}, Errorf(Misconfigured, "artwork %s has no price; set it in the Studio", p.ID)
	}
	amount, err := MinorUnits(p.Price, currency)
	if err != nil {
		return CheckoutRequest{}, Wrap(Misconfigured, err, "artwork %s: fix its price in the Studio", p.ID)
	}
	return CheckoutRequest{ArtworkID: p.ID, ProductName: p.Title, ImageURL: p.ImageURL, UnitAmount: amount, Currency: currency}, nil
}

// settleLapsed looks at the artwork's reservation before claiming. A live
// one means reserved. An open one past its hold may belong to a session that
// completed while its webhook is still on its way (soldout or its webhook was
// down): Stripe is asked before the piece is offered again, so that a late
// webhook cannot turn into a double sale.
func (c *Checkout) settleLapsed(ctx context.Context, id string, now time.Time) error {
	cur, err := c.lapsed(ctx, id, now)
	if cur == nil || err != nil {
		return err
	}
	if err := c.askStripe(ctx, cur, now); err != nil {
		return err
	}
	_, _, err = c.Reservations.EndReservation(ctx, cur.SessionID, ReservationExpired, now)
	return err
}

// lapsed returns the artwork's reservation when it is open past its hold
// with a session someone may have paid; a live one is a reserved error.
func (c *Checkout) lapsed(ctx context.Context, id string, now time.Time) (*Reservation, error) {
	cur, err := c.Reservations.Reservation(ctx, id)
	switch {
	case err != nil || cur == nil || cur.State != ReservationOpen:
		return nil, err
	case cur.Live(now):
		return nil, reserved(id, cur.HeldUntil)
	case cur.SessionID == "":
		return nil, nil // Stripe never answered that claim: nobody holds a link to pay with
	}
	return cur, nil
}

// askStripe says whether a lapsed reservation's session still holds the
// piece: sold when it completed (its webhook will mark the artwork and end
// the reservation), reserved while Stripe still has it open, nil when it
// expired or Stripe has no such session.
func (c *Checkout) askStripe(ctx context.Context, cur *Reservation, now time.Time) error {
	c.mu.Lock()
	ended, known := c.ended[cur.SessionID]
	for session, e := range c.ended {
		if now.Sub(e.at) > endedKept {
			delete(c.ended, session)
		}
	}
	c.mu.Unlock()
	if !known || now.Sub(ended.at) > endedKept {
		s, err := c.Sessions.Session(ctx, cur.SessionID)
		switch {
		case ErrorCode(err) == NotFound:
		case err != nil:
			return Wrap(Upstream, err, "asking Stripe whether the lapsed checkout of artwork %s was paid", cur.ArtworkID)
		case s.Status == SessionOpen:
			// Stripe's clock is behind soldout's: it expires the session soon.
			return reserved(cur.ArtworkID, now.Add(ReservationGrace))
		}
		ended = endedSession{complete: err == nil && s.Status == SessionComplete, at: now}
		c.mu.Lock()
		if c.ended == nil {
			c.ended = map[string]endedSession{}
		}
		c.ended[cur.SessionID] = ended
		c.mu.Unlock()
	}
	if ended.complete {
		return sold(cur.ArtworkID)
	}
	return nil
}

// claim takes the artwork's reservation for a new claim. It runs to its
// answer even if the caller gives up: a claim committed after its caller
// stopped waiting would hold the piece, with no session, until it lapses.
func (c *Checkout) claim(ctx context.Context, id string, now time.Time) (Reservation, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), journalWriteTimeout)
	defer cancel()
	expires := now.Add(c.TTL).Truncate(time.Second) // Stripe keeps seconds
	r := Reservation{
		ArtworkID: id, ClaimID: rand.Text(), State: ReservationOpen,
		ExpiresAt: expires, HeldUntil: expires.Add(ReservationGrace), CreatedAt: now, UpdatedAt: now,
	}
	for range maxDecisions {
		holder, claimed, err := c.Reservations.ClaimReservation(ctx, r)
		switch {
		case err != nil:
			return Reservation{}, err
		case claimed:
			return r, nil
		case holder.Live(now):
			return Reservation{}, reserved(id, holder.HeldUntil)
		}
		// The holder let go between the claim and the read: claim again.
	}
	return Reservation{}, Errorf(Unavailable, "artwork %s: its reservation kept changing; try again", id)
}

// journalWriteTimeout bounds a reservation write (or the expiry of a session
// nobody was given) that runs on after its caller has gone.
const journalWriteTimeout = 2 * time.Second

// release gives the artwork back at once, even if the caller has gone.
func (c *Checkout) release(ctx context.Context, r Reservation) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), journalWriteTimeout)
	defer cancel()
	if err := c.Reservations.ReleaseReservation(ctx, r.ArtworkID, r.ClaimID, c.now()); err != nil {
		c.Logger.Warn("could not release the reservation: the artwork stays held until it lapses",
			"artwork_id", r.ArtworkID, "held_until", r.HeldUntil, "err", err)
	}
}

// Availability is what the storefront's Buy button needs.
type Availability struct {
	Available     bool      // a Buy would open a checkout now
	ReservedUntil time.Time // zero unless another buyer's checkout holds the artwork
}

// Availability reads the artwork (Sanity's live API) and its reservation.
func (c *Checkout) Availability(ctx context.Context, artworkID string) (Availability, error) {
	p, err := c.product(ctx, artworkID)
	if err != nil {
		return Availability{}, err
	}
	now := c.now()
	cur, err := c.lapsed(ctx, artworkID, now)
	if cur != nil {
		// As a Buy would decide: a reservation past its hold whose session
		// was paid means sold, though the webhook is still on its way. A
		// page load is no reason to fail: when Stripe cannot tell, Sanity's
		// answer stands (a Buy asks again), and a session Stripe expired
		// is ended by the next Buy.
		if err = c.askStripe(ctx, cur, now); ErrorCode(err) == Upstream {
			c.Logger.Warn("availability: Stripe could not say whether a lapsed checkout was paid; answering from Sanity (a Buy asks again)",
				"artwork_id", artworkID, "session_id", cur.SessionID, "err", err)
			err = nil
		}
	}
	var re *ReservedError
	switch {
	case errors.As(err, &re):
		return Availability{ReservedUntil: re.Until}, nil
	case errors.Is(err, ErrSold):
		return Availability{}, nil
	case err != nil:
		return Availability{}, err
	}
	return Availability{Available: p.Available}, nil
}

// settleReservation ends the reservation of ev's session once ev is applied:
// an expired session frees its artwork (Sanity is not touched: nothing was
// written for it), a completed one hands over to its sale. A failed delayed
// payment frees it too: the reservation is still open only when the
// session's completion was never applied, and Stripe goes on calling such a
// session complete, which a lapsed reservation would take for a sale for
// ever. It does nothing without Reservations.
func (f *Fulfiller) settleReservation(ctx context.Context, ev Event, res Result) (Result, error) {
	var state ReservationState
	switch ev.Type {
	case CheckoutExpired:
		state = ReservationExpired
	case CheckoutCompleted:
		state = ReservationConverted
	case CheckoutAsyncFailed:
		state = ReservationReleased
	}
	if f.Reservations == nil || state == "" || ev.Session.ID == "" {
		return res, nil
	}
	r, ended, err := f.Reservations.EndReservation(ctx, ev.Session.ID, state, f.now())
	if err != nil || !ended || state != ReservationExpired {
		return res, err
	}
	f.Logger.Info("checkout session expired: artwork free for other buyers", "event_id", ev.ID, "session_id", ev.Session.ID, "artwork_id", r.ArtworkID)
	return Result{Outcome: OutcomeReleased, Artworks: []ArtworkResult{{ArtworkID: r.ArtworkID, Outcome: OutcomeReleased}}}, nil
}

// Stripe's currency exponents (docs.stripe.com/currencies): amounts are in
// the smallest unit, which is the unit itself for zero-decimal currencies.
var (
	zeroDecimal  = set("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf")
	threeDecimal = set("bhd", "jod", "kwd", "omr", "tnd")
)

func set(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}

// A non-negative JSON number; the exponent is bounded so that a hostile
// value cannot make the conversion build a huge string.
var decimalPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]{1,3}))?$`)

// maxAmountDigits keeps amounts within int64.
const maxAmountDigits = 18

// MinorUnits converts a price in major units, a decimal literal such as
// "1250.5", to Stripe's minor units for currency, exactly: decimal digits
// are shifted, never multiplied as floats. A price with more decimals than
// the currency has is refused rather than rounded, as are amounts Stripe
// refuses in that currency (whole krónur for ISK, a last digit 0 for
// three-decimal currencies) and zero.
func MinorUnits(price, currency string) (int64, error) {
	currency = strings.ToLower(currency)
	if len(currency) != 3 || strings.Trim(currency, "abcdefghijklmnopqrstuvwxyz") != "" {
		return 0, Errorf(Invalid, "currency %q is not a three-letter ISO code", currency)
	}
	m := decimalPattern.FindStringSubmatch(price)
	if m == nil {
		return 0, Errorf(Invalid, "price %.32q is not a positive number in major units", price)
	}
	exp := CurrencyExponent(currency)
	digits := strings.TrimLeft(m[1]+m[2], "0")
	e, _ := strconv.Atoi(m[3]) // "" reads as 0
	shift := exp + e - len(m[2])
	if shift < 0 {
		keep := max(len(digits)+shift, 0)
		if strings.Trim(digits[keep:], "0") != "" {
			return 0, Errorf(Invalid, "price %s has more decimals than %s allows (%d)", price, strings.ToUpper(currency), exp)
		}
		digits, shift = digits[:keep], 0
	}
	if digits != "" && len(digits)+shift > maxAmountDigits {
		return 0, Errorf(Invalid, "price %s is too large", price)
	}
	n, _ := strconv.ParseInt("0"+digits+strings.Repeat("0", shift), 10, 64) // at most 18 digits: fits
	switch {
	case n == 0:
		return 0, Errorf(Invalid, "price %s must be above zero", price)
	case currency == "isk" && n%100 != 0:
		return 0, Errorf(Invalid, "price %s: Stripe takes whole krónur only", price)
	case exp == 3 && n%10 != 0:
		return 0, Errorf(Invalid, "price %s: Stripe needs the last of %s's three decimals to be 0", price, strings.ToUpper(currency))
	}
	return n, nil
}
