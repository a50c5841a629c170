package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// fuzzArtworks are the pieces the fuzzed events may name.
var fuzzArtworks = []string{"a1", "a2", "a3"}

// fuzzWrites is how many writes the dataset has taken for fuzzArtworks.
func (e *fulfilEnv) fuzzWrites() int {
	n := 0
	for _, id := range fuzzArtworks {
		n += e.lake.Writes(id) + e.lake.Writes("drafts."+id)
	}
	return n
}

// fuzzPost sends one webhook and checks what every answer must keep:
// JSON with a known status, no Sanity write for a request refused as bad
// input or for an event that needs nothing, and a line at WARN or above for
// an event that was not applied (those lines are never held back).
func (e *fulfilEnv) fuzzPost(t *testing.T, header string, body []byte) (int, string) {
	t.Helper()
	before := e.fuzzWrites()
	req := httptest.NewRequest(http.MethodPost, "/api/webhook", bytes.NewReader(body))
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	mark := e.logs.len()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var ans struct {
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
		t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body)
	}
	wrote := e.fuzzWrites() - before
	switch rec.Code {
	case 200, 400, 409, 413, 500, 502, 503:
	default:
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
	if rec.Code >= 400 && rec.Code < 500 && rec.Code != 409 && wrote > 0 {
		t.Fatalf("answered %d after %d Sanity writes\nbody %q", rec.Code, wrote, body)
	}
	switch ans.Outcome {
	case string(stock.OutcomeInvalidMetadata), string(stock.OutcomeIgnored), string(stock.OutcomeDuplicate):
		if wrote > 0 {
			t.Fatalf("answered %s after %d Sanity writes\nbody %q", ans.Outcome, wrote, body)
		}
	}
	if logged := e.logs.since(mark); rec.Code >= 500 && !strings.Contains(logged, `"level":"ERROR"`) && !strings.Contains(logged, `"level":"WARN"`) {
		t.Fatalf("answered %d without a WARN or ERROR line\nbody %q", rec.Code, body)
	}
	return rec.Code, ans.Outcome
}

// FuzzWebhookEvent sends correctly signed checkout events whose fields are
// fuzzed as raw JSON, so that most inputs reach the pipeline: whatever they
// hold, soldout answers, writes Sanity only for a sale, and never sells
// for an event of the other Stripe mode.
func FuzzWebhookEvent(f *testing.F) {
	f.Add(uint8(0), `"paid"`, `{"artworkId":"a1"}`, `9000`, `false`, `"eur"`)
	f.Add(uint8(0), `"unpaid"`, `{"artworkIds":"a1, a2,,a3"}`, `null`, `false`, `null`)
	f.Add(uint8(1), `"paid"`, `{"artworkId":5}`, `-1`, `"true"`, `7`)
	f.Add(uint8(2), `""`, `{"artworkIds":"drafts.a1,versions.r.a1,a1/../x"}`, `99999999999999999999`, `0`, `"EUR"`)
	f.Add(uint8(3), `"paid"`, `null`, `1.5`, `null`, `""`)
	f.Add(uint8(0), `"no_payment_required"`, `{"artworkId":" a3 "}`, `0`, `true`, `"eur"`)
	f.Add(uint8(4), `7`, `[]`, `"x"`, `false`, `{}`)
	types := []string{stock.CheckoutCompleted, stock.CheckoutAsyncSucceeded, stock.CheckoutAsyncFailed, stock.CheckoutExpired, "charge.succeeded"}
	e := newFulfilEnv(f, false, nil)
	e.cfg.Fulfiller.Mode, e.cfg.Fulfiller.ModeSource = stock.ModeTest, "the fuzz test"
	for _, id := range fuzzArtworks {
		e.artwork(id)
	}
	e.lake.Put(map[string]any{"_id": "drafts.a2", "_type": "artwork", "isAvailable": true})
	var n int
	f.Fuzz(func(t *testing.T, typ uint8, payment, metadata, amount, livemode, currency string) {
		n++
		id := strconv.Itoa(n)
		body := []byte(`{"id":"evt_fuzz_` + id + `","object":"event","type":` + strconv.Quote(types[int(typ)%len(types)]) +
			`,"created":1700000000,"livemode":` + livemode +
			`,"data":{"object":{"id":"cs_test_fuzz_` + id + `","object":"checkout.session","status":"complete","payment_status":` + payment +
			`,"amount_total":` + amount + `,"currency":` + currency + `,"metadata":` + metadata + `}}}`)
		status, outcome := e.fuzzPost(t, stripehook.Sign(body, fulfilSecret, time.Now()), body)
		var probe struct {
			Livemode bool `json:"livemode"`
		}
		if json.Unmarshal(body, &probe) == nil && probe.Livemode && status == http.StatusOK && outcome != string(stock.OutcomeDuplicate) {
			t.Fatalf("a live-mode event answered 200 %s by a test-mode soldout\nbody %s", outcome, body)
		}
	})
}

// FuzzWebhookRequest sends any body with a header that is right, absent,
// the fuzzer's own, or right with more after it.
func FuzzWebhookRequest(f *testing.F) {
	sample := stripehook.Sample{EventID: "evt_seed", Type: stock.CheckoutCompleted, SessionID: "cs_test_seed",
		ArtworkIDs: []string{"a1"}, Email: "b@example.com", AmountTotal: 100}.JSON()
	f.Add(uint8(0), "", sample)
	f.Add(uint8(1), "t=1,v1=00", sample)
	f.Add(uint8(2), ",v1=deadbeef,v0=00", sample)
	f.Add(uint8(3), "", sample)
	f.Add(uint8(0), "", []byte(`{"id":"evt_x","object":"event","type":"invoice.paid","data":{"object":{"amount":"x"}}}`))
	f.Add(uint8(0), "", []byte(`{"id":"evt_y","object":"v2.core.event","type":"checkout.session.async_payment_succeeded","created":"2025-01-01T00:00:00Z"}`))
	e := newFulfilEnv(f, false, nil)
	e.artwork("a1")
	f.Fuzz(func(t *testing.T, mode uint8, extra string, body []byte) {
		var header string
		switch mode % 4 {
		case 0:
			header = stripehook.Sign(body, fulfilSecret, time.Now())
		case 1:
			header = extra
		case 2:
			header = stripehook.Sign(body, fulfilSecret, time.Now()) + extra
		}
		e.fuzzPost(t, header, body)
	})
}
