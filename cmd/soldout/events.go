package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"soldout/internal/httpapi"
	"soldout/internal/journal"
	"soldout/internal/stock"
)

const eventsListSynopsis = `Lists the Stripe events in the journal, newest first: when each first
arrived, its session and artworks, how many deliveries, and its outcome.
Events not applied (failed, or unfinished after a crash) are the ones to look
at: ` + "`soldout events show ID`" + ` says why, ` + "`soldout replay ID`" + ` runs one again.

Examples:
  soldout events list -outcome not_applied -since 3d   what Stripe is still retrying
  soldout events list -artwork art-42 -since 0          an artwork's whole history
  soldout events list -outcome double_sale -json | jq .`

const eventsShowSynopsis = `Shows everything the journal knows about one event: its deliveries, outcome,
last error, the sales of its session, and the raw payload as Stripe signed it.

Example:
  soldout events show evt_1QxYz…`

func runEvents(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "events", map[string]command{
		"list": {"list journaled events", runEventsList},
		"show": {"show one event with its payload", runEventsShow},
	}, args, getenv, stdout, stderr)
}

// eventOutcomes are the outcomes -outcome accepts.
var eventOutcomes = []stock.Outcome{
	stock.OutcomeSold, stock.OutcomeHeld, stock.OutcomeReleased, stock.OutcomeReleaseSkipped, stock.OutcomeDuplicate,
	stock.OutcomeDoubleSale, stock.OutcomeAlreadyUnavailable, stock.OutcomeIgnored, stock.OutcomeInvalidMetadata, stock.OutcomeFailed,
}

// Outcome filters that are no stored outcome: an event a crash left
// unfinished has none yet, and the runbook's first question, "what was not
// applied", covers it as well as the failed ones.
const (
	filterUnfinished = "unfinished"
	filterNotApplied = "not_applied"
)

// outcomeFilter turns -outcome into the outcomes to list; nil lists all.
func outcomeFilter(flag string) ([]stock.Outcome, error) {
	switch {
	case flag == "":
		return nil, nil
	case flag == filterUnfinished:
		return []stock.Outcome{""}, nil
	case flag == filterNotApplied:
		return []stock.Outcome{stock.OutcomeFailed, ""}, nil
	case slices.Contains(eventOutcomes, stock.Outcome(flag)):
		return []stock.Outcome{stock.Outcome(flag)}, nil
	}
	return nil, usageError(fmt.Sprintf("-outcome %q is not an outcome; use one of %s, %s (no outcome yet: a crash interrupted it) or %s (failed or unfinished)",
		flag, joinOutcomes(), filterUnfinished, filterNotApplied))
}

// eventsSettings: events list and events show only read the journal.
const eventsSettings = useJournal

func runEventsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events list", flag.ContinueOnError)
	fs.SetOutput(stdout)
	flags := sharedFlags(fs, "database-url")
	since := sinceFlag(fs, 24*time.Hour, "only events first received within this long, e.g. 1h, 168h or 7d (0: all)")
	typ := fs.String("type", "", "only this event type, e.g. checkout.session.completed")
	outcome := fs.String("outcome", "", "only this outcome, e.g. double_sale; not_applied for failed or unfinished events")
	artwork := fs.String("artwork", "", "only events naming this artwork id")
	limit := fs.Int("limit", 100, "at most this many events (0: all)")
	asJSON := jsonFlag(fs)
	fs.Usage = commandUsage(stdout, "events list [flags]", eventsListSynopsis, fs.PrintDefaults, eventsSettings)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	switch {
	case *since < 0:
		return flagError(fs, "-since must not be negative")
	case *limit < 0:
		return flagError(fs, "-limit must not be negative")
	}
	outcomes, err := outcomeFilter(*outcome)
	if err == nil {
		err = typeFilterProblem(*typ)
	}
	if err != nil {
		return flagError(fs, err.Error())
	}
	db, err := openJournal(ctx, flags, getenv, eventsSettings)
	if err != nil {
		return err
	}
	defer db.Close()
	filter := journal.EventFilter{Type: *typ, Outcomes: outcomes, ArtworkID: *artwork}
	if *limit > 0 {
		filter.Limit = *limit + 1 // one more than shown tells whether the list was cut
	}
	if *since > 0 {
		filter.Since = time.Now().Add(-*since)
	}
	recs, err := db.ListEvents(ctx, filter)
	if err != nil {
		return err
	}
	cut := *limit > 0 && len(recs) > *limit
	if cut {
		recs = recs[:*limit]
	}
	if *asJSON {
		views := make([]eventView, len(recs))
		for i, r := range recs {
			views[i] = viewEvent(r)
		}
		return printJSON(stdout, views)
	}
	// Stripe retries an event for three days from its first delivery, which
	// the window counts from: one still failing can be older than it.
	older, stillFailing := 0, notAppliedOf(outcomes)
	if *since > 0 && len(stillFailing) > 0 {
		if older, err = db.CountEvents(ctx, journal.EventFilter{Before: filter.Since, Type: *typ, ArtworkID: *artwork, Outcomes: stillFailing}); err != nil {
			return err
		}
	}
	olderNote := func() {
		if older > 0 {
			fmt.Fprintf(stdout, "\n%d more not applied, first received before this window: `soldout events list%s -since 0` lists them.\n",
				older, filterFlags(shellQuote, *typ, outcomeOr(*outcome, filterNotApplied), *artwork))
		}
	}
	if len(recs) == 0 {
		fmt.Fprintf(stdout, "no events match%s (journal: %s)", filterFlags(strconv.Quote, *typ, *outcome, *artwork), db.Kind())
		if *since > 0 {
			fmt.Fprintf(stdout, " in the last %s; -since 0 looks at all", *since)
		}
		fmt.Fprintln(stdout)
		olderNote()
		return nil
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "RECEIVED\tEVENT\tTYPE\tSESSION\tARTWORKS\tATTEMPTS\tOUTCOME")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", formatTime(r.FirstReceived), r.ID, r.Type, orDash(r.SessionID),
			orDash(strings.Join(r.ArtworkIDs, ",")), r.Attempts, outcomeText(r.Outcome))
	}
	tw.Flush()
	if cut {
		fmt.Fprintf(stdout, "\nthe newest %d shown; there are more (-limit 0 shows all, -since narrows the window).\n", *limit)
	}
	// Counted over the whole window, not the rows shown: one that -limit
	// cut off must not go unmentioned.
	notApplied := 0
	if len(stillFailing) > 0 {
		if notApplied, err = db.CountEvents(ctx, journal.EventFilter{Since: filter.Since, Type: *typ, ArtworkID: *artwork, Outcomes: stillFailing}); err != nil {
			return err
		}
	}
	if notApplied > 0 {
		fmt.Fprintf(stdout, "\n%d not applied in this window: `soldout events show ID` says why; `soldout replay ID` runs it again once the cause is fixed (`soldout reconcile --apply` for a success-page event, fulfil:…).\n", notApplied)
	}
	olderNote()
	return nil
}

// notAppliedAdvice says what to do about an event not applied.
func notAppliedAdvice(rec stock.EventRecord) string {
	cause, then := "Fix what the last error says", "then"
	if rec.Outcome == "" {
		cause, then = "Not finished: a crash or a stop interrupted it; the next delivery finishes it", "or"
	}
	if strings.HasPrefix(rec.ID, httpapi.FulfilEventPrefix) {
		return "Not applied. " + cause + "; this one came from the success page, so `soldout reconcile --apply` applies its session (replay cannot)."
	}
	return "Not applied. " + cause + ", " + then + ": soldout replay " + rec.ID
}

// notAppliedOf is the part of the outcomes filtered for (all, when none)
// that are not applied: failed, unfinished, or both.
func notAppliedOf(outcomes []stock.Outcome) []stock.Outcome {
	if len(outcomes) == 0 {
		return []stock.Outcome{stock.OutcomeFailed, ""}
	}
	var out []stock.Outcome
	for _, o := range outcomes {
		if !o.Final() {
			out = append(out, o)
		}
	}
	return out
}

func outcomeOr(outcome, fallback string) string {
	if outcome == "" {
		return fallback
	}
	return outcome
}

