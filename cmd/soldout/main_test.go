package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"

	"soldout/internal/journal"
	"soldout/internal/sanity/memlake"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

const testSecret = "whsec_cmd_test_secret_0123456789"

// logSink collects the program's JSON log lines and reports the address
// that `serve` announces.
type logSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []map[string]any
	addr  chan string
}

func newLogSink() *logSink { return &logSink{addr: make(chan string, 1)} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	for {
		line, err := s.buf.ReadBytes('\n')
		if err != nil {
			s.buf.Write(line) // incomplete: keep for the next write
			return len(p), nil
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			s.lines = append(s.lines, m)
			if a, ok := m["addr"].(string); ok && strings.HasPrefix(fmt.Sprint(m["msg"]), "soldout serving") {
				s.addr <- a
			}
		}
	}
}

// find returns the log lines whose key equals value.
func (s *logSink) find(key, value string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range s.lines {
		if fmt.Sprint(l[key]) == value {
			out = append(out, l)
		}
	}
	return out
}

func (s *logSink) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(s.lines)
	return string(b)
}

type testServer struct {
	url  string
	lake *memlake.Lake
	logs *logSink
	stop func() error
}

func testEnv(sanityURL string, extra map[string]string) func(string) string {
	m := map[string]string{
		"STRIPE_WEBHOOK_SECRET": testSecret,
		"SANITY_PROJECT_ID":     "abc123", "SANITY_DATASET": "production", "SANITY_API_TOKEN": "sk-sanity-test-token",
		"SANITY_API_HOST": sanityURL,
	}
	for k, v := range extra {
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// startServe runs the real program in-process on a :0 port.
func startServe(t *testing.T, extra map[string]string) *testServer {
	t.Helper()
	lake := memlake.New("production", "sk-sanity-test-token")
	sanitySrv := httptest.NewServer(lake)
	t.Cleanup(sanitySrv.Close)
	if extra == nil {
		extra = map[string]string{}
	}
	if extra["DATABASE_URL"] == "" {
		extra["DATABASE_URL"] = filepath.Join(t.TempDir(), "journal.db")
	}
	logs := newLogSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0"}, testEnv(sanitySrv.URL, extra), logs, io.Discard)
	}()
	var addr string
	select {
	case addr = <-logs.addr:
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return &testServer{url: "http://" + addr, lake: lake, logs: logs, stop: stop}
}

// signed signs with stripe-go's own test helper.
func signed(body []byte) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: testSecret}).Header
}

