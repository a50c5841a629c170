// Package stripehook proves that a webhook request comes from Stripe and
// decodes it into a stock.Event. It accepts events of any API version: only
// fields that are stable across versions are decoded.
package stripehook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"

	"soldout/internal/stock"
)

// DefaultTolerance is Stripe's own replay window.
const DefaultTolerance = 300 * time.Second

// Reasons a signature is refused. They are safe to log and to count: they
// never contain the secret or the signature.
const (
	ReasonMissing   = "missing_header"
	ReasonMalformed = "malformed_header"
	ReasonStale     = "timestamp_outside_tolerance"
	ReasonNoMatch   = "no_matching_signature"
)

// SignatureError says why a request was refused.
type SignatureError struct{ Reason string }

func (e *SignatureError) Error() string {
	switch e.Reason {
	case ReasonMissing:
		return "no Stripe-Signature header: the request did not come from Stripe"
	case ReasonMalformed:
		return "Stripe-Signature header is malformed"
	case ReasonStale:
		return "Stripe-Signature timestamp is outside the tolerance: a replay, or a clock off by minutes"
	default:
		return "no v1 signature matches any configured STRIPE_WEBHOOK_SECRET: check that the secret is the endpoint's (or the one `stripe listen` printed)"
	}
}

// Verifier checks Stripe-Signature headers against one or more endpoint
// secrets. Several secrets are live while one is being rolled; Stripe then
// signs with each, and an event signed by any of them is accepted.
type Verifier struct {
	secrets   []string
	tolerance time.Duration
}

// notSecretChar is true for what no signing secret contains: a blank, a
// quote or a line break pasted with it (a wrapped terminal line), which
// would make every signature fail to match.
func notSecretChar(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '+' || r == '/' || r == '=')
}

// ParseSecrets splits a comma-separated STRIPE_WEBHOOK_SECRET and checks
// that every entry looks like an endpoint secret.
func ParseSecrets(s string) ([]string, error) {
	var secrets []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.HasPrefix(part, "whsec_") && strings.ContainsFunc(part, notSecretChar) {
			return nil, errors.New("an entry contains a blank, a quote or a line break, which no signing secret has: paste it again on one line (several secrets are separated by commas)")
		}
		if !strings.HasPrefix(part, "whsec_") || len(part) < len("whsec_")+8 {
			return nil, fmt.Errorf("an entry does not look like a webhook signing secret (whsec_…): copy it from Stripe Dashboard → Developers → Webhooks → your endpoint → Signing secret, or from the output of `stripe listen`")
		}
		secrets = append(secrets, part)
	}
	if len(secrets) == 0 {
		return nil, errors.New("no secret given: set the endpoint's signing secret (whsec_…) from Stripe Dashboard → Developers → Webhooks, or the one `stripe listen` prints")
	}
	return secrets, nil
}

// wellFormed reports whether header has Stripe's shape: one t and at least
// one v1, among comma-separated key=value pairs. stripe-go reports a header
// without them as unsigned by any secret (or too old, for want of a t),
// which would send the operator to check a secret that is right.
func wellFormed(header string) bool {
	var ts, v1 int
	for pair := range strings.SplitSeq(header, ",") {
		key, _, ok := strings.Cut(pair, "=")
		if !ok {
			return false
		}
		switch key {
		case "t":
			ts++
		case "v1":
			v1++
		}
	}
	return ts == 1 && v1 > 0
}

// NewVerifier returns a Verifier. tolerance must be positive: stripe-go reads
// a zero tolerance as "reject anything older than now".
func NewVerifier(secrets []string, tolerance time.Duration) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("stripehook: no webhook secret")
	}
	if tolerance <= 0 {
		return nil, errors.New("stripehook: tolerance must be positive")
	}
	return &Verifier{secrets: secrets, tolerance: tolerance}, nil
}

// Verify checks header against the raw body with every secret, in constant
// time per signature (stripe-go compares with hmac.Equal and tries every v1
// of the header; v0 and unknown schemes are ignored). It returns a
// *SignatureError on failure; ReasonStale only for a request that one of the
// secrets did sign.
func (v *Verifier) Verify(body []byte, header string) error {
	if header != "" && !wellFormed(header) {
		return &SignatureError{Reason: ReasonMalformed}
	}
	for _, secret := range v.secrets {
		err := webhook.ValidatePayloadWithTolerance(body, header, secret, v.tolerance)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, webhook.ErrNoValidSignature):
			continue // maybe another secret signed it
		case errors.Is(err, webhook.ErrNotSigned):
			return &SignatureError{Reason: ReasonMissing}
		case errors.Is(err, webhook.ErrTooOld):
			// stripe-go checks the age before the HMAC. Said of a forged
			// request, "stale" would send an operator to fix the clock
			// when the secret is wrong, so the signature is checked too.
			if webhook.ValidatePayloadIgnoringTolerance(body, header, secret) == nil {
				return &SignatureError{Reason: ReasonStale}
			}
		default:
			return &SignatureError{Reason: ReasonMalformed}
		}
	}
	return &SignatureError{Reason: ReasonNoMatch}
}

