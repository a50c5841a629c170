package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"soldout/internal/httpapi"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

const replaySynopsis = `Runs a journaled event through the same pipeline as the webhook again, from
the payload Stripe signed: for an event that failed (Stripe gave up after
three days, or you fixed the token or dataset and do not want to wait for the
next retry). It is idempotent: an event already applied is left alone and
reported as such. --force runs the rules again anyway — they are idempotent
too — and writes an artwork unavailable again if the journal says it was sold
but Sanity offers it for sale; that run is journaled as replay:EVENT_ID:<time>.

Examples:
  soldout events list -outcome not_applied    find what failed
  soldout replay evt_1QxYz…                   apply it now
  soldout replay -force evt_1QxYz…            Sanity was edited back to for sale`

// needsPerson reports whether outcome is a decision that no run of the
// rules changes: the event is done, and a person has something to do.
func needsPerson(o stock.Outcome) bool {
	return o == stock.OutcomeInvalidMetadata || o == stock.OutcomeDoubleSale
}

// replayReport is what replay prints with -json.
type replayReport struct {
	EventID         string                `json:"event_id"`
	PreviousOutcome stock.Outcome         `json:"previous_outcome"`
	Replayed        bool                  `json:"replayed"`
	RunID           string                `json:"run_id,omitempty"` // the journal id of this run
	Outcome         stock.Outcome         `json:"outcome,omitempty"`
	Artworks        []stock.ArtworkResult `json:"artworks,omitempty"`
	Error           string                `json:"error,omitempty"`
}

// replaySettings: replay builds no Stripe client, so it needs no
// STRIPE_API_BASE.
const replaySettings = pipelineCommandSettings

func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stdout)
	flags := sharedFlags(fs, "database-url", "log-format", "budget", "sanity-rate")
	force := fs.Bool("force", false, "run the rules again even if the event was applied")
	asJSON := jsonFlag(fs)
	fs.Usage = commandUsage(stdout, "replay [flags] EVENT_ID", replaySynopsis, fs.PrintDefaults, replaySettings)
	id, help, err := parseFlagsAndID(fs, args, "EVENT_ID")
	if help || err != nil {
		return err
	}
	cfg, a, err := openPipeline(ctx, flags, getenv, replaySettings, stderr)
	if err != nil {
		return err
	}
	defer a.journal.Close()
	rec, err := journalEvent(ctx, a.journal, id)
	if err != nil {
		return err
	}
	if strings.HasPrefix(rec.ID, httpapi.FulfilEventPrefix) {
		return fmt.Errorf("event %s came from the success page (POST /api/fulfil), not from Stripe, and cannot be replayed: `soldout reconcile --apply` applies its session (the page's next request, or Stripe's webhook, does too)", id)
	}
	ev, err := stripehook.Decode(rec.Payload)
	if err != nil {
		return fmt.Errorf("event %s: the journaled payload is not a usable Stripe event, so it cannot be replayed: %w", id, err)
	}
	rep := replayReport{EventID: id, PreviousOutcome: rec.Outcome}
	if rec.Outcome.Final() && !*force {
		if *asJSON {
			return printJSON(stdout, rep)
		}
		fmt.Fprintf(stdout, "%s: already decided (outcome %s", id, rec.Outcome)
		if rec.Detail != "" {
			fmt.Fprintf(stdout, ": %s", rec.Detail)
		}
		fmt.Fprintf(stdout, "); nothing done. `soldout replay --force %s` runs the rules again.\n", id)
		if needsPerson(rec.Outcome) {
			fmt.Fprintf(stdout, "A replay decides the same: a person must act on %s (see README, \"When a sale went wrong\").\n", rec.Outcome)
		}
		return nil
	}

	// The journal's id is the one to finish, even for an event journaled
	// under another id than its payload's (replay:…).
	ev.ID = rec.ID
	handle := a.fulfiller.Handle
	if *force {
		// A run of its own in the journal, which keeps the original's outcome.
		ev.ID = "replay:" + rec.ID + ":" + time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
		handle = a.fulfiller.Reapply
	}
	hctx, cancel := context.WithTimeout(ctx, cfg.Budget)
	defer cancel()
	res, err := handle(hctx, ev)
	rep.Replayed, rep.RunID, rep.Outcome, rep.Artworks = true, ev.ID, res.Outcome, res.Artworks
	if err != nil {
		err = fmt.Errorf("event %s not applied, with Sanity project %s, dataset %s: %w; fix what this says, then replay it again", id, cfg.Sanity.ProjectID, cfg.Sanity.Dataset, err)
		rep.Error = err.Error()
	}
	if *asJSON {
		if perr := printJSON(stdout, rep); perr != nil {
			return perr
		}
		return err
	}
	if err == nil {
		fmt.Fprintf(stdout, "replayed %s as %s, with Sanity project %s, dataset %s: %s\n", id, ev.ID, cfg.Sanity.ProjectID, cfg.Sanity.Dataset, res.Outcome)
	}
	artworkResults(stdout, res)
	return err
}
