package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
)

// plainSanity is a fake Sanity without faults.
func plainSanity(t *testing.T, faults ...sanitytest.Options) func(int) *fakeSanity {
	return func(slots int) *fakeSanity { return newFakeSanity(t, slots, faults...) }
}

// sales puts n artworks and returns one paid completion for each, and the
// jobs delivering them to replica 0.
func sales(f *fakeSanity, prefix string, n int) ([]*event, []job) {
	var evs []*event
	var jobs []job
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		ev := newEvent(fmt.Sprintf("evt_%s_%03d", prefix, i), stock.CheckoutCompleted, stock.PaymentPaid, "cs_"+id, id)
		ids, evs, jobs = append(ids, id), append(evs, ev), append(jobs, job{{ev, 0}})
	}
	f.putArtworks(ids, nil)
	return evs, jobs
}

// checkSold asserts that every event got a 2xx and each artwork exactly one
// Sanity write.
func checkSold(t *testing.T, c *cluster, d *driver, evs []*event) {
	t.Helper()
	if _, gaveUp := d.snapshot(); len(gaveUp) > 0 {
		t.Errorf("never answered 2xx: %v", gaveUp)
	}
	for _, ev := range evs {
		doc, _ := c.sanity.lake.Get(ev.artwork)
		if available(doc) || c.sanity.lake.Writes(ev.artwork) != 1 {
			t.Errorf("%s: available %v after %d writes, want unavailable after 1", ev.artwork, available(doc), c.sanity.lake.Writes(ev.artwork))
		}
	}
}

// TestTimeBudget: when Sanity takes the write and never answers, soldout
// answers 503 within its budget, and the redelivery completes the sale
// without writing it again.
func TestTimeBudget(t *testing.T) {
	const budget = 2 * time.Second
	c := newCluster(t, 1, plainSanity(t), "SOLDOUT_TIME_BUDGET="+budget.String(), "SOLDOUT_LEASE_TTL=3s")
	evs, jobs := sales(c.sanity, "budget", 1)
	d := newDriver(c, 1, 1)
	held := c.sanity.holdNextMutate()

	first := d.post(context.Background(), 0, evs[0])
	if first.status != http.StatusServiceUnavailable || first.took > budget {
		t.Fatalf("Sanity hanging: answered %d %s after %v, want 503 within the %v budget", first.status, first.code, first.took, budget)
	}
	var h heldMutate
	select {
	case h = <-held:
	default:
		t.Fatal("the write never reached Sanity")
	}
	t.Logf("503 after %v while Sanity held the write", first.took.Round(time.Millisecond))

	db := c.journal()
	ctx := context.Background()
	if rec, err := db.Event(ctx, evs[0].id); err != nil || rec.Outcome != stock.OutcomeFailed {
		t.Errorf("journal after the 503: outcome %q (%v), want failed, so that a redelivery is not a duplicate", rec.Outcome, err)
	}

	ctx, cancel := context.WithTimeout(ctx, suiteDeadline)
	defer cancel()
	d.run(ctx, jobs)
	checkSold(t, c, d, evs)
	sales, err := db.Sales(ctx, evs[0].artwork)
	if err != nil || len(sales) != 1 || sales[0].AppliedRev != h.txID || sales[0].LeaseOwner != "" {
		t.Errorf("journal after the redelivery: %+v (%v), want one settled sale applied by %s", sales, err, h.txID)
	}
}

// TestSanityPacing: with SOLDOUT_SANITY_RATE=4, a burst of sales reaches
// Sanity at four mutations per second, evenly spaced (no second holds more),
// however fast Stripe delivers.
func TestSanityPacing(t *testing.T) {
	const rate, n = 4, 12
	c := newCluster(t, 1, plainSanity(t), fmt.Sprintf("SOLDOUT_SANITY_RATE=%d", rate),
		"SOLDOUT_TIME_BUDGET=8s", "SOLDOUT_LEASE_TTL=9s") // room for the whole burst in one delivery
	evs, jobs := sales(c.sanity, "paced", n)
	d := newDriver(c, n, 1)
	ctx, cancel := context.WithTimeout(context.Background(), suiteDeadline)
	defer cancel()
	d.run(ctx, jobs)
	checkSold(t, c, d, evs)

	calls := c.sanity.calls()
	if len(calls) != n {
		t.Fatalf("%d mutate requests for %d sales", len(calls), n)
	}
	// The k-th request may start no earlier than k intervals after the
	// first; the tolerance covers the first one's own way here.
	const interval, tolerance = time.Second / rate, 50 * time.Millisecond
	for k, call := range calls {
		if earliest := time.Duration(k) * interval; call.at.Sub(calls[0].at) < earliest-tolerance {
			t.Errorf("mutation %d came %v after the first, want at least %v at %d per second", k, call.at.Sub(calls[0].at), earliest, rate)
		}
	}
	t.Logf("%d mutations spread over %v", n, calls[n-1].at.Sub(calls[0].at).Round(time.Millisecond))
}

