package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"soldout/internal/journal"
	"soldout/internal/stripeapi"
)

// runVersion prints what an operator compares before an upgrade or in a bug
// report: the build, the journal schema it migrates to, the Stripe API
// version it pins.
func runVersion(_ context.Context, args []string, _ func(string) string, stdout, _ io.Writer) error {
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		fmt.Fprintln(stdout, "Usage: soldout version\n\nPrints the build's version and commit, the journal schema it migrates to and the\nStripe API version it pins: compare them before an upgrade, quote them in a bug report.\nIt reads no setting.")
		return nil
	case len(args) > 0:
		return usageError(fmt.Sprintf("unexpected argument %q (see `soldout version -h`)", args[0]))
	}
	version, commit := "(unknown)", ", commit not recorded (built with -buildvcs=false, or outside a git checkout)"
	if info, ok := debug.ReadBuildInfo(); ok {
		version = info.Main.Version
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			commit = ", commit " + rev
			if t := settings["vcs.time"]; t != "" {
				commit += " of " + t
			}
			if settings["vcs.modified"] == "true" {
				commit += ", with uncommitted changes"
			}
		}
	}
	fmt.Fprintf(stdout, "soldout %s%s\n%s %s/%s; journal schema %d; Stripe API %s\n",
		version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, journal.LatestSchemaVersion(), stripeapi.APIVersion)
	return nil
}
