package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"soldout/internal/stock"
)

// What the operator commands print: tables for people (times in RFC 3339
// UTC, amounts like 1,200.00 EUR), JSON with -json for scripts.

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// formatAmount renders an amount in minor units: 120000, "eur" → 1,200.00 EUR.
func formatAmount(minor int64, currency string) string {
	decimals := stock.CurrencyExponent(currency)
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	digits := strconv.FormatInt(minor, 10)
	if len(digits) <= decimals {
		digits = strings.Repeat("0", decimals-len(digits)+1) + digits
	}
	whole, frac := digits[:len(digits)-decimals], digits[len(digits)-decimals:]
	var b strings.Builder
	b.WriteString(sign)
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if decimals > 0 {
		b.WriteString("." + frac)
	}
	if currency != "" {
		b.WriteString(" " + strings.ToUpper(currency))
	}
	return b.String()
}

// eventView is an event as -json prints it.
type eventView struct {
	ID            string        `json:"id"`
	Type          string        `json:"type"`
	Created       time.Time     `json:"created"`
	Livemode      bool          `json:"livemode"`
	SessionID     string        `json:"session_id"`
	ArtworkIDs    []string      `json:"artwork_ids"`
	FirstReceived time.Time     `json:"first_received"`
	LastReceived  time.Time     `json:"last_received"`
	Attempts      int           `json:"attempts"`
	Outcome       stock.Outcome `json:"outcome"` // "" while unfinished
	// NotApplied is -outcome not_applied's test, failed or unfinished, for
	// a jq filter that should not have to know that "" is unfinished.
	NotApplied bool            `json:"not_applied"`
	Detail     string          `json:"detail"`
	LastError  string          `json:"last_error"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	Sales      []saleView      `json:"sales,omitempty"`
}

func viewEvent(r stock.EventRecord) eventView {
	v := eventView{
		ID: r.ID, Type: r.Type, Created: r.Created.UTC(), Livemode: r.Livemode, SessionID: r.SessionID,
		ArtworkIDs: r.ArtworkIDs, FirstReceived: r.FirstReceived.UTC(), LastReceived: r.LastReceived.UTC(),
		Attempts: r.Attempts, Outcome: r.Outcome, NotApplied: !r.Outcome.Final(), Detail: r.Detail, LastError: r.LastError,
	}
	if v.ArtworkIDs == nil {
		v.ArtworkIDs = []string{}
	}
	switch {
	case len(r.Payload) == 0:
	case json.Valid(r.Payload):
		v.Payload = r.Payload
	default:
		v.Payload, _ = json.Marshal(string(r.Payload)) // a string cannot fail to encode
	}
	return v
}

// outcomeText shows an event that never finished processing (a crash) as such.
func outcomeText(o stock.Outcome) string {
	if o == "" {
		return "(unfinished)"
	}
	return string(o)
}

// saleView is a sale as -json prints it. Amount is in minor units.
type saleView struct {
	ArtworkID  string   `json:"artwork_id"`
	SessionID  string   `json:"session_id"`
	State      string   `json:"state"`
	Email      string   `json:"email"`
	Amount     int64    `json:"amount"`
	Currency   string   `json:"currency"`
	EventIDs   []string `json:"event_ids"`
	AppliedRev string   `json:"applied_rev"`
	// WaitsFor is, for a double sale, the sale it lost to (stock.Sale.WaitsFor).
	WaitsFor  string    `json:"waits_for,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Holder is, for a double sale, the session that holds the artwork.
	Holder *saleView `json:"holder,omitempty"`
	// Payment is, for a double sale, whether its buyer paid, as their
	// session's events tell: who to refund depends on it.
	Payment string `json:"payment,omitempty"`
}

func viewSale(s stock.Sale) saleView {
	v := saleView{
		ArtworkID: s.ArtworkID, SessionID: s.SessionID, State: string(s.State), Email: s.Email,
		Amount: s.Amount, Currency: s.Currency, EventIDs: s.EventIDs, AppliedRev: s.AppliedRev,
		WaitsFor: s.WaitsFor, CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(),
	}
	if v.EventIDs == nil {
		v.EventIDs = []string{}
	}
	return v
}

// viewSalePtr is viewSale for an optional sale.
func viewSalePtr(s *stock.Sale) *saleView {
	if s == nil {
		return nil
	}
	v := viewSale(*s)
	return &v
}

// artworkDetail renders per-artwork outcomes as "a1=sold a2=duplicate".
func artworkDetail(rs []stock.ArtworkResult) string {
	parts := make([]string, len(rs))
	for i, a := range rs {
		parts[i] = a.ArtworkID + "=" + string(a.Outcome)
	}
	return orDash(strings.Join(parts, " "))
}

// artworkResults prints a table of an event's per-artwork outcomes.
func artworkResults(w io.Writer, res stock.Result) {
	if len(res.Artworks) == 0 {
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ARTWORK\tOUTCOME")
	for _, a := range res.Artworks {
		fmt.Fprintf(tw, "%s\t%s\n", a.ArtworkID, a.Outcome)
	}
	tw.Flush()
}

// operatorOutput gives run a stdout that shows control characters as
// escapes instead of sending them to the operator's terminal: an artwork id
// copied from a browser into Stripe's metadata, or an email, could otherwise
// move the cursor, clear the screen or retitle the window. JSON output is
// unchanged in meaning, since its encoder escapes C0 controls already and
// \u0085 is how JSON writes a C1 one.
func operatorOutput(run func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error) func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		w := &terminalSafe{w: stdout}
		err := run(ctx, args, getenv, w, stderr)
		w.flush()
		return err
	}
}

// terminalSafe escapes C0 controls other than tab and newline, DEL and C1
// controls as \u00XX. A rune cut by the end of a Write waits for the next.
type terminalSafe struct {
	w       io.Writer
	pending []byte
}

func (t *terminalSafe) Write(p []byte) (int, error) {
	b := append(t.pending, p...)
	t.pending = nil
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		if !utf8.FullRune(b) {
			t.pending = append(t.pending, b...)
			break
		}
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size == 1:
			out = fmt.Appendf(out, "\\x%02x", b[0])
		case r < 0x20 && r != '\t' && r != '\n', r == 0x7f, r >= 0x80 && r <= 0x9f:
			out = fmt.Appendf(out, "\\u%04x", r)
		default:
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes out a rune left incomplete at the end, escaped.
func (t *terminalSafe) flush() {
	for _, c := range t.pending {
		fmt.Fprintf(t.w, "\\x%02x", c)
	}
	t.pending = nil
}