// wireEvent is the version-stable subset of a Stripe event. data.object is
// decoded as a Checkout Session in the same pass as the envelope: a second
// pass over a json.RawMessage would scan the object three more times, which
// made decoding the largest cost of a webhook outside the journal.
type wireEvent struct {
	envelope
	Data struct {
		Object wireSession `json:"object"`
	} `json:"data"`
}

type envelope struct {
	ID         string    `json:"id"`
	Object     string    `json:"object"`
	Type       string    `json:"type"`
	Created    eventTime `json:"created"`
	Livemode   bool      `json:"livemode"`
	APIVersion string    `json:"api_version"`
}

// head is the event as far as its envelope tells.
func (e envelope) head(body []byte) stock.Event {
	return stock.Event{ID: e.ID, Type: e.Type, Created: e.Created.UTC(), Livemode: e.Livemode, APIVersion: e.APIVersion, Payload: body}
}

// Event objects: the snapshot events soldout acts on, and the thin events
// of Stripe's event destinations, which carry no object to act on.
const (
	objectEvent     = "event"
	objectThinEvent = "v2.core.event"
)

// eventTime is an event's created: unix seconds in a snapshot event, an
// RFC 3339 string in a thin one.
type eventTime struct{ time.Time }

func (t *eventTime) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		var err error
		t.Time, err = time.Parse(time.RFC3339Nano, s)
		return err
	}
	// The snapshot event's common case, parsed without a second JSON pass.
	secs, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("created %.32s is not a unix time", b)
	}
	t.Time = time.Unix(secs, 0)
	return nil
}

type wireSession struct {
	ID              string            `json:"id"`
	Object          string            `json:"object"`
	Status          string            `json:"status"`
	PaymentStatus   string            `json:"payment_status"`
	AmountTotal     int64             `json:"amount_total"`
	Currency        string            `json:"currency"`
	Metadata        map[string]string `json:"metadata"`
	CustomerEmail   string            `json:"customer_email"`
	CustomerDetails *struct {
		Email string `json:"email"`
	} `json:"customer_details"`
}

// Decode reads a verified event body. Only checkout.session.* events have
// their data.object read as a Checkout Session; for others Session is zero,
// and their data.object may be anything. A thin event (an event
// destination's v2.core.event) decodes without a session too: signed by
// Stripe, it is journaled and ignored rather than refused, which Stripe
// would retry for days. A checkout event whose object is not a Checkout
// Session is an error, returned with the event as far as it was read (its
// envelope, the session's id and artworks), so that the caller can journal
// what it refuses. Its strings and payload are cleaned (stock.Event.Clean),
// so that whatever a signed body holds can be journaled.
func Decode(body []byte) (stock.Event, error) {
	ev, err := decode(body)
	return ev.Clean(), err
}

func decode(body []byte) (stock.Event, error) {
	var w wireEvent
	err := json.Unmarshal(body, &w)
	var typeErr *json.UnmarshalTypeError
	inObject := errors.As(err, &typeErr) && (typeErr.Field == "data.object" || strings.HasPrefix(typeErr.Field, "data.object."))
	checkout := w.Object == objectEvent && strings.HasPrefix(w.Type, "checkout.session.")
	switch {
	case err == nil:
	case inObject && checkout:
		// Unmarshal read the rest of the object: the session and its
		// artworks, as far as they were read, name the event in the journal.
		ev := w.head(body)
		ev.Session.ID = w.Data.Object.ID
		ev.Session.ReadMetadata(w.Data.Object.Metadata)
		return ev, stock.Wrap(stock.Invalid, err, "data.object of %s is not a Checkout Session", w.Type)
	case inObject:
		// Another type's object (an invoice, say) need not fit a session.
		// Unmarshal reports only the first mismatch, so the envelope is
		// read again on its own to find any in it.
		if err := json.Unmarshal(body, &w.envelope); err != nil {
			return stock.Event{}, stock.Wrap(stock.Invalid, err, "event body is not valid JSON")
		}
	default:
		return stock.Event{}, stock.Wrap(stock.Invalid, err, "event body is not valid JSON")
	}
	if w.Object != objectEvent && w.Object != objectThinEvent || w.ID == "" || w.Type == "" {
		return stock.Event{}, stock.Errorf(stock.Invalid, "body is not a Stripe event (needs object \"event\", an id and a type)")
	}
	ev := w.head(body)
	if !checkout {
		return ev, nil
	}
	s := &w.Data.Object
	if s.Object != "checkout.session" || s.ID == "" {
		return ev, stock.Errorf(stock.Invalid, "data.object of %s is not a Checkout Session", w.Type)
	}
	email := s.CustomerEmail
	if s.CustomerDetails != nil && s.CustomerDetails.Email != "" {
		email = s.CustomerDetails.Email
	}
	ev.Session = stock.Session{
		ID:            s.ID,
		Status:        s.Status,
		PaymentStatus: s.PaymentStatus,
		Email:         email,
		AmountTotal:   s.AmountTotal,
		Currency:      s.Currency,
	}
	ev.Session.ReadMetadata(s.Metadata)
	return ev, nil
}
