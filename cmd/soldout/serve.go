package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"soldout/internal/httpapi"
	"soldout/internal/journal"
	"soldout/internal/sanity"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

const serveSynopsis = `Runs the webhook server. Point Stripe at POST /api/webhook (locally:
stripe listen --forward-to localhost:8080/api/webhook). GET /healthz answers
200 while serving; GET /readyz answers 200 while the journal is usable.
SIGTERM or Ctrl-C stops accepting, finishes the events in flight and exits 0.`

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := addConfigFlags(fs)
	fs.Usage = commandUsage(stderr, "serve [flags]", serveSynopsis, fs.PrintDefaults)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	cfg, err := loadConfig(flags, getenv, true, true)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, newLogger(cfg, stdout), nil)
}

// app is soldout's pipeline wired to its journal and catalog.
type app struct {
	journal   *journal.DB
	catalog   *sanity.Client
	fulfiller *stock.Fulfiller
}

func openApp(ctx context.Context, cfg config, log *slog.Logger) (*app, error) {
	db, err := journal.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("opening the journal (DATABASE_URL): %w", err)
	}
	catalog, err := sanity.New(sanity.Config{
		ProjectID: cfg.Sanity.ProjectID, Dataset: cfg.Sanity.Dataset, Token: cfg.Sanity.Token,
		APIVersion: cfg.Sanity.APIVersion, Host: cfg.Sanity.Host,
		MutationsPerSecond: cfg.SanityRate, Logger: log,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sanity settings: %w", err)
	}
	return &app{
		journal: db,
		catalog: catalog,
		fulfiller: &stock.Fulfiller{
			Catalog: catalog, Journal: db, Logger: log, Owner: processOwner(),
		},
	}, nil
}

// serve runs the server until ctx ends. ready, when not nil, receives the
// bound address once the server accepts connections.
func serve(ctx context.Context, cfg config, log *slog.Logger, ready func(addr string)) error {
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.journal.Close()
	verifier, err := stripehook.NewVerifier(cfg.WebhookSecrets, stripehook.DefaultTolerance)
	if err != nil {
		return err
	}
	handler := httpapi.NewServer(httpapi.Config{
		Logger: log, Verifier: verifier, Fulfiller: a.fulfiller, Journal: a.journal, Budget: cfg.Budget,
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s (PORT or -addr): %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler: handler,
		// Slow or stuck clients must not hold connections: Stripe sends a
		// few kilobytes at once and reads a small answer.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.Budget + 5*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("soldout serving: POST /api/webhook, GET /healthz, GET /readyz",
		"addr", ln.Addr().String(), "journal", a.journal.Kind(),
		"sanity_dataset", cfg.Sanity.Dataset, "sanity_api_version", cfg.Sanity.APIVersion,
		"webhook_secrets", len(cfg.WebhookSecrets), "time_budget", cfg.Budget.String())
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err := <-served:
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}
	log.Info("stopping: no new connections; finishing the events in flight")
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.Budget+2*time.Second)
	defer cancel()
	if err := srv.Shutdown(stopCtx); err != nil {
		return fmt.Errorf("events still in flight after %s; Stripe will retry them: %w", cfg.Budget+2*time.Second, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

// processOwner names this process in the journal's sale leases.
func processOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
