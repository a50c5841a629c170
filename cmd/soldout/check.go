package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"soldout/internal/journal"
	"soldout/internal/sanity"
	"soldout/internal/stock"
)

const checkSynopsis = `Verifies the configuration as an operator would before going live, one line
per check, ✓ or ✗ with what to do: the settings, the webhook secret's format,
Sanity (reachable, dataset, token accepted, drafts readable, writes allowed —
by a dry-run mutation that changes nothing), the journal (writable, schema
up to date), the Stripe mode against the one serve recorded in the journal
and, when STRIPE_SECRET_KEY is set, that Stripe accepts the key.
It exits 1 if any check fails.`

// checkResult is one line of `soldout check`.
type checkResult struct {
	Check  string `json:"check"`
	Status string `json:"status"` // ok, fail, warn or skip
	Detail string `json:"detail"`
}

const (
	checkOK   = "ok"
	checkFail = "fail"
	checkSkip = "skip"
	checkWarn = "warn" // worth knowing, not a reason to stop
)

var checkMarks = map[string]string{checkOK: "✓", checkFail: "✗", checkSkip: "–", checkWarn: "!"}

// stripeCheckSession names no real session: Stripe answers 404 to a valid
// key and 401 to a refused one.
const stripeCheckSession = "cs_soldout_check"

// checkSettings: check verifies every setting serve reads.
const checkSettings = serveSettings

func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stdout)
	flags := sharedFlags(fs, "database-url")
	asJSON := jsonFlag(fs)
	fs.Usage = commandUsage(stdout, "check [flags]", checkSynopsis, fs.PrintDefaults, checkSettings)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()

	results := runChecks(ctx, flags, getenv)
	failed := 0
	for _, r := range results {
		if r.Status == checkFail {
			failed++
		}
	}
	if *asJSON {
		if err := printJSON(stdout, results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			fmt.Fprintf(stdout, "%s %s: %s\n", checkMarks[r.Status], r.Check, r.Detail)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s failed: fix the lines marked ✗, then run soldout check again", plural(failed, "check", "checks"))
	}
	return nil
}

// checkTimeout bounds the whole check, so that an unreachable host cannot
// hang it.
const checkTimeout = 30 * time.Second

// checkDraftID names a draft that need not exist: reading it proves that the
// token may read drafts (Sanity omits them with reason "permission" otherwise).
const checkDraftID = "drafts.soldout-check"

func runChecks(ctx context.Context, flags configFlags, getenv func(string) string) []checkResult {
	var out []checkResult
	add := func(check string, err error, ok string) {
		r := checkResult{Check: check, Status: checkOK, Detail: ok}
		if err != nil {
			r.Status, r.Detail = checkFail, err.Error()
		}
		out = append(out, r)
	}
	skip := func(check, why string) { out = append(out, checkResult{Check: check, Status: checkSkip, Detail: why}) }
	warn := func(check, what string) {
		out = append(out, checkResult{Check: check, Status: checkWarn, Detail: what})
	}

	cfg, err := loadConfig(flags, getenv, checkSettings)
	var bad configError
	if err != nil && !errors.As(err, &bad) {
		bad = configError{err.Error()}
	}
	// Each bad setting on the line of what it configures.
	byLabel := make(map[string][]string)
	for _, msg := range bad {
		label := "settings"
		switch {
		case strings.HasPrefix(msg, "STRIPE_WEBHOOK_SECRET"):
			label = "webhook secret"
		case strings.HasPrefix(msg, "SANITY_"):
			label = "sanity settings"
		}
		byLabel[label] = append(byLabel[label], msg)
	}
	if len(byLabel["settings"]) == 0 {
		add("settings", nil, "well-formed (the webhook secret and Sanity have lines of their own)")
	}
	for _, label := range []string{"settings", "webhook secret", "sanity settings"} {
		for _, msg := range byLabel[label] {
			add(label, errors.New(msg), "")
		}
	}
	if len(cfg.WebhookSecrets) > 0 {
		add("webhook secret", nil, plural(len(cfg.WebhookSecrets), "secret", "secrets")+" in whsec_… format")
	}

	if len(byLabel["sanity settings"]) > 0 {
		skip("sanity", "fix the Sanity settings first")
	} else {
		checkSanity(ctx, cfg, add)
	}

	// Inspected, not opened: check creates and migrates nothing.
	if ins, err := journal.Inspect(ctx, cfg.DatabaseURL); err != nil {
		add("journal", fmt.Errorf("cannot open %s: %w", cfg.DatabaseFrom, err), "")
	} else {
		checkJournal(ins, cfg.DatabaseFrom, add, warn)
		recorded := stock.StripeMode(ins.Settings[stripeModeSetting])
		if detail, switching := stripeModeDetail(cfg.StripeMode, recorded); switching {
			warn("stripe mode", detail)
		} else {
			add("stripe mode", nil, detail)
		}
		if recorded := ins.Settings[sanityDatasetSetting]; recorded != "" && recorded != sanityDataset(cfg) {
			warn("sanity dataset", fmt.Sprintf("serve would write to %s, but the journal's sales are of %s, where serve wrote until now: fine if the shop moved its artworks there, else fix SANITY_PROJECT_ID or SANITY_DATASET", sanityDataset(cfg), recorded))
		}
	}

	stripeClient, err := newStripeClient(cfg)
	switch {
	case err != nil:
		add("stripe key", err, "")
	case stripeClient == nil:
		skip("stripe key", "STRIPE_SECRET_KEY not set: reconcile, POST /api/fulfil and POST /api/checkout stay off")
	default:
		_, err := stripeClient.Session(ctx, stripeCheckSession)
		if stock.ErrorCode(err) == stock.NotFound {
			err = nil
		}
		detail := "accepted by Stripe"
		if cfg.StripeMode != stock.ModeAny {
			detail += " (" + string(cfg.StripeMode) + " mode)"
		}
		add("stripe key", err, detail)
	}
	return out
}