// filterFlags is the filters given as flags, each value quoted by quote:
// strconv.Quote to name them, shellQuote for a command to paste.
func filterFlags(quote func(string) string, typ, outcome, artwork string) string {
	var b strings.Builder
	for _, f := range []struct{ flag, value string }{{"-type", typ}, {"-outcome", outcome}, {"-artwork", artwork}} {
		if f.value != "" {
			b.WriteString(" " + f.flag + " " + quote(f.value))
		}
	}
	return b.String()
}

// checkoutTypes are the Checkout Session events soldout acts on.
var checkoutTypes = []string{stock.CheckoutCompleted, stock.CheckoutAsyncSucceeded, stock.CheckoutAsyncFailed, stock.CheckoutExpired}

// typeFilterProblem refuses a -type that looks like a mistyped checkout
// event (checkout.…; Stripe has no other checkout events), which would list nothing and send the operator widening -since.
// Other types pass: the journal keeps every event Stripe sends.
func typeFilterProblem(typ string) error {
	if !strings.HasPrefix(typ, "checkout.") || slices.Contains(checkoutTypes, typ) {
		return nil
	}
	best, bestDistance := "", math.MaxInt
	for _, known := range checkoutTypes {
		if d := editDistance(typ, known); d < bestDistance {
			best, bestDistance = known, d
		}
	}
	return usageError(fmt.Sprintf("-type %q is no Checkout Session event: did you mean %q? (soldout acts on %s)", typ, best, strings.Join(checkoutTypes, ", ")))
}

func joinOutcomes() string {
	s := make([]string, len(eventOutcomes))
	for i, o := range eventOutcomes {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

func runEventsShow(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events show", flag.ContinueOnError)
	fs.SetOutput(stdout)
	flags := sharedFlags(fs, "database-url")
	asJSON := jsonFlag(fs)
	fs.Usage = commandUsage(stdout, "events show [flags] EVENT_ID", eventsShowSynopsis, fs.PrintDefaults, eventsSettings)
	id, help, err := parseFlagsAndID(fs, args, "EVENT_ID")
	if help || err != nil {
		return err
	}
	db, err := openJournal(ctx, flags, getenv, eventsSettings)
	if err != nil {
		return err
	}
	defer db.Close()
	rec, err := journalEvent(ctx, db, id)
	if err != nil {
		return err
	}
	var sales []stock.Sale
	if rec.SessionID != "" {
		if sales, err = db.SaleBySession(ctx, rec.SessionID); err != nil {
			return err
		}
	}
	if *asJSON {
		v := viewEvent(rec)
		for _, s := range sales {
			v.Sales = append(v.Sales, viewSale(s))
		}
		return printJSON(stdout, v)
	}
	tw := newTable(stdout)
	for _, row := range [][2]string{
		{"event", rec.ID},
		{"type", rec.Type},
		{"created", formatTime(rec.Created)},
		{"livemode", fmt.Sprint(rec.Livemode)},
		{"session", orDash(rec.SessionID)},
		{"artworks", orDash(strings.Join(rec.ArtworkIDs, ", "))},
		{"received", fmt.Sprintf("%s, last %s (%s)", formatTime(rec.FirstReceived), formatTime(rec.LastReceived), plural(rec.Attempts, "attempt", "attempts")+": Stripe's deliveries and `soldout replay` runs")},
		{"outcome", outcomeText(rec.Outcome)},
		{"detail", orDash(rec.Detail)},
		{"last error", orDash(rec.LastError)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	tw.Flush()
	if !rec.Outcome.Final() {
		fmt.Fprintf(stdout, "\n%s\n", notAppliedAdvice(rec))
	}
	if len(sales) > 0 {
		fmt.Fprintf(stdout, "\nSales of session %s:\n", rec.SessionID)
		printSales(stdout, sales)
	}
	fmt.Fprintln(stdout, "\nPayload:")
	return printJSON(stdout, viewEvent(rec).Payload)
}

// journalEvent reads one event, with a message that says where to find ids.
func journalEvent(ctx context.Context, db *journal.DB, id string) (stock.EventRecord, error) {
	rec, err := db.Event(ctx, id)
	if stock.ErrorCode(err) == stock.NotFound {
		return rec, fmt.Errorf("no event %q in the journal: find its id with `soldout events list` (or in the Stripe Dashboard), and check DATABASE_URL", id)
	}
	return rec, err
}
