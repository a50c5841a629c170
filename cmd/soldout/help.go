package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"soldout/internal/sanity"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"serve": {"run the webhook server (POST /api/webhook, GET /healthz, GET /readyz)", runServe},
		"demo":  {"a self-contained tour on an in-memory Sanity stand-in: no account needed", runDemo},
		// Operator commands: each reads only the settings its -h lists, and
		// prints to a terminal what buyers' browsers and Stripe's metadata
		// put in the journal, hence operatorOutput.
		"events":    {"the journal's Stripe events: events list [filters], events show EVENT_ID", operatorOutput(runEvents)},
		"sales":     {"who bought what, and every double sale with both sessions: sales list", operatorOutput(runSales)},
		"replay":    {"run a journaled event through the pipeline again (idempotent)", operatorOutput(runReplay)},
		"reconcile": {"compare Stripe's completed sessions with the journal and Sanity; --apply fixes", operatorOutput(runReconcile)},
		"check":     {"verify the configuration before going live, one ✓ or ✗ line per check", operatorOutput(runCheck)},
		"trigger":   {"send a correctly signed sample event to a running soldout", operatorOutput(runTrigger)},
		"version":   {"print soldout's version, commit, journal schema and Stripe API version", runVersion},
		"help": {"show this help; help COMMAND [SUBCOMMAND] shows that command's", func(ctx context.Context, args []string, getenv func(string) string, stdout, _ io.Writer) error {
			if len(args) == 0 || args[0] == "help" {
				printHelp(stdout)
				return nil
			}
			cmd, ok := commands()[args[0]]
			if !ok {
				return unknownCommand(args[0])
			}
			// help events list is events list -h.
			return cmd.run(ctx, append(args[1:], "-h"), getenv, stdout, stdout)
		}},
	}
}

// envHelp documents every environment variable, in one place, for `help`
// and for each command's -h; use is the group loadConfig reads it in.
var envHelp = []struct {
	use        settings
	name, help string
}{
	{usePort, "PORT", "the webhook server listens on :PORT (default " + defaultPort + "; serve's -addr overrides); trigger's default -url uses it"},
	{useWebhookSecret, "STRIPE_WEBHOOK_SECRET", "required: the endpoint's signing secret whsec_…; several, comma-separated, while rolling a secret"},
	{useSanity, "SANITY_PROJECT_ID", "required: the Sanity project id (projectId in sanity.config.ts)"},
	{useSanity, "SANITY_DATASET", "required: the dataset holding the artworks, e.g. production"},
	{useSanity, "SANITY_API_TOKEN", "required: a robot token with the Editor role (sanity.io/manage → API → Tokens)"},
	{useSanity, "SANITY_API_VERSION", "Sanity API version date (default " + sanity.DefaultAPIVersion + ", the oldest accepted)"},
	{useSanity, "SANITY_API_HOST", "optional base URL replacing https://<project>.api.sanity.io, e.g. http://127.0.0.1:7777"},
	{useJournal, "DATABASE_URL", "journal: a path or sqlite:<path> (default soldout.db, embedded SQLite), or postgres://… shared by several replicas"},
	{useLogFormat, "SOLDOUT_LOG_FORMAT", "json (default) or text"},
	{useLogLevel, "SOLDOUT_LOG_LEVEL", "debug, info (default), warn or error"},
	{usePipeline, "SOLDOUT_TIME_BUDGET", "longest a webhook may take before soldout answers 503 so Stripe retries (default 8s)"},
	{usePipeline, "SOLDOUT_SANITY_RATE", "Sanity mutation requests per second, per process (default 25)"},
	{usePipeline, "SOLDOUT_LEASE_TTL", "how long a replica's claim on a sale lasts; a killed replica blocks that sale this long (default 20s, or the budget + 5s; at least the budget + 1s)"},
	{useStripeMode, "STRIPE_SECRET_KEY", "optional: sk_… or rk_… key for reconcile, POST /api/fulfil and POST /api/checkout (off without it); its mode is the shop's"},
	{useStripeMode, "SOLDOUT_STRIPE_MODE", "test or live: events of the other mode are refused (default: the key's mode; else serve takes both, and the other commands the mode serve recorded in the journal)"},
	{useStripeAPI, "STRIPE_API_BASE", "optional base URL replacing https://api.stripe.com (tests, stripe-mock)"},
	{useServer, "SOLDOUT_METRICS_ADDR", "optional: serve Prometheus metrics on this host:port, e.g. 127.0.0.1:9090 (off when unset)"},
	{useServer, "SOLDOUT_CLIENT_RATE", "storefront routes: requests per minute per client IP (default 30)"},
	{useServer, "SOLDOUT_STOREFRONT_RATE", "storefront routes: requests per second of all clients together (default 100)"},
	{useServer, "SOLDOUT_CLIENT_HOLDS", "checkout: pieces one client (IP, IPv6 /64) may hold at once; 0, the default, caps nothing (behind a proxy all buyers are one client)"},
	{useServer, "SOLDOUT_RESERVATION_TTL", "checkout: how long a reservation holds an artwork (default and least 31m: Stripe's minimum of 30m and a margin)"},
	{useServer, "SOLDOUT_SUCCESS_URL", "checkout: where Stripe sends the buyer after paying; may contain {CHECKOUT_SESSION_ID}"},
	{useServer, "SOLDOUT_CANCEL_URL", "checkout: where Stripe sends a buyer who gives up"},
	{useServer, "SOLDOUT_ALLOWED_ORIGINS", "comma-separated storefront origins allowed by CORS on /api/checkout, /api/availability and /api/fulfil, e.g. https://shop.example.com"},
	{useServer, "SOLDOUT_DEFAULT_CURRENCY", "checkout: currency of artworks that have none (default eur)"},
	{useServer, "SOLDOUT_ARTWORK_TYPE", "checkout: the artworks' Sanity _type; other documents cannot be checked out (default artwork)"},
	{useServer, "SOLDOUT_FIELD_TITLE", "checkout: artwork field names: _TITLE (title), _PRICE (price, major units), _CURRENCY (currency), _IMAGE (imageUrl)"},
}

// printEnvHelp documents the settings of the groups in use, in envHelp's
// order.
func printEnvHelp(w io.Writer, use settings) {
	width := 0
	for _, e := range envHelp {
		if use.has(e.use) {
			width = max(width, len(e.name))
		}
	}
	for _, e := range envHelp {
		if use.has(e.use) {
			fmt.Fprintf(w, "  %-*s  %s\n", width, e.name, e.help)
		}
	}
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `soldout keeps a one-of-a-kind art shop's stock true: when a buyer completes a
Stripe Checkout, the artwork becomes isAvailable: false in Sanity, once, safely.

Usage: soldout <command> [flags]

Commands:
`)
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for name := range cmds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w, "\nRun `soldout <command> -h` for its flags and the settings it reads.")
	fmt.Fprintln(w, "\nEnvironment:")
	printEnvHelp(w, useAll)
	fmt.Fprintln(w, "\nTry it without any account: soldout demo")
}

// commandUsage prints a command's help: synopsis, flags, and the settings
// it reads, those of use.
func commandUsage(w io.Writer, name, synopsis string, printFlags func(), use settings) func() {
	return func() {
		fmt.Fprintf(w, "Usage: soldout %s\n\n%s\n\nFlags:\n", name, strings.TrimSpace(synopsis))
		printFlags()
		fmt.Fprintln(w)
		if use == useAll {
			fmt.Fprintln(w, "Environment:")
		} else {
			fmt.Fprintln(w, "Environment it reads (`soldout help` lists every setting):")
		}
		printEnvHelp(w, use)
	}
}
