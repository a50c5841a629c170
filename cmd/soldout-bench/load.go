package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// sessionExtras are the fields of a real Checkout Session that soldout does
// not read, as the inside of a JSON object. They bring a sample event to the
// size Stripe sends (about 2.5 KB), which is what soldout verifies, decodes
// and journals.
const sessionExtras = `"adaptive_pricing":{"enabled":true},"after_expiration":null,"allow_promotion_codes":null,` +
	`"amount_subtotal":120000,"automatic_tax":{"enabled":false,"liability":null,"provider":null,"status":null},` +
	`"billing_address_collection":null,"cancel_url":"https://shop.example.com/cart",` +
	`"client_reference_id":null,"client_secret":null,` +
	`"collected_information":{"shipping_details":{"address":{"city":"Lyon","country":"FR","line1":"1 rue de la République","line2":null,"postal_code":"69001","state":null},"name":"A. Buyer"}},` +
	`"consent":null,"consent_collection":null,"created":1750000000,"currency_conversion":null,` +
	`"custom_fields":[],"custom_text":{"after_submit":null,"shipping_address":null,"submit":null,"terms_of_service_acceptance":null},` +
	`"customer":null,"customer_creation":"if_required",` +
	`"discounts":[],"expires_at":1750086400,"invoice":null,` +
	`"invoice_creation":{"enabled":false,"invoice_data":{"account_tax_ids":null,"custom_fields":null,"description":null,"footer":null,"issuer":null,"metadata":{},"rendering_options":null}},` +
	`"locale":"fr","origin_context":null,"payment_intent":"pi_3QbenchXXXXXXXXXXXXXXXX","payment_link":null,` +
	`"payment_method_collection":"if_required","payment_method_configuration_details":{"id":"pmc_1QbenchXXXXXXXXXXXXXXXX","parent":null},` +
	`"payment_method_options":{"card":{"request_three_d_secure":"automatic"}},"payment_method_types":["card","sepa_debit","link"],` +
	`"permissions":null,"phone_number_collection":{"enabled":false},"presentment_details":{"presentment_amount":120000,"presentment_currency":"eur"},` +
	`"recovered_from":null,"saved_payment_method_options":null,"setup_intent":null,` +
	`"shipping_address_collection":{"allowed_countries":["FR","BE","DE","CH"]},"shipping_cost":null,"shipping_options":[],` +
	`"submit_type":null,"subscription":null,"success_url":"https://shop.example.com/merci?session_id={CHECKOUT_SESSION_ID}",` +
	`"total_details":{"amount_discount":0,"amount_shipping":0,"amount_tax":0},"ui_mode":"hosted","url":null,` +
	`"wallet_options":null,`

// event is one webhook to send: a distinct paid Checkout Session for one
// artwork, as Stripe would send it (signed at send time).
type event struct{ body []byte }

// sessionStart is where the Checkout Session begins in stripehook.Sample's
// JSON, whose keys are sorted.
var sessionStart = []byte(`"data":{"object":{`)

// makeEvents builds the events for artworks [from, from+count) of prefix.
func makeEvents(prefix string, from, count int) []event {
	out := make([]event, count)
	for k := range out {
		i := from + k
		body := stripehook.Sample{
			EventID: "evt_" + prefix + "_" + strconv.Itoa(i), Type: stock.CheckoutCompleted,
			SessionID: "cs_live_" + prefix + "_" + strconv.Itoa(i), ArtworkIDs: []string{artworkID(prefix, i)},
			Email: "buyer" + strconv.Itoa(i) + "@example.com", AmountTotal: 120000, Currency: "eur",
		}.JSON()
		at := bytes.Index(body, sessionStart)
		if at < 0 {
			panic("stripehook.Sample's JSON has no data.object")
		}
		at += len(sessionStart)
		b := make([]byte, 0, len(body)+len(sessionExtras))
		b = append(append(append(b, body[:at]...), sessionExtras...), body[at:]...)
		out[k] = event{body: b}
	}
	return out
}

// outcome is how one event went, from the load generator's side.
type outcome struct {
	ok      bool
	non2xx  bool
	failure string // why it is not ok: a status and body, or a transport error
}

// failed describes a failure in at most 300 bytes: answers can be long.
func failed(format string, args ...any) outcome {
	s := fmt.Sprintf(format, args...)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return outcome{failure: s}
}

// loadResult is what drive measured.
type loadResult struct {
	wall       time.Duration
	latencies  []time.Duration // sorted
	non2xx     int
	unexpected int // 2xx that did not sell, and transport errors
	first      string
}

// drive runs fn for i in [0, n) from c goroutines and times each call. It
// stops early only when ctx ends.
func drive(ctx context.Context, c, n int, fn func(ctx context.Context, i int) outcome) loadResult {
	lat := make([]time.Duration, n)
	outs := make([]outcome, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range max(1, min(c, n)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t := time.Now()
				outs[i] = fn(ctx, i)
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	res := loadResult{wall: time.Since(start)}
	done := min(n, int(next.Load()))
	res.latencies = lat[:done]
	slices.Sort(res.latencies)
	for _, o := range outs[:done] {
		switch {
		case o.ok:
			continue
		case o.non2xx:
			res.non2xx++
		default:
			res.unexpected++
		}
		if res.first == "" {
			res.first = o.failure
		}
	}
	if done < n {
		res.unexpected += n - done
		if res.first == "" {
			res.first = fmt.Sprintf("interrupted after %d of %d events", done, n)
		}
	}
	return res
}

// newClient keeps enough connections alive for c concurrent requests.
func newClient(c int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2 * c
	t.MaxIdleConnsPerHost = 2 * c
	t.DisableCompression = true
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// webhooks posts signed events to soldout.
type webhooks struct {
	url, secret string
	client      *http.Client
	events      []event
}

var (
	jsonType = []string{"application/json"}
	soldBody = []byte(`"outcome":"sold"`)
)

func (w *webhooks) send(ctx context.Context, i int) outcome {
	body := w.events[i].body
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return failed("%v", err)
	}
	req.Header["Content-Type"] = jsonType
	req.Header["Stripe-Signature"] = []string{stripehook.Sign(body, w.secret, time.Now())}
	resp, err := w.client.Do(req)
	if err != nil {
		return failed("%v", err)
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case err != nil:
		return failed("reading the answer: %v", err)
	case resp.StatusCode/100 != 2:
		o := failed("%d %s", resp.StatusCode, bytes.TrimSpace(answer))
		o.non2xx = true
		return o
	case !bytes.Contains(answer, soldBody):
		return failed("%d %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	return outcome{ok: true}
}

// latencyMs summarises a run's latencies.
type latencyMs struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarise(sorted []time.Duration) latencyMs {
	if len(sorted) == 0 {
		return latencyMs{}
	}
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(sorted)))) - 1
		return ms(sorted[max(0, i)])
	}
	return latencyMs{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(sorted[len(sorted)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
