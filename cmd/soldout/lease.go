package main

import (
	"fmt"
	"time"

	"soldout/internal/stock"
)

// maxLeaseTTL keeps a typo (20m for 20s) from letting a killed replica
// block its sales' redeliveries for longer than Stripe's first retries.
const maxLeaseTTL = 2 * time.Minute

// parseLeaseTTL reads SOLDOUT_LEASE_TTL: how long a sale claimed by one
// replica stays its own while it writes to Sanity, and so the longest a
// replica killed in the middle of a write blocks the next delivery. It must
// outlast the time budget: a live replica whose claim expired mid-write would
// be taken over and its work done twice (harmless, since the transaction id
// is derived from the sale and the revision, but wasted). Unset, it is
// stock.DefaultLeaseTTL, stretched past a budget that reaches it. It returns
// a message for configError when v is unusable.
func parseLeaseTTL(v string, budget time.Duration) (time.Duration, string) {
	if v == "" {
		return max(stock.DefaultLeaseTTL, budget+time.Second), ""
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= budget || d > maxLeaseTTL {
		return 0, fmt.Sprintf("SOLDOUT_LEASE_TTL=%q: a duration longer than the time budget (%s) and at most %s, e.g. 20s", v, budget, maxLeaseTTL)
	}
	return d, ""
}
