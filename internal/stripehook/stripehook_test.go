package stripehook_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stripe/stripe-go/v85/webhook"

	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

const (
	secret    = "whsec_test_secret"
	oldSecret = "whsec_old_secret_still_live"
)

func TestReferenceVector(t *testing.T) {
	// From Stripe's documented scheme (shared/reference/stripe-webhooks.md).
	got := hex.EncodeToString(webhook.ComputeSignature(time.Unix(1700000000, 0), []byte(`{"id":"evt_test","object":"event"}`), secret))
	if want := "8042376f6ca064adbe037642a718227dfd59047137eb49497a54c49eb0cfb724"; got != want {
		t.Fatalf("v1 = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	body := stripehook.Sample{EventID: "evt_1", Type: stock.CheckoutCompleted, SessionID: "cs_1", ArtworkIDs: []string{"a1"}}.JSON()
	now := time.Now()
	sig := func(s string, at time.Time) string {
		return hex.EncodeToString(webhook.ComputeSignature(at, body, s))
	}
	ts := func(at time.Time) string { return fmt.Sprintf("t=%d", at.Unix()) }
	tests := []struct {
		name    string
		secrets []string
		header  string
		body    []byte
		reason  string // "" means accepted
	}{
		{"valid", []string{secret}, stripehook.Sign(body, secret, now), body, ""},
		{"wrong secret", []string{secret}, stripehook.Sign(body, "whsec_someone_else", now), body, stripehook.ReasonNoMatch},
		{"missing header", []string{secret}, "", body, stripehook.ReasonMissing},
		{"garbage header", []string{secret}, "nonsense", body, stripehook.ReasonMalformed},
		{"bad timestamp", []string{secret}, "t=yesterday,v1=" + sig(secret, now), body, stripehook.ReasonMalformed},
		{"no v1 at all", []string{secret}, ts(now) + ",v0=" + sig(secret, now), body, stripehook.ReasonMalformed},
		{"no t", []string{secret}, "v1=" + sig(secret, now), body, stripehook.ReasonMalformed},
		{"two t", []string{secret}, ts(now) + "," + ts(now) + ",v1=" + sig(secret, now), body, stripehook.ReasonMalformed},
		{"a blank after a comma", []string{secret}, ts(now) + ", v1=" + sig(secret, now), body, stripehook.ReasonMalformed},
		{"not key=value", []string{secret}, ts(now) + ",v1=" + sig(secret, now) + ",junk", body, stripehook.ReasonMalformed},
		{"stale", []string{secret}, stripehook.Sign(body, secret, now.Add(-301*time.Second)), body, stripehook.ReasonStale},
		{"stale and forged: the signature is the problem, not the clock", []string{secret}, stripehook.Sign(body, "whsec_attacker_000000", now.Add(-301*time.Second)), body, stripehook.ReasonNoMatch},
		{"stale, signed by the second secret", []string{"whsec_other_000000", secret}, stripehook.Sign(body, secret, now.Add(-301*time.Second)), body, stripehook.ReasonStale},
		{"just inside tolerance", []string{secret}, stripehook.Sign(body, secret, now.Add(-290*time.Second)), body, ""},
		{"body changed after signing", []string{secret}, stripehook.Sign(body, secret, now), append([]byte(" "), body...), stripehook.ReasonNoMatch},
		{"several v1, second matches", []string{secret}, ts(now) + ",v1=" + sig("whsec_other_000000", now) + ",v1=" + sig(secret, now), body, ""},
		{"v0 ignored even if it would match", []string{secret}, ts(now) + ",v0=" + sig(secret, now) + ",v1=" + strings.Repeat("00", 32), body, stripehook.ReasonNoMatch},
		{"rotation: old secret signs", []string{secret, oldSecret}, stripehook.Sign(body, oldSecret, now), body, ""},
		{"rotation: both sign", []string{secret, oldSecret}, ts(now) + ",v1=" + sig(oldSecret, now) + ",v1=" + sig(secret, now), body, ""},
		{"rotation: neither", []string{secret, oldSecret}, stripehook.Sign(body, "whsec_attacker_key", now), body, stripehook.ReasonNoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := stripehook.NewVerifier(tt.secrets, stripehook.DefaultTolerance)
			if err != nil {
				t.Fatal(err)
			}
			err = v.Verify(tt.body, tt.header)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var se *stripehook.SignatureError
			if !errors.As(err, &se) || se.Reason != tt.reason {
				t.Fatalf("err = %v, want reason %s", err, tt.reason)
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error message leaks a secret: %v", err)
				}
			}
		})
	}
}

