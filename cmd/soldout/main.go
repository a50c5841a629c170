// Command soldout keeps a one-of-a-kind art shop's stock true: it receives
// Stripe Checkout webhooks and marks sold artworks unavailable in Sanity.
// Run `soldout help` for the commands and settings.
package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "soldout:", err)
		os.Exit(exitCode(err))
	}
}

// run is the whole program, callable from tests with their own arguments,
// environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printHelp(stderr)
		return usageError("no command given")
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" {
		name = "help" // what a user tries first
	}
	cmd, ok := commands()[name]
	if !ok {
		return unknownCommand(args[0])
	}
	return cmd.run(ctx, args[1:], getenv, stdout, stderr)
}

// unknownCommand says so, and which command was probably meant.
func unknownCommand(name string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	best, bestDistance := "", 3 // more than two edits away is no typo
	for _, known := range slices.Sorted(maps.Keys(commands())) {
		if d := editDistance(name, known); d < bestDistance && known != name {
			best, bestDistance = known, d
		}
	}
	if best != "" {
		msg += fmt.Sprintf(": did you mean %q?", best)
	}
	return usageError(msg + " (see `soldout help`)")
}

// editDistance is Levenshtein's distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// usageError marks a mistake in the command line (exit status 2).
type usageError string

func (e usageError) Error() string { return string(e) }

func exitCode(err error) int {
	switch err.(type) {
	case usageError:
		return 2
	case inconsistentError:
		return 3
	}
	return 1
}
