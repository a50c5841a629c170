package main

import (
	"context"
	"fmt"
	"io"
	"slices"
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
		// Operator commands: they read the same settings as serve, and print
		// to a terminal what buyers' browsers and Stripe's metadata put in
		// the journal, hence operatorOutput.
		"events":    {"the journal's Stripe events: events list [filters], events show EVENT_ID", operatorOutput(runEvents)},
		"sales":     {"who bought what, and every double sale with both sessions: sales list", operatorOutput(runSales)},
		"replay":    {"run a journaled event through the pipeline again (idempotent)", operatorOutput(runReplay)},
		"reconcile": {"compare Stripe's completed sessions with the journal and Sanity; --apply fixes", operatorOutput(runReconcile)},
		"check":     {"verify the configuration before going live, one ✓ or ✗ line per check", operatorOutput(runCheck)},
		"trigger":   {"send a correctly signed sample event to a running soldout", operatorOutput(runTrigger)},
		"help": {"show this help; help COMMAND shows that command's", func(ctx context.Context, args []string, getenv func(string) string, stdout, _ io.Writer) error {
			if len(args) == 0 {
				printHelp(stdout)
				return nil
			}
			cmd, ok := commands()[args[0]]
			if !ok || args[0] == "help" {
				return unknownCommand(args[0])
			}
			// Asked for, the help goes to stdout, where a pager or grep reads it.
			return cmd.run(ctx, []string{"-h"}, getenv, stdout, stdout)
		}},
	}
}

// envHelp documents every environment variable, in one place, for `help`
// and for each command's -h.
var envHelp = []struct{ name, help string }{
	{"PORT", "listen on :PORT (default 8080); -addr overrides"},
	{"STRIPE_WEBHOOK_SECRET", "required: the endpoint's signing secret whsec_…; several, comma-separated, while rolling a secret"},
	{"SANITY_PROJECT_ID", "required: the Sanity project id (projectId in sanity.config.ts)"},
	{"SANITY_DATASET", "required: the dataset holding the artworks, e.g. production"},
	{"SANITY_API_TOKEN", "required: a robot token with the Editor role (sanity.io/manage → API → Tokens)"},
	{"SANITY_API_VERSION", "Sanity API version date (default " + sanity.DefaultAPIVersion + ", the oldest accepted)"},
	{"SANITY_API_HOST", "optional base URL replacing https://<project>.api.sanity.io, e.g. http://127.0.0.1:7777"},
	{"DATABASE_URL", "journal: a path or sqlite:<path> (default soldout.db, embedded SQLite), or postgres://… shared by several replicas"},
	{"SOLDOUT_LOG_FORMAT", "json (default) or text"},
	{"SOLDOUT_LOG_LEVEL", "debug, info (default), warn or error"},
	{"SOLDOUT_TIME_BUDGET", "longest a webhook may take before soldout answers 503 so Stripe retries (default 8s)"},
	{"SOLDOUT_SANITY_RATE", "Sanity mutation requests per second, per process (default 25)"},
	{"SOLDOUT_LEASE_TTL", "how long a replica's claim on a sale lasts; a killed replica blocks that sale this long (default 20s, or the budget + 5s; at least the budget + 1s)"},
	{"STRIPE_SECRET_KEY", "optional: sk_… or rk_… key for reconcile, POST /api/fulfil and POST /api/checkout (off without it); its mode is the shop's"},
	{"SOLDOUT_STRIPE_MODE", "test or live: events of the other mode are refused (default: the key's mode; else serve takes both, and the other commands the mode serve recorded in the journal)"},
	{"STRIPE_API_BASE", "optional base URL replacing https://api.stripe.com (tests, stripe-mock)"},
	{"SOLDOUT_METRICS_ADDR", "optional: serve Prometheus metrics on this host:port, e.g. 127.0.0.1:9090 (off when unset)"},
	{"SOLDOUT_CLIENT_RATE", "storefront routes: requests per minute per client IP (default 30)"},
	{"SOLDOUT_STOREFRONT_RATE", "storefront routes: requests per second of all clients together (default 100)"},
	{"SOLDOUT_CLIENT_HOLDS", "checkout: pieces one client (IP, IPv6 /64) may hold at once; 0, the default, caps nothing (behind a proxy all buyers are one client)"},
	{"SOLDOUT_RESERVATION_TTL", "checkout: how long a reservation holds an artwork (default and least 31m: Stripe's minimum of 30m and a margin)"},
	{"SOLDOUT_SUCCESS_URL", "checkout: where Stripe sends the buyer after paying; may contain {CHECKOUT_SESSION_ID}"},
	{"SOLDOUT_CANCEL_URL", "checkout: where Stripe sends a buyer who gives up"},
	{"SOLDOUT_ALLOWED_ORIGINS", "comma-separated storefront origins allowed by CORS on /api/checkout, /api/availability and /api/fulfil, e.g. https://shop.example.com"},
	{"SOLDOUT_DEFAULT_CURRENCY", "checkout: currency of artworks that have none (default eur)"},
	{"SOLDOUT_ARTWORK_TYPE", "checkout: the artworks' Sanity _type; other documents cannot be checked out (default artwork)"},
	{"SOLDOUT_FIELD_TITLE", "checkout: artwork field names: _TITLE (title), _PRICE (price, major units), _CURRENCY (currency), _IMAGE (imageUrl)"},
}

// The settings by what they configure, for each command's -h to list the
// ones it reads.
var (
	journalEnv  = []string{"DATABASE_URL"}
	logEnv      = []string{"SOLDOUT_LOG_FORMAT", "SOLDOUT_LOG_LEVEL"}
	sanityEnv   = []string{"SANITY_PROJECT_ID", "SANITY_DATASET", "SANITY_API_TOKEN", "SANITY_API_VERSION", "SANITY_API_HOST"}
	stripeEnv   = []string{"STRIPE_SECRET_KEY", "SOLDOUT_STRIPE_MODE", "STRIPE_API_BASE"}
	pipelineEnv = []string{"SOLDOUT_TIME_BUDGET", "SOLDOUT_SANITY_RATE", "SOLDOUT_LEASE_TTL"}
	// pipelineCommandEnv is what replay and reconcile read: they run events
	// through the pipeline as serve does, without serving.
	pipelineCommandEnv = slices.Concat(journalEnv, logEnv, sanityEnv, stripeEnv, pipelineEnv)
)

// everyEnv names every setting, for the commands that read them all.
func everyEnv() []string {
	names := make([]string, len(envHelp))
	for i, e := range envHelp {
		names[i] = e.name
	}
	return names
}

// printEnvHelp documents the settings named, in envHelp's order.
func printEnvHelp(w io.Writer, names []string) {
	width := 0
	for _, name := range names {
		width = max(width, len(name))
	}
	for _, e := range envHelp {
		if slices.Contains(names, e.name) {
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
	printEnvHelp(w, everyEnv())
	fmt.Fprintln(w, "\nTry it without any account: soldout demo")
}

// commandUsage prints a command's help: synopsis, flags, and the settings
// of env, the ones the command reads.
func commandUsage(w io.Writer, name, synopsis string, printFlags func(), env []string) func() {
	return func() {
		fmt.Fprintf(w, "Usage: soldout %s\n\n%s\n\nFlags:\n", name, strings.TrimSpace(synopsis))
		printFlags()
		fmt.Fprintln(w)
		if len(env) == len(envHelp) {
			fmt.Fprintln(w, "Environment:")
		} else {
			fmt.Fprintln(w, "Environment it reads (`soldout help` lists every setting):")
		}
		printEnvHelp(w, env)
	}
}