func TestParseSecrets(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"whsec_abcdefgh12345678", 1, true},
		{"whsec_12345678", 1, true}, // the shortest accepted: 8 characters after the prefix
		{"whsec_1234567", 0, false}, // one fewer
		{" whsec_abcdefgh12345678 , whsec_zyxwvuts98765432 ", 2, true},
		{"sk_test_123456789", 0, false},
		{"whsec_", 0, false},
		{"", 0, false},
		{",,", 0, false},
		{"whsec_01234567\n89abcdef", 0, false}, // a wrapped terminal line
		{`whsec_0123456789abcdef"`, 0, false},
		{"whsec_abcdefgh12345678 whsec_zyxwvuts98765432", 0, false}, // a blank for a comma
		{"whsec_ab+/cd=efgh12345678", 1, true},
	}
	for _, tt := range tests {
		got, err := stripehook.ParseSecrets(tt.in)
		if (err == nil) != tt.ok || len(got) != tt.want {
			t.Errorf("ParseSecrets(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && len(tt.in) > 8 && strings.Contains(err.Error(), tt.in) {
			t.Errorf("error echoes the secret: %v", err)
		}
	}
}

func TestNewVerifierRejectsZeroTolerance(t *testing.T) {
	// stripe-go treats 0 as "reject anything 1 s old": never let it through.
	if _, err := stripehook.NewVerifier([]string{secret}, 0); err == nil {
		t.Fatal("zero tolerance accepted")
	}
}