// TestRateLimitPausesTheReplica: one 429 asking for three seconds stops
// every mutation of the replica for three seconds, even of events that
// arrive later, while Stripe keeps redelivering: soldout answers 503 and
// sends Sanity nothing, then applies everything once the window reopens.
func TestRateLimitPausesTheReplica(t *testing.T) {
	const retryAfter = 3 * time.Second
	c := newCluster(t, 1, plainSanity(t, sanitytest.Options{
		Sequence: []sanitytest.Fault{sanitytest.RateLimited}, RetryAfter: retryAfter,
	}), "SOLDOUT_TIME_BUDGET=2s", "SOLDOUT_LEASE_TTL=3s")
	evs, jobs := sales(c.sanity, "limited", 4)
	d := newDriver(c, 4, 1)

	if a := d.post(context.Background(), 0, evs[0]); a.status != http.StatusServiceUnavailable {
		t.Fatalf("after a 429 asking for %v, beyond the budget: answered %d %s, want 503", retryAfter, a.status, a.outcome)
	}
	ctx, cancel := context.WithTimeout(context.Background(), suiteDeadline)
	defer cancel()
	d.run(ctx, jobs) // the limited event again, and three that arrive during the pause
	checkSold(t, c, d, evs)

	calls := c.sanity.calls()
	if len(calls) == 0 || calls[0].status != http.StatusTooManyRequests {
		t.Fatalf("mutate requests %+v, want a 429 first", calls)
	}
	for _, call := range calls[1:] {
		if wait := call.at.Sub(calls[0].at); wait < retryAfter {
			t.Errorf("a mutation came %v after the 429, before the %v it asked for", wait, retryAfter)
		}
	}
	// One write per sale, give or take one whose answer came too close to
	// its deadline, however often Stripe redelivered.
	if len(calls) > 1+2*len(evs) {
		t.Errorf("%d mutate requests for %d sales after one 429: a retry storm", len(calls), len(evs))
	}
	answers, _ := d.snapshot()
	t.Logf("%d deliveries were answered during or after the pause, for %d mutate requests", len(answers), len(calls))
}

// TestSlowAndOversizeClients: clients that stall in the header or the body,
// send a body over 1 MiB or a huge header cannot keep the server from
// answering everybody else, and the stalled ones are cut off by the read
// timeouts.
func TestSlowAndOversizeClients(t *testing.T) {
	c := newCluster(t, 1, plainSanity(t))
	addr := c.replicas[0].address()
	dial := func(prefix string) net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := io.WriteString(conn, prefix); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	var stalled []net.Conn
	for range 64 {
		stalled = append(stalled, dial("POST /api/webhook HTTP/1.1\r\nHost: soldout\r\nStripe-Signa"))
	}
	stalledBody := dial("POST /api/webhook HTTP/1.1\r\nHost: soldout\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"id\":")

	// Meanwhile, Stripe's deliveries and oversize requests are answered.
	evs, jobs := sales(c.sanity, "busy", 20)
	d := newDriver(c, 8, 1)
	ctx, cancel := context.WithTimeout(context.Background(), suiteDeadline)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { d.run(ctx, jobs) })
	huge := bytes.Repeat([]byte("x"), 2<<20)
	for name, req := range map[string]func() *http.Request{
		"body over 1 MiB": func() *http.Request {
			r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/webhook", bytes.NewReader(huge))
			return r
		},
		"chunked body over 1 MiB": func() *http.Request {
			r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/webhook", io.MultiReader(bytes.NewReader(huge)))
			return r
		},
		"header over 64 KiB": func() *http.Request {
			r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/webhook", strings.NewReader("{}"))
			r.Header.Set("X-Padding", strings.Repeat("p", 128<<10))
			return r
		},
	} {
		want := map[bool]int{true: http.StatusRequestHeaderFieldsTooLarge, false: http.StatusRequestEntityTooLarge}[strings.HasPrefix(name, "header")]
		resp, err := d.client.Do(req())
		if err != nil {
			t.Errorf("%s: %v, want %d", name, err, want)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, want)
		}
	}
	wg.Wait()
	checkSold(t, c, d, evs)
	resp, err := d.client.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz with stalled clients: %v %v", resp, err)
	}
	resp.Body.Close()

	// The server hangs up on the stalled clients: on those stuck in the
	// header first (ReadHeaderTimeout, 5 s), then on the one stuck in its
	// body (ReadTimeout, 10 s). A client still connected at the test's own
	// deadline was never cut off.
	deadline := time.Now().Add(30 * time.Second)
	closed := make([]time.Time, len(stalled)+1)
	var readers sync.WaitGroup
	for i, conn := range append(stalled, stalledBody) {
		readers.Go(func() {
			_ = conn.SetReadDeadline(deadline)
			_, err := io.Copy(io.Discard, conn) // until the server closes
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				return
			}
			closed[i] = time.Now()
		})
	}
	readers.Wait()
	body := closed[len(stalled)]
	if body.IsZero() {
		t.Error("the client stalled in its body is still connected after 30 s")
	}
	for i, at := range closed[:len(stalled)] {
		if at.IsZero() || !at.Before(body) {
			t.Errorf("client %d stalled in its header: cut off at %v, want before the one stalled in its body (%v)", i, at.Format(time.TimeOnly), body.Format(time.TimeOnly))
		}
	}
}
