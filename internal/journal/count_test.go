package journal

import (
	"testing"

	"soldout/internal/stock"
)

func TestCountSales(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			b.available(t)
			d := open(t, b.url(t))
			for _, s := range []stock.Sale{
				sale("art_a", "cs_1", stock.SaleHeld),
				sale("art_b", "cs_2", stock.SaleHeld),
				sale("art_c", "cs_3", stock.SaleSold),
				sale("art_a", "cs_4", stock.SaleDoubleSale),
			} {
				if err := d.InsertSale(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			for state, want := range map[stock.SaleState]int{
				stock.SaleHeld: 2, stock.SaleSold: 1, stock.SaleDoubleSale: 1, stock.SaleReleased: 0,
			} {
				if got, err := d.CountSales(ctx, state); err != nil || got != want {
					t.Errorf("CountSales(%s) = %d, %v; want %d", state, got, err, want)
				}
			}
			d.Close()
			if _, err := d.CountSales(ctx, stock.SaleHeld); stock.ErrorCode(err) != stock.Unavailable {
				t.Errorf("closed journal: %v, want an unavailable error", err)
			}
		})
	}
}
