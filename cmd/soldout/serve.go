package main

import (
	"cmp"
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
	"soldout/internal/metrics"
	"soldout/internal/sanity"
	"soldout/internal/stock"
	"soldout/internal/stripeapi"
	"soldout/internal/stripehook"
)

const serveSynopsis = `Runs the webhook server. Point Stripe at POST /api/webhook (locally:
stripe listen --forward-to localhost:8080/api/webhook). GET /healthz answers
200 while serving; GET /readyz answers 200 while the journal is usable.
With STRIPE_SECRET_KEY, POST /api/fulfil lets the shop's success page
fulfil a paid session, and POST /api/checkout with GET
/api/availability/{artworkId} open Checkout Sessions that hold the piece
meanwhile; with SOLDOUT_METRICS_ADDR, Prometheus metrics are
served on that address at /metrics.
SIGTERM or Ctrl-C stops accepting, finishes the events in flight and exits 0.`

// serveSettings: the server uses every setting.
const serveSettings = useAll

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stdout)
	flags := addConfigFlags(fs)
	fs.Usage = commandUsage(stdout, "serve [flags]", serveSynopsis, fs.PrintDefaults, serveSettings)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	cfg, err := loadConfig(flags, getenv, serveSettings)
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

// openApp opens the journal with openJournal (journal.Open, which creates a
// missing one, or journal.OpenExisting) and the Sanity client. observe,
// when not nil, is told of every Sanity request (see sanity.Config.Observe).
func openApp(ctx context.Context, cfg config, openJournal func(context.Context, string) (*journal.DB, error), log *slog.Logger, observe func(endpoint, result string, d time.Duration)) (*app, error) {
	db, err := openJournal(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("opening the journal (%s): %w", cfg.DatabaseFrom, err)
	}
	catalog, err := sanity.New(sanity.Config{
		ProjectID: cfg.Sanity.ProjectID, Dataset: cfg.Sanity.Dataset, Token: cfg.Sanity.Token,
		APIVersion: cfg.Sanity.APIVersion, Host: cfg.Sanity.Host,
		MutationsPerSecond: cfg.SanityRate, Logger: log, Observe: observe,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sanity settings: %w", err)
	}
	return &app{
		journal: db,
		catalog: catalog,
		fulfiller: &stock.Fulfiller{
			Catalog: catalog, Journal: db, Logger: log, Owner: processOwner(), LeaseTTL: cfg.LeaseTTL,
			Reservations: reservationsFor(cfg, db), Mode: cfg.StripeMode, ModeSource: "STRIPE_SECRET_KEY or SOLDOUT_STRIPE_MODE",
		},
	}, nil
}

// stripeModeSetting is where the journal keeps the shop's Stripe mode.
const stripeModeSetting = "stripe_mode"

// recordedStripeMode is the mode the last serve that knew one recorded in
// the journal; ModeAny when none did.
func recordedStripeMode(ctx context.Context, db *journal.DB) (stock.StripeMode, error) {
	v, err := db.Setting(ctx, stripeModeSetting)
	if err != nil {
		return "", fmt.Errorf("reading the journal's Stripe mode: %w", err)
	}
	return stock.StripeMode(v), nil
}

// sanityDatasetSetting is where the journal keeps the Sanity project and
// dataset serve writes: its sales are of that dataset's artworks.
const sanityDatasetSetting = "sanity_dataset"

// recordedSanityDataset is the project/dataset the last serve recorded; ""
// when none did.
func recordedSanityDataset(ctx context.Context, db *journal.DB) (string, error) {
	v, err := db.Setting(ctx, sanityDatasetSetting)
	if err != nil {
		return "", fmt.Errorf("reading the journal's Sanity dataset: %w", err)
	}
	return v, nil
}

func sanityDataset(cfg config) string { return cfg.Sanity.ProjectID + "/" + cfg.Sanity.Dataset }

// recordSanityDataset stores the project and dataset serve writes, for the
// commands run from other shells (checkCommandDataset), saying so when it
// replaces another.
func recordSanityDataset(ctx context.Context, cfg config, db *journal.DB, log *slog.Logger) error {
	recorded, err := recordedSanityDataset(ctx, db)
	if err != nil {
		return err
	}
	if recorded != "" && recorded != sanityDataset(cfg) {
		log.Warn("this serve writes to another Sanity project or dataset than the one that ran this journal before: fine if the shop moved its artworks, else fix SANITY_PROJECT_ID or SANITY_DATASET and restart; replay and reconcile now follow this one",
			"sanity_dataset", sanityDataset(cfg), "previous_sanity_dataset", recorded)
	}
	if err := db.SetSetting(ctx, sanityDatasetSetting, sanityDataset(cfg)); err != nil {
		return fmt.Errorf("recording the Sanity dataset in the journal: %w", err)
	}
	return nil
}

// checkCommandDataset refuses an operator command (replay, reconcile) whose
// Sanity project or dataset is not the one serve writes for this journal: a
// replay there would record a sale as applied to a dataset the shop does not
// read, and leave the piece on sale in the real one.
func checkCommandDataset(ctx context.Context, cfg config, db *journal.DB) error {
	recorded, err := recordedSanityDataset(ctx, db)
	if err != nil {
		return err
	}
	if recorded != "" && recorded != sanityDataset(cfg) {
		return configError{fmt.Sprintf("this shell's Sanity is project/dataset %s (SANITY_PROJECT_ID, SANITY_DATASET), but soldout serve writes this journal's sales to %s: use the server's settings", sanityDataset(cfg), recorded)}
	}
	return nil
}

// commandMode is the Stripe mode an operator command (replay, reconcile)
// applies events in: the server's. A shell without the key takes the one
// serve recorded in the journal, so that a replay cannot apply an event the
// server refused as of the other mode; a shell whose own mode differs from
// the recorded one is refused, since its events would not be the server's.
func commandMode(ctx context.Context, cfg config, db *journal.DB) (mode stock.StripeMode, source string, err error) {
	recorded, err := recordedStripeMode(ctx, db)
	switch {
	case err != nil:
		return "", "", err
	case cfg.StripeMode == stock.ModeAny:
		return recorded, "the journal, where soldout serve recorded it", nil
	case recorded != stock.ModeAny && recorded != cfg.StripeMode:
		return "", "", configError{fmt.Sprintf("this shell's Stripe mode is %s (STRIPE_SECRET_KEY or SOLDOUT_STRIPE_MODE), but soldout serve runs this journal in %s mode: use the server's key (replay needs none: unset STRIPE_SECRET_KEY and SOLDOUT_STRIPE_MODE and it takes the journal's mode); if the shop is switching to %s, restart serve with these settings first",
			cfg.StripeMode, recorded, cfg.StripeMode)}
	}
	return cfg.StripeMode, "STRIPE_SECRET_KEY or SOLDOUT_STRIPE_MODE", nil
}

// recordStripeMode stores serve's own mode in the journal, for the commands
// run from other shells (commandMode). A serve that knows none applies
// events of both modes and leaves the record as it is, saying so when there
// is one.
func recordStripeMode(ctx context.Context, cfg config, db *journal.DB, log *slog.Logger) error {
	if cfg.StripeMode != stock.ModeAny {
		if err := db.SetSetting(ctx, stripeModeSetting, string(cfg.StripeMode)); err != nil {
			return fmt.Errorf("recording the Stripe mode in the journal: %w", err)
		}
		return nil
	}
	recorded, err := recordedStripeMode(ctx, db)
	if err != nil {
		return err
	}
	if recorded != stock.ModeAny {
		log.Warn("this serve knows no Stripe mode, but an earlier one ran this journal in "+string(recorded)+" mode: events of both modes are accepted; set STRIPE_SECRET_KEY or SOLDOUT_STRIPE_MODE",
			"recorded_stripe_mode", string(recorded))
	}
	return nil
}

// reservationsFor returns the journal's reservations when checkout can be
// on (it needs STRIPE_SECRET_KEY), so that serve, replay and reconcile all
// end the hold of a session they settle; nil spares every other shop a
// journal write per event.
func reservationsFor(cfg config, db *journal.DB) stock.Reservations {
	if cfg.StripeSecretKey == "" {
		return nil
	}
	return db
}

// serve runs the server until ctx ends. ready, when not nil, receives the
// bound address once the server accepts connections.
func serve(ctx context.Context, cfg config, log *slog.Logger, ready func(addr string)) error {
	verifier, err := stripehook.NewVerifier(cfg.WebhookSecrets, stripehook.DefaultTolerance)
	if err != nil {
		return err
	}
	stripeClient, err := newStripeClient(cfg)
	if err != nil {
		return err
	}
	// The listeners first: a port in use must stop soldout before it has
	// created, migrated or recorded anything in the journal.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s (PORT or -addr): %w", cfg.Addr, err)
	}
	defer ln.Close() // until srv.Serve owns it
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listening on %s (SOLDOUT_METRICS_ADDR): %w", cfg.MetricsAddr, err)
		}
		defer metricsLn.Close()
	}
	var m *metrics.Metrics
	contact := new(httpapi.SanityContact)
	observe := contact.Observe
	if cfg.MetricsAddr != "" {
		m = metrics.New()
		observe = func(endpoint, result string, d time.Duration) {
			contact.Observe(endpoint, result, d)
			m.SanityRequest(endpoint, result, d)
		}
	}
	a, err := openApp(ctx, cfg, journal.Open, log, observe)
	if err != nil {
		return err
	}
	defer a.journal.Close()
	if err := recordStripeMode(ctx, cfg, a.journal, log); err != nil {
		return err
	}
	if err := recordSanityDataset(ctx, cfg, a.journal, log); err != nil {
		return err
	}

	hc := httpapi.Config{
		Logger: log, Verifier: verifier, Fulfiller: a.fulfiller, Journal: a.journal, Budget: cfg.Budget,
		Sanity:  contact,
		Limiter: httpapi.NewClientLimiter(cfg.ClientRate, min(cfg.ClientRate, httpapi.DefaultClientBurst)),
		Shared:  httpapi.NewSharedLimiter(cfg.StorefrontRate, log),
	}
	// Interface fields are set only when there is something to set: a nil
	// pointer in an interface would not read as "off".
	if stripeClient != nil {
		hc.Sessions = stripeClient
		hc.AllowedOrigins = cfg.Checkout.AllowedOrigins
		// Checkout with reservation, also only with STRIPE_SECRET_KEY (checkout.go).
		hc.Storefront = newStorefront(cfg, a, stripeClient, log)
	}
	var metricsSrv *http.Server
	if m != nil {
		m.WatchHeld(a.journal)
		a.fulfiller.Journal = m.Journal(a.fulfiller.Journal)
		if a.fulfiller.Reservations != nil {
			a.fulfiller.Reservations = m.Reservations(a.fulfiller.Reservations)
		}
		hc.Observer = m
		metricsSrv = serveMetrics(metricsLn, m, log)
		defer metricsSrv.Close() // cutting a scrape short loses nothing
	}
	handler := httpapi.NewServer(hc)
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
	attrs := []any{
		"addr", ln.Addr().String(), "journal", a.journal.Kind(),
		"sanity_dataset", cfg.Sanity.Dataset, "sanity_api_version", cfg.Sanity.APIVersion,
		"webhook_secrets", len(cfg.WebhookSecrets), "time_budget", cfg.Budget.String(),
		"fulfil_route", onOff(stripeClient != nil), "stripe_mode", cmp.Or(string(a.fulfiller.Mode), "any (set STRIPE_SECRET_KEY or SOLDOUT_STRIPE_MODE to refuse the other mode's events)"),
	}
	if metricsSrv != nil {
		attrs = append(attrs, "metrics_addr", metricsSrv.Addr)
	}
	routes := "POST /api/webhook, GET /healthz, GET /readyz"
	if stripeClient != nil {
		routes += ", POST /api/fulfil, POST /api/checkout, GET /api/availability/{artworkId}"
	}
	log.Info("soldout serving: "+routes, attrs...)
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

// newStripeClient returns the Stripe API client, or nil when
// STRIPE_SECRET_KEY is not set and the features needing it are off.
func newStripeClient(cfg config) (*stripeapi.Client, error) {
	if cfg.StripeSecretKey == "" {
		return nil, nil
	}
	return stripeapi.New(stripeapi.Config{SecretKey: cfg.StripeSecretKey, APIBase: cfg.StripeAPIBase})
}

// serveMetrics serves Prometheus on ln, apart from the public listener so
// that metrics can stay on a private interface. Its Addr is the bound
// address (a :0 port resolved). A failure after start is logged, not fatal:
// sales matter more than metrics.
func serveMetrics(ln net.Listener, m *metrics.Metrics, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler(log))
	srv := &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped; the webhook keeps serving", "metrics_addr", srv.Addr, "err", err)
		}
	}()
	return srv
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// processOwner names this process in the journal's sale leases.
func processOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
