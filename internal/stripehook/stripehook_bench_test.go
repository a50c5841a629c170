package stripehook_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// eventOfSize is a checkout.session.completed event padded with expanded
// line items to about size bytes: 2 KB is a typical Checkout event, 50 KB a
// large cart with its line items expanded.
func eventOfSize(tb testing.TB, size int) []byte {
	tb.Helper()
	var ev map[string]any
	body := stripehook.Sample{EventID: "evt_bench", Type: stock.CheckoutCompleted, SessionID: "cs_bench",
		ArtworkIDs: []string{"artwork-bench"}, Email: "buyer@example.com", AmountTotal: 120000}.JSON()
	if err := json.Unmarshal(body, &ev); err != nil {
		tb.Fatal(err)
	}
	session := ev["data"].(map[string]any)["object"].(map[string]any)
	var items []any
	for len(body) < size {
		items = append(items, map[string]any{
			"id": fmt.Sprintf("li_1Qbench%016d", len(items)), "object": "item", "amount_discount": 0, "amount_subtotal": 120000,
			"amount_tax": 0, "amount_total": 120000, "currency": "eur", "description": "Original artwork, oil on canvas",
			"price":    map[string]any{"id": "price_1Qbench", "object": "price", "active": true, "currency": "eur", "unit_amount": 120000},
			"quantity": 1,
		})
		session["line_items"] = map[string]any{"object": "list", "data": items, "has_more": false}
		var err error
		if body, err = json.Marshal(ev); err != nil {
			tb.Fatal(err)
		}
	}
	return body
}

func BenchmarkVerify(b *testing.B) {
	for _, size := range []int{2 << 10, 50 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			body := eventOfSize(b, size)
			v, err := stripehook.NewVerifier([]string{secret}, stripehook.DefaultTolerance)
			if err != nil {
				b.Fatal(err)
			}
			header := stripehook.Sign(body, secret, time.Now())
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Verify(body, header); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{2 << 10, 50 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			body := eventOfSize(b, size)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := stripehook.Decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