func TestServeEndToEnd(t *testing.T) {
	s := startServe(t, nil)
	s.lake.Put(map[string]any{"_id": "art-1", "_type": "artwork", "isAvailable": true})
	s.lake.Put(map[string]any{"_id": "drafts.art-1", "_type": "artwork", "isAvailable": true})

	sale := stripehook.Sample{EventID: "evt_e2e_1", Type: stock.CheckoutCompleted, SessionID: "cs_e2e_1", ArtworkIDs: []string{"art-1"}, Email: "a@example.com", AmountTotal: 5000}.JSON()
	tests := []struct {
		name    string
		method  string
		path    string
		body    []byte
		sig     string
		status  int
		outcome string
	}{
		{name: "health", method: "GET", path: "/healthz", status: 200},
		{name: "ready", method: "GET", path: "/readyz", status: 200},
		{name: "GET on the webhook", method: "GET", path: "/api/webhook", status: 405},
		{name: "oversize body", method: "POST", path: "/api/webhook", body: bytes.Repeat([]byte("x"), 2<<20), sig: "t=1,v1=00", status: 413},
		{name: "unsigned", method: "POST", path: "/api/webhook", body: sale, status: 400},
		{name: "forged", method: "POST", path: "/api/webhook", body: sale, sig: stripehook.Sign(sale, "whsec_attacker_000000", time.Now()), status: 400},
		{name: "signed but not an event", method: "POST", path: "/api/webhook", body: []byte(`{"hello":1}`), sig: signed([]byte(`{"hello":1}`)), status: 500}, // Stripe's (signed), yet unreadable: a person looks
		{name: "sale", method: "POST", path: "/api/webhook", body: sale, sig: signed(sale), status: 200, outcome: "sold"},
		{name: "redelivery", method: "POST", path: "/api/webhook", body: sale, sig: signed(sale), status: 200, outcome: "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.url+tt.path, bytes.NewReader(tt.body))
			if tt.sig != "" {
				req.Header.Set("Stripe-Signature", tt.sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
				t.Fatalf("answer is not JSON: %v", err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tt.status, m)
			}
			if tt.outcome != "" && m["outcome"] != tt.outcome {
				t.Fatalf("outcome %v, want %s", m["outcome"], tt.outcome)
			}
			if tt.status >= 400 && m["error"] == nil {
				t.Fatalf("error answer without an error message: %v", m)
			}
		})
	}
	for _, id := range []string{"art-1", "drafts.art-1"} {
		if d, _ := s.lake.Get(id); d["isAvailable"] != false {
			t.Errorf("%s still available", id)
		}
	}

	lines := s.logs.find("event_id", "evt_e2e_1")
	if len(lines) < 2 {
		t.Fatalf("want a log line per delivery, got %v", lines)
	}
	for _, key := range []string{"type", "session_id", "artworks", "outcome", "duration_ms", "status"} {
		if _, ok := lines[0][key]; !ok {
			t.Errorf("event log line lacks %q: %v", key, lines[0])
		}
	}
	if len(s.logs.find("method", "GET")) == 0 {
		t.Error("a GET on the webhook is answered 405 without a log line")
	}
	if len(s.logs.find("reason", stripehook.ReasonNoMatch)) == 0 || len(s.logs.find("reason", stripehook.ReasonMissing)) == 0 {
		t.Error("signature refusals are not logged with their reason")
	}
	all := s.logs.all()
	for _, secret := range []string{testSecret, "sk-sanity-test-token", "v1="} {
		if strings.Contains(all, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

func TestServeRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		names []string // what the message must mention
		flags []string
	}{
		{"no webhook secret", map[string]string{"STRIPE_WEBHOOK_SECRET": ""}, []string{"STRIPE_WEBHOOK_SECRET", "Dashboard"}, nil},
		{"not a whsec", map[string]string{"STRIPE_WEBHOOK_SECRET": "sk_test_123456789"}, []string{"STRIPE_WEBHOOK_SECRET", "whsec_"}, nil},
		{"no project", map[string]string{"SANITY_PROJECT_ID": ""}, []string{"SANITY_PROJECT_ID", "sanity.config.ts"}, nil},
		{"bad dataset", map[string]string{"SANITY_DATASET": "Prod/../x"}, []string{"SANITY_DATASET"}, nil},
		{"no token", map[string]string{"SANITY_API_TOKEN": ""}, []string{"SANITY_API_TOKEN", "Editor"}, nil},
		{"bad version", map[string]string{"SANITY_API_VERSION": "latest"}, []string{"SANITY_API_VERSION"}, nil},
		{"bad host", map[string]string{"SANITY_API_HOST": "ftp://x"}, []string{"SANITY_API_HOST"}, nil},
		{"bad port", map[string]string{"PORT": "eighty"}, []string{"PORT"}, nil},
		{"bad budget", map[string]string{"SOLDOUT_TIME_BUDGET": "forever"}, []string{"SOLDOUT_TIME_BUDGET"}, nil},
		{"not a number of mutations", map[string]string{"SOLDOUT_SANITY_RATE": "NaN"}, []string{"SOLDOUT_SANITY_RATE"}, nil},
		{"a mutation rate so slow every burst waits out the budget", map[string]string{"SOLDOUT_SANITY_RATE": "1e-10"}, []string{"SOLDOUT_SANITY_RATE", "at least 1"}, nil},
		{"a webhook secret wrapped over two lines", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_01234567\n89abcdef"}, []string{"STRIPE_WEBHOOK_SECRET", "one line"}, nil},
		{"a negative mutation rate flag", map[string]string{}, []string{"-sanity-rate -1"}, []string{"-sanity-rate", "-1"}},
		{"a log format flag", map[string]string{}, []string{"-log-format \"xml\""}, []string{"-log-format", "xml"}},
		{"no storefront requests at all", map[string]string{"SOLDOUT_STOREFRONT_RATE": "0"}, []string{"SOLDOUT_STOREFRONT_RATE", "per second"}, nil},
		{"a negative cap on holds", map[string]string{"SOLDOUT_CLIENT_HOLDS": "-1"}, []string{"SOLDOUT_CLIENT_HOLDS"}, nil},
		{"not a Stripe mode", map[string]string{"SOLDOUT_STRIPE_MODE": "prod"}, []string{"SOLDOUT_STRIPE_MODE", "test or live"}, nil},
		{"a mode against the key's", map[string]string{"SOLDOUT_STRIPE_MODE": "live", "STRIPE_SECRET_KEY": "sk_test_4eC39HqLyjWDarjtT1zdp7dc"}, []string{"SOLDOUT_STRIPE_MODE", "test-mode key"}, nil},
		{"reservation without a margin over Stripe's minimum", map[string]string{"SOLDOUT_RESERVATION_TTL": "30m"}, []string{"SOLDOUT_RESERVATION_TTL", "31m"}, nil},
		{"a success URL without its scheme", map[string]string{"SOLDOUT_SUCCESS_URL": "shop.example.com/thanks"}, []string{"SOLDOUT_SUCCESS_URL", "absolute URL"}, nil},
		{"a script as the cancel URL", map[string]string{"SOLDOUT_CANCEL_URL": "javascript:alert(1)"}, []string{"SOLDOUT_CANCEL_URL", "absolute URL"}, nil},
		{"a misspelt session placeholder", map[string]string{"SOLDOUT_SUCCESS_URL": "https://shop.example.com/thanks?session_id={CHECKOUT_SESSION}"}, []string{"SOLDOUT_SUCCESS_URL", "{CHECKOUT_SESSION_ID}"}, nil},
		{"lease within the budget", map[string]string{"SOLDOUT_TIME_BUDGET": "8s", "SOLDOUT_LEASE_TTL": "5s"}, []string{"SOLDOUT_LEASE_TTL", "time budget"}, nil},
		{"lease without room for clock skew", map[string]string{"SOLDOUT_TIME_BUDGET": "8s", "SOLDOUT_LEASE_TTL": "8500ms"}, []string{"SOLDOUT_LEASE_TTL", "at least 1s longer", "clock"}, nil},
		{"negative budget flag", map[string]string{}, []string{"-budget -3s", "between 1s and 1m0s"}, []string{"-budget", "-3s"}},
		{"budget flag past a minute", map[string]string{}, []string{"-budget 10m0s"}, []string{"-budget", "10m"}},
		{"several at once", map[string]string{"SANITY_API_TOKEN": "", "SANITY_DATASET": ""}, []string{"SANITY_API_TOKEN", "SANITY_DATASET"}, nil},
		{"bad database url", map[string]string{"DATABASE_URL": "mysql://x"}, []string{"DATABASE_URL"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env["DATABASE_URL"] == "" {
				tt.env["DATABASE_URL"] = filepath.Join(t.TempDir(), "j.db")
			}
			if tt.env["PORT"] == "" {
				tt.env["PORT"] = "0"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := run(ctx, append([]string{"serve"}, tt.flags...), testEnv("http://127.0.0.1:1", tt.env), io.Discard, io.Discard)
			if err == nil {
				t.Fatal("started with a bad configuration")
			}
			for _, n := range tt.names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("message %q does not mention %s", err, n)
				}
			}
			if strings.Contains(err.Error(), "sk-sanity-test-token") {
				t.Error("message echoes the token")
			}
		})
	}
}

// TestServeInBusyPortChangesNothing: a serve that cannot listen stops before
// it creates, migrates or records anything in the journal: a second serve
// started by mistake beside the first must not rewrite the Stripe mode the
// running one recorded.
func TestServeInBusyPortChangesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	db, err := journal.Open(context.Background(), live)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetSetting(context.Background(), stripeModeSetting, string(stock.ModeLive)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, port, _ := net.SplitHostPort(busy.Addr().String())
	for _, tt := range []struct {
		name string
		env  map[string]string
	}{
		{"the webhook's port", map[string]string{"PORT": port}},
		{"the metrics port", map[string]string{"PORT": "0", "SOLDOUT_METRICS_ADDR": busy.Addr().String()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fresh := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".db")
			for _, path := range []string{live, fresh} {
				tt.env["DATABASE_URL"], tt.env["SOLDOUT_STRIPE_MODE"] = path, "test"
				err := run(context.Background(), []string{"serve"}, testEnv("http://127.0.0.1:1", tt.env), io.Discard, io.Discard)
				if err == nil || !strings.Contains(err.Error(), "listening on") {
					t.Fatalf("serve on a busy port: %v", err)
				}
			}
			if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a serve that could not listen created a journal: %v", err)
			}
			db, err := journal.Open(context.Background(), live)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if mode, _ := recordedStripeMode(context.Background(), db); mode != stock.ModeLive {
				t.Errorf("recorded mode %q after a serve in test mode failed to listen, want live", mode)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"help", "-h", "--help"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{arg}, testEnv("", nil), &out, io.Discard); err != nil {
			t.Fatalf("soldout %s: %v", arg, err)
		}
		for _, want := range []string{"serve", "demo", "STRIPE_WEBHOOK_SECRET", "SANITY_API_TOKEN", "DATABASE_URL", "SOLDOUT_TIME_BUDGET"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("soldout %s lacks %s", arg, want)
			}
		}
	}
	// help COMMAND [SUBCOMMAND] is that command's -h.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "replay"}, "Usage: soldout replay"},
		{[]string{"help", "events"}, "Usage: soldout events <list|show>"},
		{[]string{"help", "events", "list"}, "Usage: soldout events list"},
		{[]string{"help", "version"}, "Usage: soldout version"},
		{[]string{"version", "-h"}, "Usage: soldout version"},
		{[]string{"help", "help"}, "Commands:"},
	} {
		var help bytes.Buffer
		if err := run(context.Background(), tt.args, testEnv("", nil), &help, io.Discard); err != nil || !strings.Contains(help.String(), tt.want) {
			t.Errorf("%v: %v\n%s", tt.args, err, help.String())
		}
	}
	for _, args := range [][]string{{"evnets"}, {"help", "evnets"}} {
		err := run(context.Background(), args, testEnv("", nil), io.Discard, io.Discard)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), `did you mean "events"?`) {
			t.Errorf("soldout %v: %v, want a usage error suggesting events", args, err)
		}
	}
	// -h, asked for, goes to stdout, where a pager reads it.
	var serveHelp bytes.Buffer
	if err := run(context.Background(), []string{"serve", "-h"}, testEnv("", nil), &serveHelp, io.Discard); err != nil {
		t.Fatalf("serve -h: %v", err)
	}
	for _, want := range []string{"-addr", "-database-url", "PORT", "stripe listen"} {
		if !strings.Contains(serveHelp.String(), want) {
			t.Errorf("serve -h lacks %s", want)
		}
	}
	if err := run(context.Background(), []string{"nonsense"}, testEnv("", nil), io.Discard, io.Discard); exitCode(err) != 2 {
		t.Errorf("unknown command: %v", err)
	}
}

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"demo"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"in-memory", "200   sold", "duplicate", "double_sale", "held", "released", "400"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	// The final table: sold pieces and the open draft unavailable, the
	// released and untouched ones available.
	for _, want := range []string{
		"artwork-blue-horizon  false", "artwork-red-dune      false", "artwork-night-garden  false                  false",
		"artwork-salt-marsh    true", "artwork-still-here    true",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("final state lacks %q:\n%s", want, text)
		}
	}
}

