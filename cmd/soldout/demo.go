package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"soldout/internal/sanity/memlake"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

const demoSynopsis = `A self-contained tour, with no Stripe or Sanity account. It starts the real
server and journal against an IN-MEMORY stand-in for a Sanity dataset (not
Sanity: a few seeded artworks that vanish when the demo ends), sends correctly
signed Checkout events over real HTTP — a sale, its duplicate, two buyers
racing for one piece, a sale while an editor has a draft open, a delayed
payment that fails, a forged request — and prints what happened to each
artwork. With -keep it goes on serving and prints how to send events by hand.`

const (
	demoProject = "demo"
	demoDataset = "production"
	demoToken   = "demo-token-not-a-secret"
)

// demoArtworks seeds the in-memory dataset.
var demoArtworks = []struct{ id, title string }{
	{"artwork-blue-horizon", "Blue Horizon"},
	{"artwork-red-dune", "Red Dune"},
	{"artwork-night-garden", "Night Garden"},
	{"artwork-salt-marsh", "Salt Marsh"},
	{"artwork-still-here", "Still Here"},
}

// demoSettings: the demo supplies its own settings but the log level.
const demoSettings = useLogLevel

func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stdout)
	keep := fs.Bool("keep", false, "keep serving after the tour, until Ctrl-C")
	addr := fs.String("addr", "127.0.0.1:0", "listen address of the demo server (use 127.0.0.1:8080 with -keep)")
	showLogs := fs.Bool("logs", false, "also print the server's log lines (text format) to stderr")
	fs.Usage = commandUsage(stdout, "demo [flags]", demoSynopsis, fs.PrintDefaults, demoSettings)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}

	lake := memlake.New(demoDataset, demoToken)
	for _, a := range demoArtworks {
		lake.Put(map[string]any{"_id": a.id, "_type": "artwork", "title": a.title, "isAvailable": true, "price": 1200, "currency": "eur"})
	}
	// An editor has an unpublished change open on Night Garden: its draft
	// still says "available", the trap that soldout closes.
	lake.Put(map[string]any{"_id": "drafts.artwork-night-garden", "_type": "artwork", "title": "Night Garden (new caption)", "isAvailable": true})
	lakeURL, stopLake, err := listenAndServe(ctx, "127.0.0.1:0", lake)
	if err != nil {
		return err
	}
	defer stopLake()

	dir, err := os.MkdirTemp("", "soldout-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	secret := "whsec_demo_" + randomHex(12)
	// Every group, from the demo's own environment: only the log level is
	// this shell's.
	cfg, err := loadConfig(addConfigFlags(flag.NewFlagSet("", flag.ContinueOnError)), envMap(map[string]string{
		"STRIPE_WEBHOOK_SECRET": secret,
		"SANITY_PROJECT_ID":     demoProject, "SANITY_DATASET": demoDataset, "SANITY_API_TOKEN": demoToken,
		"SANITY_API_HOST": lakeURL, "DATABASE_URL": filepath.Join(dir, "journal.db"),
		"SOLDOUT_LOG_FORMAT": "text", "SOLDOUT_LOG_LEVEL": getenv("SOLDOUT_LOG_LEVEL"),
	}), useAll)
	if err != nil {
		return err
	}
	cfg.Addr = *addr
	logOut := io.Discard
	if *showLogs {
		logOut = stderr
	}

	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- serve(serveCtx, cfg, newLogger(cfg, logOut), func(a string) { ready <- a }) }()
	var serverAddr string
	select {
	case serverAddr = <-ready:
	case err := <-served:
		return err
	}
	webhookURL := "http://" + serverAddr + "/api/webhook"

	fmt.Fprintf(stdout, "soldout demo — the real server and journal, against an in-memory Sanity stand-in (not Sanity).\nwebhook: %s\n\n", webhookURL)
	t := &demoTour{url: webhookURL, secret: secret, out: stdout}
	t.run(ctx)
	fmt.Fprintln(stdout)
	printLake(stdout, lake)

	if !*keep {
		stopServe()
		return <-served
	}
	body := stripehook.Sample{EventID: "evt_by_hand_1", Type: stock.CheckoutCompleted, SessionID: "cs_by_hand_1",
		ArtworkIDs: []string{"artwork-still-here"}, Email: "you@example.com", AmountTotal: 120000}.JSON()
	// Every setting the operator commands need to reach this demo, in one
	// line to paste: the port trigger sends to by default, the journal, the
	// secret trigger signs with, and the stand-in that replay and check read.
	_, port, _ := net.SplitHostPort(serverAddr) // an address the listener gave
	exports := strings.Join([]string{
		"PORT=" + port, "DATABASE_URL=" + shellQuote(cfg.DatabaseURL), "STRIPE_WEBHOOK_SECRET=" + secret, "SANITY_PROJECT_ID=" + demoProject,
		"SANITY_DATASET=" + demoDataset, "SANITY_API_TOKEN=" + demoToken, "SANITY_API_HOST=" + lakeURL,
	}, " ")
	fmt.Fprintf(stdout, `
Still serving (Ctrl-C to stop). In another shell, with the demo's settings (its journal and
its stand-in go when it stops):

  export %s
  soldout trigger -url %s -artwork artwork-still-here
  soldout events list
  soldout sales list

or sell "Still Here" as Stripe would send it (the signature is valid for 5 minutes):

  curl -s %s \
    -H 'Content-Type: application/json' \
    -H 'Stripe-Signature: %s' \
    -d '%s'

`, exports, webhookURL, webhookURL, stripehook.Sign(body, secret, time.Now()), body)
	return <-served
}