// stripeModeDetail says which Stripe mode serve would run in, against the
// one the journal recorded. switching reports that they differ: a shop going
// live checks before it restarts serve, so that is a warning, not a failure,
// though replay and reconcile from this shell are refused until the restart.
func stripeModeDetail(mode, recorded stock.StripeMode) (detail string, switching bool) {
	switch {
	case mode != stock.ModeAny && recorded != stock.ModeAny && mode != recorded:
		return fmt.Sprintf("this shell's settings say %s mode, but soldout serve ran this journal in %s mode: fine if the shop is switching to %s (serve records it when restarted with these settings); until then replay and reconcile from this shell are refused", mode, recorded, mode), true
	case mode != stock.ModeAny:
		return string(mode) + " mode: events of the other mode are refused", false
	case recorded != stock.ModeAny:
		return "none set here; soldout serve ran this journal in " + string(recorded) + " mode, which replay follows", false
	}
	return "none set: events of both modes are accepted (STRIPE_SECRET_KEY or SOLDOUT_STRIPE_MODE would refuse the other mode's)", false
}

// checkSanity adds the Sanity lines: the dataset answers, drafts are
// readable, and a write would be allowed.
func checkSanity(ctx context.Context, cfg config, add func(check string, err error, ok string)) {
	c, err := sanity.New(sanity.Config{
		ProjectID: cfg.Sanity.ProjectID, Dataset: cfg.Sanity.Dataset, Token: cfg.Sanity.Token,
		APIVersion: cfg.Sanity.APIVersion, Host: cfg.Sanity.Host,
	})
	if err != nil {
		add("sanity", err, "")
		return
	}
	if err := c.Ping(ctx); err != nil {
		add("sanity", err, "")
		return
	}
	add("sanity", nil, fmt.Sprintf("project %s, dataset %s: reachable, dataset exists, token accepted", cfg.Sanity.ProjectID, cfg.Sanity.Dataset))
	_, err = c.Documents(ctx, checkDraftID)
	add("sanity drafts", err, "the token reads drafts")
	add("sanity write", c.DryRunWrite(ctx), "the token may write (dry-run mutation, nothing changed)")
}

// currentUser names the user check runs as, for a line about permissions.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return "user " + u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

// checkJournal adds the journal's line: a journal this build can run, that
// takes writes. One that serve has yet to create or migrate is a warning:
// the normal state before a first start or an upgrade.
func checkJournal(ins journal.Inspection, from string, add func(check string, err error, ok string), warn func(check, detail string)) {
	latest := journal.LatestSchemaVersion()
	switch {
	case ins.Missing:
		if err := journal.Creatable(ins.Path); err != nil {
			// A warning: serve may run as another user, or its directory
			// may be made when its service starts.
			warn("journal", fmt.Sprintf("no journal yet at %s, and %v as %s: if serve runs as this user, create the directory or give it a writable one", ins.Path, err, currentUser()))
			return
		}
		warn("journal", fmt.Sprintf("no journal yet at %s: soldout serve creates it at its first start; if serve has run already, %s names another file", ins.Path, from))
	case ins.Version > latest:
		add("journal", fmt.Errorf("schema version %d is newer than this soldout's %d: a newer soldout migrated it; run that version", ins.Version, latest), "")
	case ins.Version == 0 && len(ins.OtherTables) > 0 && ins.Kind == "sqlite":
		add("journal", fmt.Errorf("%s is another application's database (tables %s), not a journal: point %s at soldout's journal, or at a new file", ins.Path, strings.Join(ins.OtherTables, ", "), from), "")
	case ins.NotWritable != nil:
		add("journal", fmt.Errorf("not writable: %w", ins.NotWritable), "")
	case ins.Version == 0 && len(ins.OtherTables) > 0:
		warn("journal", fmt.Sprintf("postgres, writable, no journal in schema %s but other tables (%s): soldout serve would create its tables beside them; if that is not meant, give soldout a schema of its own (search_path in %s)", ins.Schema, strings.Join(ins.OtherTables, ", "), from))
	case ins.Version == 0:
		warn("journal", ins.Kind+", writable, empty: soldout serve creates the tables at its first start")
	case ins.Version < latest:
		warn("journal", fmt.Sprintf("%s, writable, schema version %d: soldout serve migrates it to %d at its next start; back it up first, since an older soldout cannot run it afterwards", ins.Kind, ins.Version, latest))
	default:
		add("journal", nil, ins.Kind+", writable, schema up to date")
	}
}
