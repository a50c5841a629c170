// Command soldout keeps a one-of-a-kind art shop's stock true: it receives
// Stripe Checkout webhooks and marks sold artworks unavailable in Sanity.
// Run `soldout help` for the commands and settings.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
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
		printHelp(stderr)
		return usageError(fmt.Sprintf("unknown command %q", args[0]))
	}
	return cmd.run(ctx, args[1:], getenv, stdout, stderr)
}

// usageError marks a mistake in the command line (exit status 2).
type usageError string

func (e usageError) Error() string { return string(e) }

func exitCode(err error) int {
	if _, ok := err.(usageError); ok {
		return 2
	}
	return 1
}