// TestDemoKeep follows what demo -keep prints: its settings, pasted, let
// trigger sell a piece and the operator commands read the journal.
func TestDemoKeep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "-keep"}, func(string) string { return "" }, w, io.Discard)
		w.Close()
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo -keep, stopped: %v", err)
		}
	}()
	var printed strings.Builder
	var exported, triggerLine string
	found := make(chan struct{})
	go func() {
		defer close(found)
		lines := bufio.NewScanner(r)
		for (exported == "" || triggerLine == "") && lines.Scan() {
			line := strings.TrimSpace(lines.Text())
			printed.WriteString(line + "\n")
			if v, ok := strings.CutPrefix(line, "export "); ok {
				exported = v
			}
			if v, ok := strings.CutPrefix(line, "soldout trigger "); ok {
				triggerLine = v
			}
		}
		go io.Copy(io.Discard, r) // whatever else it prints
	}()
	select {
	case <-found:
	case <-time.After(20 * time.Second):
		t.Fatal("demo -keep printed no settings within 20 s")
	}
	if exported == "" || triggerLine == "" {
		t.Fatalf("demo -keep printed no settings and trigger line:\n%s", printed.String())
	}
	env := map[string]string{}
	for _, kv := range strings.Fields(exported) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	var sent bytes.Buffer
	if err := run(ctx, append([]string{"trigger"}, strings.Fields(triggerLine)...), getenv, &sent, io.Discard); err != nil || !strings.Contains(sent.String(), `"outcome":"sold"`) {
		t.Fatalf("trigger as printed: %v\n%s", err, sent.String())
	}
	// Without -url, trigger sends to the demo's PORT.
	if err := run(ctx, []string{"trigger", "-kind", "expired"}, getenv, io.Discard, io.Discard); err != nil {
		t.Errorf("trigger to the demo's PORT: %v", err)
	}
	for _, cmd := range [][]string{{"events", "list"}, {"sales", "list"}} {
		var listed bytes.Buffer
		if err := run(ctx, cmd, getenv, &listed, io.Discard); err != nil || !strings.Contains(listed.String(), "artwork-still-here") {
			t.Errorf("%v with the demo's settings: %v\n%s", cmd, err, listed.String())
		}
	}
}

func TestStripeMode(t *testing.T) {
	for _, tt := range []struct {
		setting, key string
		want         stock.StripeMode
	}{
		{"", "", stock.ModeAny},
		{"", "sk_live_abc", stock.ModeLive},
		{"", "rk_live_abc", stock.ModeLive},
		{"", "sk_test_abc", stock.ModeTest},
		{"", "rk_test_abc", stock.ModeTest},
		{"live", "", stock.ModeLive},
		{"test", "sk_test_abc", stock.ModeTest},
	} {
		if got, bad := stripeMode(tt.setting, tt.key); got != tt.want || bad != "" {
			t.Errorf("stripeMode(%q, %q) = %q, %q; want %q", tt.setting, tt.key, got, bad, tt.want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/soldout-demo-1/journal.db": "/tmp/soldout-demo-1/journal.db",
		"/Users/a b/journal.db":          "'/Users/a b/journal.db'",
		"/tmp/it's/journal.db":           `'/tmp/it'\''s/journal.db'`,
		"":                               "''",
		"/tmp/$HOME/x":                   "'/tmp/$HOME/x'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
