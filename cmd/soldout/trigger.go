package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"soldout/internal/journal"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

const triggerSynopsis = `Sends a sample Checkout event to a running soldout, signed with the first
secret of STRIPE_WEBHOOK_SECRET, as Stripe would: like ` + "`stripe trigger`" + `, but
offline and without an account. It prints the answer's status and body, and
exits 1 unless soldout answered 2xx. A delayed payment is two events of one
session: -kind unpaid, then -kind async-succeeded or async-failed with the
same -session. Without -artwork the event is, unless -kind says otherwise, an
expired session that names no artwork: soldout answers "ignored", which still
proves that the secret matches, and changes nothing. (A paid one naming no
artwork is answered invalid_metadata and logged at ERROR, as a checkout route
that forgot the metadata would be.) The event is of the
server's Stripe mode, as this shell's settings say (STRIPE_SECRET_KEY,
SOLDOUT_STRIPE_MODE) or else the journal at DATABASE_URL; -mode overrides.
In a live shop an -artwork event is a real sale in its journal and its
Sanity: trigger refuses it unless -mode live says so.

Examples:
  soldout trigger                                   does the secret match?
  soldout trigger -artwork art-42                   a paid sale of art-42
  soldout trigger -kind unpaid -artwork art-42 -session cs_test_1
  soldout trigger -kind async-failed -artwork art-42 -session cs_test_1`

// triggerKinds maps -kind to the event type and payment status it sends.
var triggerKinds = map[string]struct{ typ, payment string }{
	"paid":            {stock.CheckoutCompleted, stock.PaymentPaid},
	"unpaid":          {stock.CheckoutCompleted, stock.PaymentUnpaid},
	"async-succeeded": {stock.CheckoutAsyncSucceeded, ""},
	"async-failed":    {stock.CheckoutAsyncFailed, ""},
	"expired":         {stock.CheckoutExpired, ""},
}

// triggerReport is what trigger prints with -json.
type triggerReport struct {
	URL       string          `json:"url"`
	EventID   string          `json:"event_id"`
	Type      string          `json:"type"`
	SessionID string          `json:"session_id"`
	Status    int             `json:"status"`
	Body      json.RawMessage `json:"body"`
}

// triggerSettings: the default -url (PORT), the secret it signs with, and
// the Stripe mode, from this shell or else the journal (triggerMode).
const triggerSettings = usePort | useWebhookSecret | useStripeMode | useJournal

