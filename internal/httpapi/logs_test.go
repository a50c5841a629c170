package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// logLines collects JSON log lines that handlers may write concurrently.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// len is how much has been logged so far, a mark for since.
func (l *logLines) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// since returns what was logged after mark.
func (l *logLines) since(mark int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()[mark:]
}

// find returns the lines at level whose message contains text.
func (l *logLines) find(t *testing.T, level, text string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["level"] == level && strings.Contains(m["msg"].(string), text) {
			found = append(found, m)
		}
	}
	return found
}

// signed is a webhook request carrying body, signed with newFulfilEnv's
// secret.
func signed(body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/api/webhook", bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", stripehook.Sign(body, fulfilSecret, time.Now()))
	return req
}

// A correctly signed event that soldout cannot read is Stripe's, not an
// attacker's: it is kept in the journal as not applied, with why, and
// answered 500, so that Stripe redelivers it and the alert on 500s wakes a
// person; the ERROR line names the event.
func TestSignedEventSoldoutCannotRead(t *testing.T) {
	e := newFulfilEnv(t, false, nil)
	e.artwork("art-1")
	good := stripehook.Sample{EventID: "evt_shape", Type: stock.CheckoutCompleted, SessionID: "cs_test_shape",
		ArtworkIDs: []string{"art-1"}, AmountTotal: 90000}.JSON()
	// A Stripe API version whose session soldout does not know, say.
	unreadable := bytes.Replace(good, []byte(`"amount_total":90000`), []byte(`"amount_total":"90000"`), 1)
	if bytes.Equal(unreadable, good) {
		t.Fatalf("the sample has no amount_total to change: %s", good)
	}
	for delivery := 1; delivery <= 2; delivery++ {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, signed(unreadable))
		if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"code":"misconfigured"`) {
			t.Fatalf("delivery %d: answer %d %s, want 500 misconfigured", delivery, rec.Code, rec.Body)
		}
		ev, err := e.journal.Event(context.Background(), "evt_shape")
		if err != nil || ev.Outcome != stock.OutcomeFailed || ev.Attempts != delivery || !strings.Contains(ev.LastError, "cannot read") || !bytes.Equal(ev.Payload, unreadable) ||
			ev.SessionID != "cs_test_shape" || !slices.Equal(ev.ArtworkIDs, []string{"art-1"}) {
			t.Fatalf("delivery %d journaled as %+v, %v; want failed, %d attempts, why, the payload, the session and its artwork", delivery, ev, err, delivery)
		}
	}
	lines := e.logs.find(t, "ERROR", "until a person fixes")
	if len(lines) != 2 || lines[0]["event_id"] != "evt_shape" || lines[0]["type"] != stock.CheckoutCompleted || lines[0]["outcome"] != "failed" {
		t.Errorf("ERROR lines %v, want two naming the event, its type and outcome failed", lines)
	}
	if e.available("art-1") != true {
		t.Error("an event soldout could not read changed the artwork")
	}

	// An event already applied stays so: a copy of it this soldout cannot
	// read (one replica older than another, in a rolling upgrade) is a
	// duplicate, not a failure for Stripe to retry for days.
	e.artwork("art-2")
	applied := stripehook.Sample{EventID: "evt_applied", Type: stock.CheckoutCompleted, SessionID: "cs_test_applied",
		ArtworkIDs: []string{"art-2"}, AmountTotal: 90000}.JSON()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, signed(applied))
	if rec.Code != http.StatusOK {
		t.Fatalf("the readable delivery: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, signed(bytes.Replace(applied, []byte(`"amount_total":90000`), []byte(`"amount_total":"90000"`), 1)))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"outcome":"duplicate"`) {
		t.Errorf("an unreadable copy of an applied event: %d %s, want 200 duplicate", rec.Code, rec.Body)
	}

	// Signed but not an event at all: nothing to journal it under, still 500.
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, signed([]byte(`{"hello":"world"}`)))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("signed non-event: answer %d %s, want 500", rec.Code, rec.Body)
	}
}

// The line of an event that was not applied says which artworks wait and
// that the outcome is failed, even when no artwork was reached.
func TestNotAppliedLineNamesTheArtworks(t *testing.T) {
	e := newFulfilEnv(t, false, nil)
	e.artwork("art-1")
	e.cfg.Fulfiller.Mode, e.cfg.Fulfiller.ModeSource = stock.ModeLive, "the test"
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, webhookRequest("evt_mode", "art-1")) // a test-mode event
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("answer %d %s, want 500 (another mode)", rec.Code, rec.Body)
	}
	lines := e.logs.find(t, "ERROR", "event not applied")
	if len(lines) != 1 {
		t.Fatalf("%d ERROR lines, want 1", len(lines))
	}
	l := lines[0]
	if ids, _ := l["artwork_ids"].([]any); len(ids) != 1 || ids[0] != "art-1" || l["outcome"] != "failed" || l["event_id"] != "evt_mode" || l["session_id"] != "cs_test_evt_mode" {
		t.Errorf("line %v, want artwork_ids [art-1], outcome failed, the event and its session", l)
	}
}

// Refused requests are all counted but logged at most once per kind and
// interval: a scanner's flood of forged webhooks writes one line, and
// another kind of refusal still gets its own.
func TestWebhookRefusalsAreThrottled(t *testing.T) {
	e := newFulfilEnv(t, false, nil)
	for range 5 {
		e.h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/api/webhook", strings.NewReader(`{}`)))
	}
	forged := httptest.NewRequest(http.MethodPost, "/api/webhook", strings.NewReader(`{}`))
	forged.Header.Set("Stripe-Signature", stripehook.Sign([]byte(`{}`), "whsec_another_secret_0123456789", time.Now()))
	e.h.ServeHTTP(httptest.NewRecorder(), forged)

	if n := e.obs.count("signature " + stripehook.ReasonMissing); n != 5 {
		t.Errorf("%d missing signatures counted, want 5", n)
	}
	if n := len(e.logs.find(t, "WARN", "webhook signature refused")); n != 2 {
		t.Errorf("%d WARN lines for 5 unsigned requests and one of another secret, want 2 (one per reason)", n)
	}
}

// A storefront request refused for its own fault is logged too, at INFO:
// the brief is a clear error and a log line for every bad input.
func TestAvailabilityRefusalIsLogged(t *testing.T) {
	s := newShop(t)
	r := s.replica(sqliteJournal(t), nil)
	if rec := r.request(http.MethodGet, "/api/availability/a,drafts.b", "", "", "198.51.100.2"); rec.Code != http.StatusBadRequest {
		t.Fatalf("answer %d %s, want 400", rec.Code, rec.Body)
	}
	if lines := s.logs.find(t, "INFO", "availability not answered"); len(lines) != 1 || lines[0]["code"] != "invalid" {
		t.Errorf("INFO lines %v, want one with code invalid", lines)
	}
}