// shellQuote quotes s for a POSIX shell unless it needs none: the journal's
// path is under $TMPDIR, which may hold spaces.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// demoTour sends the tour's events and prints one line per request.
type demoTour struct {
	url, secret string
	out         io.Writer
}

func (t *demoTour) run(ctx context.Context) {
	w := tabwriter.NewWriter(t.out, 0, 4, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintln(w, "STEP\tWHAT STRIPE SENT\tHTTP\tOUTCOME")
	step := func(what string, s stripehook.Sample) {
		fmt.Fprintf(w, "%s\t%s\t%s\n", what, describe(s), t.send(ctx, s.JSON(), t.secret))
	}

	alice := stripehook.Sample{EventID: "evt_demo_alice", Type: stock.CheckoutCompleted, SessionID: "cs_demo_alice",
		ArtworkIDs: []string{"artwork-blue-horizon"}, Email: "alice@example.com", AmountTotal: 120000}
	step("1. a sale", alice)
	step("2. Stripe delivers it again", alice)

	// Two buyers paid for Red Dune at the same moment: exactly one write.
	bob := stripehook.Sample{EventID: "evt_demo_bob", Type: stock.CheckoutCompleted, SessionID: "cs_demo_bob",
		ArtworkIDs: []string{"artwork-red-dune"}, Email: "bob@example.com", AmountTotal: 90000}
	carol := bob
	carol.EventID, carol.SessionID, carol.Email = "evt_demo_carol", "cs_demo_carol", "carol@example.com"
	var wg sync.WaitGroup
	results := make([]string, 2)
	for i, s := range []stripehook.Sample{bob, carol} {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = t.send(ctx, s.JSON(), t.secret) }()
	}
	wg.Wait()
	fmt.Fprintf(w, "3. two buyers race\t%s\t%s\n", describe(bob), results[0])
	fmt.Fprintf(w, "\t%s\t%s\n", describe(carol), results[1])

	step("4. sale while a draft is open", stripehook.Sample{EventID: "evt_demo_dave", Type: stock.CheckoutCompleted, SessionID: "cs_demo_dave",
		ArtworkIDs: []string{"artwork-night-garden"}, Email: "dave@example.com", AmountTotal: 80000})

	erin := stripehook.Sample{EventID: "evt_demo_erin_1", Type: stock.CheckoutCompleted, SessionID: "cs_demo_erin", PaymentStatus: stock.PaymentUnpaid,
		ArtworkIDs: []string{"artwork-salt-marsh"}, Email: "erin@example.com", AmountTotal: 70000}
	step("5. SEPA payment started", erin)
	erin.EventID, erin.Type, erin.PaymentStatus = "evt_demo_erin_2", stock.CheckoutAsyncFailed, ""
	step("   ...and it fails", erin)

	forged := stripehook.Sample{EventID: "evt_forged", Type: stock.CheckoutCompleted, SessionID: "cs_forged", ArtworkIDs: []string{"artwork-still-here"}, Email: "mallory@example.com"}
	fmt.Fprintf(w, "6. a forged request\t%s\t%s\n", describe(forged), t.send(ctx, forged.JSON(), "whsec_not_the_shops_secret"))
}

func describe(s stripehook.Sample) string {
	what := strings.TrimPrefix(s.Type, "checkout.session.")
	if s.PaymentStatus != "" {
		what += " (" + s.PaymentStatus + ")"
	}
	return fmt.Sprintf("%s %s, %s", what, strings.Join(s.ArtworkIDs, ","), s.Email)
}

// send posts a signed event and summarises the answer.
func (t *demoTour) send(ctx context.Context, body []byte, secret string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripehook.Sign(body, secret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var answer struct {
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	if answer.Error != "" {
		return fmt.Sprintf("%d\trefused: %s", resp.StatusCode, answer.Error)
	}
	return fmt.Sprintf("%d\t%s", resp.StatusCode, answer.Outcome)
}

func printLake(w io.Writer, lake *memlake.Lake) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "ARTWORK\tPUBLISHED isAvailable\tDRAFT isAvailable")
	for _, a := range demoArtworks {
		draft := "(no draft)"
		if d, ok := lake.Get("drafts." + a.id); ok {
			draft = fmt.Sprint(d["isAvailable"])
		}
		pub := "(missing)"
		if p, ok := lake.Get(a.id); ok {
			pub = fmt.Sprint(p["isAvailable"])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.id, pub, draft)
	}
}

// listenAndServe serves h on addr until stop is called.
func listenAndServe(ctx context.Context, addr string, h http.Handler) (baseURL string, stop func(), err error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "demo dataset server:", err)
		}
	}()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
