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
// be taken over while it writes. A take done twice is harmless (both compute
// the same transaction id), a release taken over is not: the piece can stay
// unavailable with nobody holding it.
//
// Replicas stamp and compare leases with their own clocks, so what the
// lease has beyond the budget is also what clock skew between replicas may
// eat: an explicit value must leave at least minLeaseMargin, and the default
// (stock.DefaultLeaseTTL, stretched past a budget that reaches it) leaves
// defaultLeaseMargin. It returns a message for configError when v is
// unusable.
func parseLeaseTTL(v string, budget time.Duration) (time.Duration, string) {
	if v == "" {
		return defaultLeaseTTL(budget), ""
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < budget+minLeaseMargin || d > maxLeaseTTL {
		return 0, fmt.Sprintf("SOLDOUT_LEASE_TTL=%q: a duration at least %s longer than the time budget (%s), so that a replica's clock running a little ahead cannot take over a live claim, and at most %s, e.g. 20s",
			v, minLeaseMargin, budget, maxLeaseTTL)
	}
	return d, ""
}

// defaultLeaseTTL is the lease without SOLDOUT_LEASE_TTL: see parseLeaseTTL.
func defaultLeaseTTL(budget time.Duration) time.Duration {
	return max(stock.DefaultLeaseTTL, budget+defaultLeaseMargin)
}

const (
	minLeaseMargin     = time.Second
	defaultLeaseMargin = 5 * time.Second
)
