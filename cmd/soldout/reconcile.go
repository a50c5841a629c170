package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"soldout/internal/reconcile"
	"soldout/internal/stock"
	"soldout/internal/stripeapi"
)

const reconcileSynopsis = `Asks Stripe (STRIPE_SECRET_KEY) for every complete Checkout Session of the
window, and compares each one that names artworks with the journal and with
Sanity: paid but not recorded, recorded but still for sale, held although the
money arrived or the payment failed, and double sales. It changes nothing
unless --apply is given: then every fixable finding goes through the same
pipeline as the webhook, as an event journaled as reconcile:<session>:…,
and the window is checked again. The exit status is 3 while inconsistencies
remain and 1 when it could not check, so that it can run from cron.

Examples:
  soldout reconcile                   what is inconsistent, changing nothing
  soldout reconcile -since 7d -apply  fix what can be fixed, then check again`

// reconcileReport is what reconcile prints with -json.
type reconcileReport struct {
	Since           time.Time      `json:"since"`
	Until           time.Time      `json:"until"`
	Sessions        int            `json:"sessions"`
	WithoutArtworks int            `json:"sessions_without_artworks"`
	Findings        []findingView  `json:"findings"`
	Applied         []appliedView  `json:"applied,omitempty"`
	Remaining       *[]findingView `json:"remaining,omitempty"` // after --apply
}

type findingView struct {
	Kind           reconcile.Kind `json:"kind"`
	SessionID      string         `json:"session_id"`
	ArtworkID      string         `json:"artwork_id"`
	PaymentStatus  string         `json:"payment_status"`
	Email          string         `json:"email"`
	Amount         int64          `json:"amount"`
	Currency       string         `json:"currency"`
	SessionCreated time.Time      `json:"session_created"`
	Problem        string         `json:"problem"`
	Fix            string         `json:"fix"`
	Fixable        bool           `json:"fixable"`
	Sale           *saleView      `json:"sale,omitempty"`
	Holder         *saleView      `json:"holder,omitempty"`
}

type appliedView struct {
	EventID   string                `json:"event_id"`
	SessionID string                `json:"session_id"`
	Outcome   stock.Outcome         `json:"outcome,omitempty"`
	Artworks  []stock.ArtworkResult `json:"artworks,omitempty"`
	Error     string                `json:"error,omitempty"`
}

func viewFindings(fs []reconcile.Finding) []findingView {
	out := make([]findingView, len(fs))
	for i, f := range fs {
		s := f.Session
		out[i] = findingView{
			Kind: f.Kind, SessionID: s.ID, ArtworkID: f.ArtworkID, PaymentStatus: s.PaymentStatus,
			Email: s.Email, Amount: s.AmountTotal, Currency: s.Currency, SessionCreated: s.Created.UTC(),
			Problem: f.Kind.Problem(), Fix: fixText(f), Fixable: f.Fixable(),
			Sale: viewSalePtr(f.Sale), Holder: viewSalePtr(f.Holder),
		}
	}
	return out
}

// fixText is the FIX column: what --apply does, or what a person must do.
func fixText(f reconcile.Finding) string {
	if f.Fixable() {
		return "--apply " + f.Fix
	}
	return f.Fix
}

// reconcileSettings: reconcile also asks the Stripe API.
const reconcileSettings = pipelineCommandSettings | useStripeAPI

func runReconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stdout)
	flags := sharedFlags(fs, "database-url", "log-format", "budget", "sanity-rate")
	since := sinceFlag(fs, 72*time.Hour, "check the sessions created within this long, e.g. 168h or 7d (Stripe retries webhooks for 3 days)")
	apply := fs.Bool("apply", false, "fix what can be fixed, through the same pipeline as the webhook")
	asJSON := jsonFlag(fs)
	fs.Usage = commandUsage(stdout, "reconcile [flags]", reconcileSynopsis, fs.PrintDefaults, reconcileSettings)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *since <= 0 {
		return flagError(fs, "-since must be positive, e.g. 72h")
	}
	cfg, a, err := openPipeline(ctx, flags, getenv, reconcileSettings, stderr)
	if err != nil {
		return err
	}
	defer a.journal.Close()
	sc, err := stripeapi.New(stripeapi.Config{SecretKey: cfg.StripeSecretKey, APIBase: cfg.StripeAPIBase})
	if err != nil {
		return err
	}
	r := &reconcile.Reconciler{Stripe: sc, Journal: a.journal, Catalog: a.catalog, Fulfiller: a.fulfiller, Budget: cfg.Budget}

	until := time.Now().UTC().Truncate(time.Second)
	rep := reconcileReport{Since: until.Add(-*since), Until: until}
	first, err := r.Check(ctx, rep.Since, rep.Until)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	rep.Sessions, rep.WithoutArtworks, rep.Findings = first.Sessions, first.WithoutArtworks, viewFindings(first.Findings)
	remaining := first.Findings
	if *apply {
		for _, ap := range r.Apply(ctx, first.Findings) {
			v := appliedView{EventID: ap.EventID, SessionID: ap.SessionID, Outcome: ap.Result.Outcome, Artworks: ap.Result.Artworks}
			if ap.Err != nil {
				v.Error = ap.Err.Error()
			}
			rep.Applied = append(rep.Applied, v)
		}
		again, err := r.Check(ctx, rep.Since, rep.Until)
		if err != nil {
			return fmt.Errorf("reconcile: checking again after --apply: %w", err)
		}
		remaining = again.Findings
		left := viewFindings(remaining)
		rep.Remaining = &left
	}

	if *asJSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printReconcile(stdout, rep, *apply)
	}
	if len(remaining) == 0 {
		return nil
	}
	fixable := 0
	for _, f := range remaining {
		if f.Fixable() {
			fixable++
		}
	}
	n := plural(len(remaining), "inconsistency", "inconsistencies")
	switch {
	case *apply && failedApplies(rep.Applied) > 0:
		return inconsistent("%s left after --apply: see the FIX column, and the errors of the %s", n, plural(failedApplies(rep.Applied), "event not applied", "events not applied"))
	case *apply:
		return inconsistent("%s left after --apply, each needing a person: see the FIX column", n)
	case fixable == len(remaining):
		return inconsistent("%s: `soldout reconcile --apply` fixes them", n)
	case fixable > 0:
		return inconsistent("%s: `soldout reconcile --apply` fixes %d; the others need a person (see the FIX column)", n, fixable)
	}
	return inconsistent("%s, each needing a person: see the FIX column", n)
}

// inconsistentError is reconcile's verdict that inconsistencies remain: exit
// status 3, so that a cron job tells it from a check that could not run (1).
type inconsistentError string

func (e inconsistentError) Error() string { return string(e) }

func inconsistent(format string, args ...any) error {
	return inconsistentError(fmt.Sprintf(format, args...))
}

func printReconcile(w io.Writer, rep reconcileReport, apply bool) {
	fmt.Fprintf(w, "Stripe: %s from %s to %s", plural(rep.Sessions, "complete Checkout Session", "complete Checkout Sessions"),
		formatTime(rep.Since), formatTime(rep.Until))
	if rep.WithoutArtworks > 0 {
		// Nothing to compare; the webhook answers such sessions
		// invalid_metadata, which a person must look at.
		fmt.Fprintf(w, " (%d without artwork metadata, not compared: if they sold artworks, the checkout route forgot metadata.artworkId; `soldout events list --outcome invalid_metadata` lists them)", rep.WithoutArtworks)
	}
	fmt.Fprintln(w)
	if len(rep.Findings) == 0 {
		fmt.Fprintln(w, "consistent: the journal and Sanity agree with Stripe")
		return
	}
	if !apply {
		fmt.Fprintln(w, "Read-only: nothing was changed.")
	}
	fmt.Fprintln(w)
	printFindings(w, rep.Findings)
	if !apply {
		return
	}
	if len(rep.Applied) == 0 {
		fmt.Fprintln(w, "\nNothing to apply: every finding needs a person (see the FIX column).")
		return
	}
	fmt.Fprintln(w, "\nApplied through the pipeline:")
	tw := newTable(w)
	fmt.Fprintln(tw, "EVENT\tSESSION\tOUTCOME\tARTWORKS")
	for _, a := range rep.Applied {
		out := string(a.Outcome)
		if a.Error != "" {
			out = "not applied: " + a.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.EventID, a.SessionID, out, artworkDetail(a.Artworks))
	}
	tw.Flush()
	if len(*rep.Remaining) == 0 {
		fmt.Fprintln(w, "\nChecked again: consistent.")
		return
	}
	fmt.Fprintln(w, "\nChecked again, still inconsistent:")
	printFindings(w, *rep.Remaining)
}

func printFindings(w io.Writer, fs []findingView) {
	tw := newTable(w)
	fmt.Fprintln(tw, "KIND\tSESSION\tARTWORK\tSESSION CREATED\tEMAIL\tAMOUNT\tPROBLEM\tFIX")
	for _, f := range fs {
		problem := f.Problem
		if f.Holder != nil {
			problem += fmt.Sprintf(" (%s, %s, %s)", f.Holder.SessionID, orDash(f.Holder.Email), f.Holder.State)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Kind, f.SessionID, f.ArtworkID, formatTime(f.SessionCreated),
			orDash(f.Email), formatAmount(f.Amount, f.Currency), problem, f.Fix)
	}
	tw.Flush()
}

// failedApplies counts the events --apply could not apply.
func failedApplies(applied []appliedView) int {
	n := 0
	for _, a := range applied {
		if a.Error != "" {
			n++
		}
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