func TestDecode(t *testing.T) {
	created := time.Unix(1764000000, 0).UTC()
	tests := []struct {
		name    string
		body    string
		want    stock.Event
		invalid bool
		// refusedID is the id an invalid event is returned with: a checkout
		// event's envelope, so that the caller can journal what it refuses.
		refusedID string
	}{
		{
			name: "completed, paid, other API version, unknown fields",
			body: `{"id":"evt_1","object":"event","api_version":"2019-02-11","type":"checkout.session.completed","created":1764000000,"livemode":true,
				"data":{"object":{"id":"cs_1","object":"checkout.session","status":"complete","payment_status":"paid","amount_total":120000,"currency":"eur",
				"customer_details":{"email":"buyer@example.com","address":null},"metadata":{"artworkId":"artwork-42"},"future_field":{"x":1}}}}`,
			want: stock.Event{ID: "evt_1", Type: stock.CheckoutCompleted, Created: created, Livemode: true, APIVersion: "2019-02-11",
				Session: stock.Session{ID: "cs_1", Status: "complete", PaymentStatus: "paid", Email: "buyer@example.com", AmountTotal: 120000, Currency: "eur", ArtworkIDs: []string{"artwork-42"}}},
		},
		{
			name: "cart of several, customer_email fallback",
			body: `{"id":"evt_2","object":"event","type":"checkout.session.completed","created":1764000000,
				"data":{"object":{"id":"cs_2","object":"checkout.session","payment_status":"unpaid","customer_email":"b@example.com","metadata":{"artworkIds":" a1, a2 ,,a3"}}}}`,
			want: stock.Event{ID: "evt_2", Type: stock.CheckoutCompleted, Created: created,
				Session: stock.Session{ID: "cs_2", PaymentStatus: "unpaid", Email: "b@example.com", ArtworkIDs: []string{"a1", "a2", "a3"}}},
		},
		{
			// customer_details.email is what the buyer typed; customer_email
			// only what soldout prefilled (as stripeapi.Session reads them).
			name: "both emails: customer_details wins over customer_email",
			body: `{"id":"evt_10","object":"event","type":"checkout.session.completed","created":1764000000,
				"data":{"object":{"id":"cs_10","object":"checkout.session","payment_status":"paid","customer_email":"prefilled@example.com",
				"customer_details":{"email":"typed@example.com"},"metadata":{"artworkId":"a1"}}}}`,
			want: stock.Event{ID: "evt_10", Type: stock.CheckoutCompleted, Created: created,
				Session: stock.Session{ID: "cs_10", PaymentStatus: "paid", Email: "typed@example.com", ArtworkIDs: []string{"a1"}}},
		},
		{
			name: "other event type keeps no session",
			body: `{"id":"evt_3","object":"event","type":"payment_intent.succeeded","created":1764000000,"data":{"object":{"id":"pi_1","object":"payment_intent"}}}`,
			want: stock.Event{ID: "evt_3", Type: "payment_intent.succeeded", Created: created},
		},
		{
			name: "other event type whose object does not fit a session",
			body: `{"id":"evt_6","object":"event","type":"invoice.paid","created":1764000000,"data":{"object":{"id":"in_1","object":"invoice","status":7,"metadata":{"n":1},"customer_details":"x"}}}`,
			want: stock.Event{ID: "evt_6", Type: "invoice.paid", Created: created},
		},
		{
			name: "other event type whose object is not an object",
			body: `{"id":"evt_7","object":"event","type":"x.y","created":1764000000,"data":{"object":"nonsense"}}`,
			want: stock.Event{ID: "evt_7", Type: "x.y", Created: created},
		},
		{
			name: "a thin event of an event destination",
			body: `{"id":"evt_test_65R9","object":"v2.core.event","type":"v1.billing.meter.error_report_triggered","created":"2025-11-24T16:00:00.000Z","livemode":false,
				"related_object":{"id":"mtr_1","type":"billing.meter","url":"/v1/billing/meters/mtr_1"},"reason":null,"context":null}`,
			want: stock.Event{ID: "evt_test_65R9", Type: "v1.billing.meter.error_report_triggered", Created: time.Date(2025, 11, 24, 16, 0, 0, 0, time.UTC)},
		},
		{name: "envelope of the wrong type after a mismatch in another type's object",
			body: `{"id":"evt_8","object":"event","type":"invoice.paid","data":{"object":{"status":7}},"created":"yesterday"}`, invalid: true},
		{name: "envelope of the wrong type", body: `{"id":"evt_9","object":"event","type":"checkout.session.completed","created":"yesterday"}`, invalid: true},
		{name: "not JSON", body: `{"id":`, invalid: true},
		{name: "not an event", body: `{"id":"cs_1","object":"checkout.session"}`, invalid: true},
		{name: "checkout event whose object is something else", body: `{"id":"evt_4","object":"event","type":"checkout.session.completed","data":{"object":{"id":"pi_1","object":"payment_intent"}}}`, invalid: true, refusedID: "evt_4"},
		{name: "metadata of the wrong type", body: `{"id":"evt_5","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_1","object":"checkout.session","metadata":{"artworkId":7}}}}`, invalid: true, refusedID: "evt_5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stripehook.Decode([]byte(tt.body))
			if tt.invalid {
				if stock.ErrorCode(err) != stock.Invalid {
					t.Fatalf("err = %v, want an Invalid error", err)
				}
				if got.ID != tt.refusedID || tt.refusedID != "" && (got.Type != stock.CheckoutCompleted || string(got.Payload) != tt.body) {
					t.Fatalf("refused as %+v, want id %q with its type and payload", got, tt.refusedID)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Payload = nil
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSampleRoundTrip(t *testing.T) {
	for _, typ := range []string{stock.CheckoutCompleted, stock.CheckoutAsyncSucceeded, stock.CheckoutAsyncFailed, stock.CheckoutExpired} {
		s := stripehook.Sample{EventID: "evt_x", Type: typ, SessionID: "cs_x", ArtworkIDs: []string{"a", "b"}, Email: "e@example.com", AmountTotal: 5000}
		ev, err := stripehook.Decode(s.JSON())
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if ev.Session.ID != "cs_x" || len(ev.Session.ArtworkIDs) != 2 || ev.Session.Email != "e@example.com" || ev.Type != typ {
			t.Fatalf("%s: decoded %+v", typ, ev)
		}
	}
}

func FuzzVerify(f *testing.F) {
	body := []byte(`{"id":"evt_1","object":"event"}`)
	now := time.Now()
	f.Add(stripehook.Sign(body, secret, now), body)
	f.Add("t=1,v1=zz,v0=00", body)
	f.Add("t=,v1", []byte{})
	f.Add(",,,=,==", body)
	f.Add("t=99999999999999999999,v1=00", body)
	v, err := stripehook.NewVerifier([]string{secret, oldSecret}, stripehook.DefaultTolerance)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := v.Verify(body, header)
		var se *stripehook.SignatureError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add(stripehook.Sample{EventID: "evt_1", Type: stock.CheckoutCompleted, SessionID: "cs_1", ArtworkIDs: []string{"a"}}.JSON())
	f.Add([]byte(`{"id":"e","object":"event","type":"checkout.session.completed","data":{"object":null}}`))
	f.Add([]byte(`{"id":"e","object":"event","type":"checkout.session.expired","data":{"object":{"id":"cs","object":"checkout.session","metadata":{"artworkIds":",,,"}}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("{\"id\":\"e\\u0000\",\"object\":\"event\",\"type\":\"checkout.session.completed\",\"data\":{\"object\":{\"id\":\"cs\xff\",\"object\":\"checkout.session\",\"metadata\":{\"artworkId\":\"a\\ud800\"}}}}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := stripehook.Decode(body)
		if err != nil {
			if stock.ErrorCode(err) != stock.Invalid {
				t.Fatalf("decode error not classified Invalid: %v", err)
			}
			return
		}
		if ev.ID == "" || ev.Type == "" {
			t.Fatalf("accepted an event without id or type: %q", body)
		}
		for _, id := range ev.Session.ArtworkIDs {
			if id == "" {
				t.Fatal("empty artwork id")
			}
		}
		// What the journal stores is text, and the stored payload, replayed,
		// decodes to the same event.
		for _, str := range append([]string{ev.ID, ev.Type, ev.APIVersion, string(ev.Payload), ev.Session.ID, ev.Session.Status,
			ev.Session.PaymentStatus, ev.Session.Email, ev.Session.Currency}, ev.Session.ArtworkIDs...) {
			if !stock.IsText(str) {
				t.Fatalf("decoded %q, not clean text, from %q", str, body)
			}
		}
		if again, err := stripehook.Decode(ev.Payload); err != nil || !reflect.DeepEqual(again, ev) {
			t.Fatalf("the stored payload decodes to %#v, %v; not %#v", again, err, ev)
		}
	})
}

// TestDecodeCleans: a signed body may carry NUL escapes and bytes that are
// not UTF-8, which PostgreSQL's text refuses. Decode cleans them, payload
// included, and the cleaned payload, replayed, decodes to the same event.
func TestDecodeCleans(t *testing.T) {
	body := `{"id":"evt_11\u0000","object":"event","type":"checkout.session.completed","created":1764000000,
		"data":{"object":{"id":"cs_11\u0000","object":"checkout.session","payment_status":"paid",
		"customer_details":{"email":"b\u0000@example.com","name":"Zo` + "\xff" + `"},"metadata":{"artworkId":"a1\u0000"}}}}`
	got, err := stripehook.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := stock.Event{ID: "evt_11\uFFFD", Type: stock.CheckoutCompleted, Created: time.Unix(1764000000, 0).UTC(),
		Session: stock.Session{ID: "cs_11\uFFFD", PaymentStatus: "paid", Email: "b\uFFFD@example.com", ArtworkIDs: []string{"a1\uFFFD"}}}
	if payload := got.Payload; !utf8.Valid(payload) || bytes.IndexByte(payload, 0) >= 0 {
		t.Errorf("payload %q is not clean text", payload)
	}
	again, err := stripehook.Decode(got.Payload)
	if err != nil {
		t.Fatalf("the cleaned payload does not decode: %v", err)
	}
	if !reflect.DeepEqual(again, got) {
		t.Errorf("the cleaned payload decodes to\n%#v\nnot\n%#v", again, got)
	}
	got.Payload = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}
