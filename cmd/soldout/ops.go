package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"soldout/internal/journal"
)

// Plumbing shared by the operator commands (events, sales, replay,
// reconcile, check, trigger).

// sharedFlags registers on fs the named flags of addConfigFlags, so that
// every command documents a setting the same way; the others keep their
// defaults (the environment's value).
func sharedFlags(fs *flag.FlagSet, names ...string) configFlags {
	all := flag.NewFlagSet("", flag.ContinueOnError)
	flags := addConfigFlags(all)
	for _, name := range names {
		f := all.Lookup(name)
		fs.Var(f.Value, f.Name, f.Usage)
	}
	return flags
}

// sinceFlag is a duration flag that also takes whole days (3d, 7d), as the
// runbook counts Stripe's retries.
func sinceFlag(fs *flag.FlagSet, value time.Duration, usage string) *time.Duration {
	d := value
	fs.Var((*days)(&d), "since", usage)
	return &d
}

type days time.Duration

func (d *days) String() string { return time.Duration(*d).String() }

func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 0 {
			*d = days(time.Duration(v) * 24 * time.Hour)
			return nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return errors.New("a duration like 3d, 72h or 30m")
	}
	*d = days(v)
	return nil
}

func jsonFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print JSON instead of a table")
}

// parseFlagsAndID parses a command line holding one positional argument,
// what (such as EVENT_ID), with flags before or after it.
func parseFlagsAndID(fs *flag.FlagSet, args []string, what string) (id string, help bool, err error) {
	if help, err = parseQuietly(fs, args); help || err != nil {
		return "", help, err
	}
	if fs.NArg() == 0 {
		return "", false, flagError(fs, "missing "+what)
	}
	id = fs.Arg(0)
	help, err = parseFlags(fs, fs.Args()[1:])
	return id, help, err
}

// runSubcommand dispatches `soldout <name> <sub> …`.
func runSubcommand(ctx context.Context, name string, subs map[string]command, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	names := slices.Sorted(maps.Keys(subs))
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: soldout %s <%s> [flags]\n\n", name, strings.Join(names, "|"))
		for _, n := range names {
			fmt.Fprintf(w, "  %-6s %s\n", n, subs[n].summary)
		}
		fmt.Fprintf(w, "\nRun `soldout %s <command> -h` for its flags.\n", name)
	}
	if len(args) == 0 {
		return usageError(fmt.Sprintf("missing command after %q: use one of %s (see `soldout %s -h`)", name, strings.Join(names, ", "), name))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	}
	sub, ok := subs[args[0]]
	if !ok {
		return usageError(fmt.Sprintf("unknown command %q for soldout %s: use one of %s (see `soldout %s -h`)", args[0], name, strings.Join(names, ", "), name))
	}
	return sub.run(ctx, args[1:], getenv, stdout, stderr)
}

// openJournal reads the settings of use, the journal's among them, and
// opens an existing journal, for the commands that only read it.
func openJournal(ctx context.Context, flags configFlags, getenv func(string) string, use settings) (*journal.DB, error) {
	cfg, err := loadConfig(flags, getenv, use)
	if err != nil {
		return nil, err
	}
	db, err := journal.OpenExisting(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("opening the journal (%s): %w", cfg.DatabaseFrom, err)
	}
	return db, nil
}

// pipelineCommandSettings is what openPipeline needs: what the pipeline
// reads as in serve, without the listeners' settings or the webhook secret.
const pipelineCommandSettings = useJournal | useLogFormat | useLogLevel | usePipeline | useSanity | useStripeMode

// openPipeline reads the settings of use, at least pipelineCommandSettings,
// and opens the journal and Sanity, for the commands that run events
// through the pipeline; its logs go to stderr.
func openPipeline(ctx context.Context, flags configFlags, getenv func(string) string, use settings, stderr io.Writer) (config, *app, error) {
	cfg, err := loadConfig(flags, getenv, use)
	if err != nil {
		return cfg, nil, err
	}
	// An existing journal only: at a mistyped path an empty one would make
	// reconcile take every paid session for unrecorded, and --apply would
	// apply them there.
	a, err := openApp(ctx, cfg, journal.OpenExisting, newLogger(cfg, stderr), nil)
	if err != nil {
		return cfg, nil, err
	}
	if a.fulfiller.Mode, a.fulfiller.ModeSource, err = commandMode(ctx, cfg, a.journal); err == nil {
		err = checkCommandDataset(ctx, cfg, a.journal)
	}
	if err != nil {
		a.journal.Close()
		return cfg, nil, err
	}
	return cfg, a, nil
}
