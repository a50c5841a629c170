package journal

import (
	"context"

	"soldout/internal/stock"
)

// CountSales returns how many sales are in state. It is a single count on
// the read path, cheap enough for every metrics scrape: the sales table holds
// one row per artwork sold or attempted, not one per event.
func (d *DB) CountSales(ctx context.Context, state stock.SaleState) (int, error) {
	var n int
	err := d.read.QueryRowContext(ctx, `SELECT count(*) FROM sales WHERE state = $1`, string(state)).Scan(&n)
	if err != nil {
		return 0, fail(err, "count %s sales", state)
	}
	return n, nil
}