func runTrigger(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trigger", flag.ContinueOnError)
	fs.SetOutput(stdout)
	flags := sharedFlags(fs, "database-url")
	target := fs.String("url", "", "the webhook endpoint (default http://localhost:$PORT/api/webhook)")
	artwork := fs.String("artwork", "", "the artwork id to put in metadata.artworkId")
	kind := fs.String("kind", "", "paid, unpaid, async-succeeded, async-failed or expired (default paid with -artwork, else expired)")
	session := fs.String("session", "", "the Checkout Session id (default a new cs_test_trigger_… id)")
	email := fs.String("email", "buyer@example.com", "the buyer's email")
	amount := fs.Int64("amount", 100000, "amount_total in minor units (cents)")
	modeFlag := fs.String("mode", "", "test or live: the event's Stripe mode (default: the server's, see above; else test)")
	asJSON := jsonFlag(fs)
	fs.Usage = commandUsage(stdout, "trigger [flags]", triggerSynopsis, fs.PrintDefaults, triggerSettings)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *kind == "" {
		*kind = "paid"
		if *artwork == "" {
			*kind = "expired"
		}
	}
	k, ok := triggerKinds[*kind]
	if !ok {
		return flagError(fs, fmt.Sprintf("-kind %q: use paid, unpaid, async-succeeded, async-failed or expired", *kind))
	}
	if m := stock.StripeMode(*modeFlag); *modeFlag != "" && m != stock.ModeTest && m != stock.ModeLive {
		return flagError(fs, fmt.Sprintf("-mode %q: test or live", *modeFlag))
	}
	use := triggerSettings
	if *target != "" {
		use &^= usePort // PORT only makes the default -url
	}
	cfg, err := loadConfig(flags, getenv, use)
	if err != nil {
		return err
	}
	if *target == "" {
		*target = "http://localhost" + cfg.Addr + "/api/webhook"
	}
	mode, err := triggerMode(ctx, *modeFlag, cfg)
	if err != nil {
		return err
	}
	if mode.Live() && *artwork != "" && *modeFlag == "" {
		// A live shop's journal and Sanity are the real ones: a sample sale
		// there is a real record and an artwork taken off sale.
		return flagError(fs, fmt.Sprintf("the shop is in live mode (%s): a -artwork event would record a sale of %s in its journal and mark it unavailable in its Sanity; give -mode live to do that on purpose, or -mode test against a test-mode soldout", liveModeSource(cfg), *artwork))
	}
	if *session == "" {
		*session = "cs_" + string(mode) + "_trigger_" + strings.ToLower(rand.Text())
	}
	sample := stripehook.Sample{
		EventID: "evt_trigger_" + strings.ToLower(rand.Text()), Type: k.typ, SessionID: *session, PaymentStatus: k.payment,
		Email: *email, AmountTotal: *amount, Livemode: mode.Live(),
	}
	if *artwork != "" {
		sample.ArtworkIDs = []string{*artwork}
	}
	body := sample.JSON()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // what `stripe listen` waits
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *target, bytes.NewReader(body))
	if err != nil {
		return flagError(fs, fmt.Sprintf("-url %q: %v", *target, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripehook.Sign(body, cfg.WebhookSecrets[0], time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("sending to %s: %w; is `soldout serve` running there?", *target, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the answer from %s: %w", *target, err)
	}

	rep := triggerReport{URL: *target, EventID: sample.EventID, Type: sample.Type, SessionID: *session, Status: resp.StatusCode}
	if json.Valid(answer) {
		rep.Body = answer
	} else {
		rep.Body, _ = json.Marshal(string(answer)) // a string cannot fail to encode
	}
	if *asJSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "sent %s %s, %s mode (session %s) to %s\n%d %s\n%s\n", rep.Type, rep.EventID, mode, rep.SessionID, rep.URL,
			resp.StatusCode, http.StatusText(resp.StatusCode), bytes.TrimSpace(answer))
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest && bytes.Contains(answer, []byte(stripehook.ReasonNoMatch)):
		if n := len(cfg.WebhookSecrets); n > 1 {
			return fmt.Errorf("the server refused the signature: trigger signs with the first of this shell's %d STRIPE_WEBHOOK_SECRET secrets, and the server does not have it", n)
		}
		return fmt.Errorf("the server refused the signature: it runs with another STRIPE_WEBHOOK_SECRET than this shell")
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("the server answered %d: see the body above and the server's log", resp.StatusCode)
	}
	return nil
}

// liveModeSource says what made trigger's mode live: this shell's settings,
// or the mode serve recorded in the journal.
func liveModeSource(cfg config) string {
	if cfg.StripeMode.Live() {
		return "STRIPE_SECRET_KEY or SOLDOUT_STRIPE_MODE"
	}
	return "the mode serve recorded in the journal"
}

// triggerMode is the Stripe mode of the event trigger sends: -mode, this
// shell's settings, or the one the server recorded in the journal at
// DATABASE_URL (a journal that does not open here, say on another machine,
// is no error); test when none says.
func triggerMode(ctx context.Context, flagValue string, cfg config) (stock.StripeMode, error) {
	switch m := stock.StripeMode(flagValue); {
	case flagValue != "": // checked by runTrigger
		return m, nil
	case cfg.StripeMode != stock.ModeAny:
		return cfg.StripeMode, nil
	}
	// A journal that is slow to answer (a PostgreSQL host that drops
	// packets) must not hold up a command that is about the webhook.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Inspected, not opened: a journal of another schema version still
	// says its mode, and nothing is migrated.
	if ins, err := journal.Inspect(ctx, cfg.DatabaseURL); err == nil {
		if m := stock.StripeMode(ins.Settings[stripeModeSetting]); m != stock.ModeAny {
			return m, nil
		}
	}
	return stock.ModeTest, nil
}
