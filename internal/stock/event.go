// Package stock holds soldout's domain: Stripe checkout events as soldout
// sees them, the sales it records, the outcomes it reports, and the rules
// that turn one into the others. It imports no database, HTTP or SDK package;
// the Catalog (Sanity) and Journal (SQL) interfaces are implemented elsewhere.
package stock

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Checkout event types soldout acts on. Any other type is journaled and ignored.
const (
	CheckoutCompleted      = "checkout.session.completed"
	CheckoutAsyncSucceeded = "checkout.session.async_payment_succeeded"
	CheckoutAsyncFailed    = "checkout.session.async_payment_failed"
	CheckoutExpired        = "checkout.session.expired"
)

// Payment statuses of a Checkout Session.
const (
	PaymentPaid              = "paid"
	PaymentUnpaid            = "unpaid"
	PaymentNoPaymentRequired = "no_payment_required"
)

// Event is a verified Stripe event, reduced to what soldout needs.
type Event struct {
	ID         string
	Type       string
	Created    time.Time
	Livemode   bool
	APIVersion string
	Session    Session // zero unless data.object is a Checkout Session
	Payload    []byte  // the raw body as Stripe signed it, kept for audit
}

// Session is the part of a Checkout Session that soldout reads.
type Session struct {
	ID            string
	Status        string // open, complete, expired
	PaymentStatus string // paid, unpaid, no_payment_required
	Email         string
	AmountTotal   int64 // minor units
	Currency      string
	// ArtworkIDs comes from metadata.artworkId, or metadata.artworkIds split
	// on commas. Entries are as sent: they are validated by ValidArtworkID
	// before anything reaches Sanity.
	ArtworkIDs []string
	// MetadataKeys are the metadata's keys, for the log line of a session
	// that names no artwork: what the checkout route sent instead.
	MetadataKeys []string
}

// Clean returns e with its strings and payload as Text makes them.
func (e Event) Clean() Event {
	e.ID, e.Type, e.APIVersion = Text(e.ID), Text(e.Type), Text(e.APIVersion)
	// Checked as bytes: a string conversion would copy every payload.
	if bytes.IndexByte(e.Payload, 0) >= 0 || !utf8.Valid(e.Payload) {
		e.Payload = []byte(Text(string(e.Payload)))
	}
	e.Session = e.Session.Clean()
	return e
}

// Clean returns s with its strings as Text makes them.
func (s Session) Clean() Session {
	s.ID, s.Status, s.PaymentStatus = Text(s.ID), Text(s.Status), Text(s.PaymentStatus)
	s.Email, s.Currency = Text(s.Email), Text(s.Currency)
	s.ArtworkIDs, s.MetadataKeys = Texts(s.ArtworkIDs), Texts(s.MetadataKeys)
	return s
}

// Text returns s as both journals can store it. PostgreSQL's text holds
// neither NUL nor bytes that are not UTF-8, and a signed event can carry
// both: a "\u0000" escape in a string, a raw byte in the body. Refused by
// the journal, such an event would be answered 503 and retried for days,
// then lost. Each NUL and each byte that is not UTF-8 becomes U+FFFD, as
// encoding/json decodes a byte that is not UTF-8: a payload made Text
// decodes to the strings of the original, made Text. An artwork id changed
// so fails ValidArtworkID and is reported as invalid metadata. A clean s,
// the usual case, comes back as is.
func Text(s string) string {
	if IsText(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0 || r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// IsText reports whether Text would leave s as it is.
func IsText(s string) bool { return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) }

// Texts is Text of each of l, copied only when one changes.
func Texts(l []string) []string {
	for i, s := range l {
		if !IsText(s) {
			out := slices.Clone(l)
			for j := i; j < len(out); j++ {
				out[j] = Text(out[j])
			}
			return out
		}
	}
	return l
}

// ReadMetadata sets the artwork ids the session's metadata names and, when
// it names none, the metadata's keys.
func (s *Session) ReadMetadata(metadata map[string]string) {
	s.ArtworkIDs, s.MetadataKeys = ArtworkIDsFromMetadata(metadata), nil
	if len(s.ArtworkIDs) == 0 {
		s.MetadataKeys = metadataKeys(metadata)
	}
}

// metadataKeys lists metadata's keys, sorted; at most 20, each cut to 40
// bytes, since the session's creator chose them.
func metadataKeys(metadata map[string]string) []string {
	keys := slices.Sorted(maps.Keys(metadata))
	if len(keys) > 20 {
		keys = keys[:20]
	}
	for i, k := range keys {
		keys[i] = truncate(k, 40)
	}
	return keys
}

// ArtworkIDsFromMetadata reads the artwork ids a Checkout Session names.
// metadata.artworkId wins; otherwise metadata.artworkIds is split on commas,
// blanks trimmed and empty entries dropped.
func ArtworkIDsFromMetadata(metadata map[string]string) []string {
	if id := strings.TrimSpace(metadata["artworkId"]); id != "" {
		return []string{id}
	}
	var ids []string
	for _, id := range strings.Split(metadata["artworkIds"], ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// MaxArtworkIDLength is Sanity's limit on document ids.
const MaxArtworkIDLength = 128

// ValidArtworkID reports whether id is a plain published Sanity document id:
// letters, digits, '_', '-', '.', at most 128 characters, not a draft or
// release version, and (Sanity's path rule) no empty dot-separated segment
// nor one starting with '-'. Anything else must never reach Sanity: the doc
// endpoint takes comma-separated ids in its path, so a hostile id could
// address another document.
func ValidArtworkID(id string) bool {
	if id == "" || len(id) > MaxArtworkIDLength {
		return false
	}
	if strings.HasPrefix(id, "drafts.") || strings.HasPrefix(id, "versions.") {
		return false
	}
	for seg := range strings.SplitSeq(id, ".") {
		if seg == "" || seg[0] == '-' {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			default:
				return false
			}
		}
	}
	return true
}

// StripeMode is test or live: which of Stripe's two worlds a shop's events
// come from.
type StripeMode string

// Stripe modes; ModeAny accepts events of both.
const (
	ModeAny  StripeMode = ""
	ModeTest StripeMode = "test"
	ModeLive StripeMode = "live"
)

// Live reports whether m is live mode.
func (m StripeMode) Live() bool { return m == ModeLive }
