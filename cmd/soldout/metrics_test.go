package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripeapi/stripetest"
	"soldout/internal/stripehook"
)

// startupLine is the "soldout serving" log line.
func (s *testServer) startupLine(t *testing.T) map[string]any {
	t.Helper()
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	for _, l := range s.logs.lines {
		if strings.HasPrefix(fmt.Sprint(l["msg"]), "soldout serving") {
			return l
		}
	}
	t.Fatal("no startup line")
	return nil
}

// scrape reads the metrics endpoint into "name{labels}" → value; labels
// are in Prometheus' order, sorted by name.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func postWebhook(t *testing.T, url string, body []byte, sig string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/api/webhook", bytes.NewReader(body))
	if sig != "" {
		req.Header.Set("Stripe-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func postFulfil(t *testing.T, url, sessionID string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url+"/api/fulfil", "application/json", strings.NewReader(`{"session_id":"`+sessionID+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("fulfil answer is not JSON: %v", err)
	}
	return resp.StatusCode, m
}

// TestServeMetrics scrapes the metrics listener after real requests: a
// sale, its redelivery, a double sale, a delayed payment, refused
// signatures and a success-page fulfilment.
func TestServeMetrics(t *testing.T) {
	stripe := stripetest.New()
	t.Cleanup(stripe.Close)
	s := startServe(t, map[string]string{
		"SOLDOUT_METRICS_ADDR": "127.0.0.1:0",
		"STRIPE_SECRET_KEY":    stripetest.SecretKey, "STRIPE_API_BASE": stripe.URL(),
	})
	startup := s.startupLine(t)
	addr, _ := startup["metrics_addr"].(string)
	if addr == "" || strings.HasSuffix(addr, ":0") || startup["fulfil_route"] != "on" {
		t.Fatalf("startup line: %v", startup)
	}
	for _, id := range []string{"art-1", "art-2", "art-3"} {
		s.lake.Put(map[string]any{"_id": id, "_type": "artwork", "isAvailable": true})
	}
	stripe.Put(stripetest.Session{ID: "cs_test_page", Status: stripetest.StatusComplete, PaymentStatus: stripetest.PaymentPaid,
		Metadata: map[string]string{"artworkId": "art-3"}})

	sample := func(evt, session, payment, artwork string) []byte {
		return stripehook.Sample{EventID: evt, Type: stock.CheckoutCompleted, SessionID: session, PaymentStatus: payment,
			ArtworkIDs: []string{artwork}, Email: session + "@example.com", AmountTotal: 5000}.JSON()
	}
	sale := sample("evt_m_1", "cs_m_1", "", "art-1")
	for _, c := range []struct {
		name   string
		body   []byte
		sig    string
		status int
	}{
		{"sale", sale, signed(sale), 200},
		{"redelivery", sale, signed(sale), 200},
		{"double sale", sample("evt_m_2", "cs_m_2", "", "art-1"), signed(sample("evt_m_2", "cs_m_2", "", "art-1")), 200},
		{"delayed payment", sample("evt_m_3", "cs_m_3", "unpaid", "art-2"), signed(sample("evt_m_3", "cs_m_3", "unpaid", "art-2")), 200},
		{"forged", sale, stripehook.Sign(sale, "whsec_attacker_000000", time.Now()), 400},
		{"unsigned", sale, "", 400},
	} {
		if got := postWebhook(t, s.url, c.body, c.sig); got != c.status {
			t.Fatalf("%s: status %d, want %d", c.name, got, c.status)
		}
	}
	if status, m := postFulfil(t, s.url, "cs_test_page"); status != 200 || m["outcome"] != "sold" {
		t.Fatalf("fulfil: %d %v", status, m)
	}
	if d, _ := s.lake.Get("art-3"); d["isAvailable"] != false {
		t.Error("the success page did not sell art-3")
	}

	got := scrape(t, addr)
	for series, want := range map[string]float64{
		`soldout_webhook_requests_total{outcome="sold",status="200"}`:                    1,
		`soldout_webhook_requests_total{outcome="duplicate",status="200"}`:               1,
		`soldout_webhook_requests_total{outcome="double_sale",status="200"}`:             1,
		`soldout_webhook_requests_total{outcome="held",status="200"}`:                    1,
		`soldout_webhook_requests_total{outcome="rejected",status="400"}`:                2,
		`soldout_webhook_signature_failures_total{reason="no_matching_signature"}`:       1,
		`soldout_webhook_signature_failures_total{reason="missing_header"}`:              1,
		`soldout_webhook_signature_failures_total{reason="timestamp_outside_tolerance"}`: 0,
		`soldout_event_processing_duration_seconds_count{source="webhook"}`:              4,
		`soldout_event_processing_duration_seconds_count{source="fulfil"}`:               1,
		`soldout_fulfil_requests_total{outcome="sold",status="200"}`:                     1,
		`soldout_double_sales_total`:                                                     1,
		`soldout_held_artworks`:                                                          1,
		`soldout_sanity_requests_total{endpoint="mutate",result="ok"}`:                   3, // art-1, art-2, art-3
		`soldout_sanity_request_duration_seconds_count{endpoint="mutate"}`:               3,
		`soldout_journal_errors_total{op="insert_sale"}`:                                 0,
		`soldout_journal_errors_total{op="record_delivery"}`:                             0,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if got[`soldout_sanity_requests_total{endpoint="doc",result="ok"}`] == 0 {
		t.Error("no successful Sanity reads counted")
	}
	if last := got["soldout_sanity_last_success_timestamp_seconds"]; last < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last Sanity success at %v", last)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}

	resp, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready map[string]any
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(ready["last_sanity_ok"])); resp.StatusCode != 200 || err != nil {
		t.Errorf("readyz: %d %v", resp.StatusCode, ready)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("the metrics listener outlived serve")
	}
}

// Without STRIPE_SECRET_KEY and SOLDOUT_METRICS_ADDR, both are off.
func TestServeOptionalFeaturesOff(t *testing.T) {
	s := startServe(t, nil)
	startup := s.startupLine(t)
	if _, on := startup["metrics_addr"]; on || startup["fulfil_route"] != "off" {
		t.Errorf("startup line: %v", startup)
	}
	status, m := postFulfil(t, s.url, "cs_test_1")
	if status != 404 || !strings.Contains(fmt.Sprint(m["error"]), "STRIPE_SECRET_KEY") {
		t.Errorf("fulfil without a key: %d %v", status, m)
	}
}

func TestServeRejectsBadStripeKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := run(ctx, []string{"serve", "-addr", "127.0.0.1:0"}, testEnv("http://127.0.0.1:1", map[string]string{
		"STRIPE_SECRET_KEY": "pk_live_51Hpublishable", "DATABASE_URL": filepath.Join(t.TempDir(), "j.db"),
	}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "publishable") || strings.Contains(err.Error(), "51Hpublishable") {
		t.Errorf("serve with a publishable key: %v", err)
	}
}

// TestServeFulfilStripeMock sends a success-page request through the whole
// program to stripe-mock, whose fixture session is open: the real stripe-go
// wiring (key, base URL, decoding) answers not_paid and changes nothing.
func TestServeFulfilStripeMock(t *testing.T) {
	base := os.Getenv("SOLDOUT_TEST_STRIPE_MOCK")
	if base == "" {
		t.Skip("SOLDOUT_TEST_STRIPE_MOCK is not set (see internal/stripeapi's TestStripeMock for how to run stripe-mock)")
	}
	s := startServe(t, map[string]string{"STRIPE_SECRET_KEY": "sk_test_123", "STRIPE_API_BASE": base})
	status, m := postFulfil(t, s.url, "cs_test_soldout")
	if status != 200 || m["outcome"] != "not_paid" || m["session_id"] != "cs_test_soldout" {
		t.Errorf("fulfil against stripe-mock: %d %v", status, m)
	}
}
