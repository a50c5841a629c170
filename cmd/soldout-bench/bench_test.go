package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

func TestEventsAreWhatStripeSends(t *testing.T) {
	for i, ev := range makeEvents("p1", 7, 2) {
		got, err := stripehook.Decode(ev.body)
		if err != nil {
			t.Fatal(err)
		}
		want := artworkID("p1", 7+i)
		if got.Type != stock.CheckoutCompleted || got.Session.PaymentStatus != stock.PaymentPaid ||
			len(got.Session.ArtworkIDs) != 1 || got.Session.ArtworkIDs[0] != want || !stock.ValidArtworkID(want) {
			t.Errorf("event %d decodes as %+v", i, got)
		}
		if n := len(ev.body); n < 2000 || n > 4000 {
			t.Errorf("event %d is %d bytes, not the size of a real Checkout event", i, n)
		}
	}
}

func TestSummaries(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	if got, want := summarise(lat), (latencyMs{P50: 50, P90: 90, P99: 99, Max: 100}); got != want {
		t.Errorf("summarise = %+v, want %+v", got, want)
	}
	runs := []runResult{
		{EventsPerSecond: 10, Non2xx: 1, FirstFailure: "a"},
		{EventsPerSecond: 30},
		{EventsPerSecond: 20, Non2xx: 2, FirstFailure: "c"},
	}
	m := medianRun(runs)
	if m.EventsPerSecond != 20 || m.Non2xx != 3 || m.FirstFailure != "a" {
		t.Errorf("median of three = %+v", m)
	}
	if m := medianRun(runs[:2]); m.EventsPerSecond != 20 {
		t.Errorf("median of two = %v, want the mean of both", m.EventsPerSecond)
	}
}

func TestCeilingSellsWhatItIsSent(t *testing.T) {
	fk, prefix, err := startSeeded(0, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer fk.close()
	srv := httptest.NewServer(ceilingHandler(newCeilingClient(fk.url, 2)))
	defer srv.Close()
	wh := &webhooks{url: srv.URL + "/api/webhook", secret: "whsec_test", client: srv.Client(), events: makeEvents(prefix, 0, 2)}
	if res := drive(t.Context(), 2, 2, wh.send); res.first != "" {
		t.Fatalf("ceiling: %d non-2xx, %d unexpected; first: %s", res.non2xx, res.unexpected, res.first)
	}
	if n := fk.stillAvailable(prefix, 0, 2); n != 0 {
		t.Errorf("%d artworks still available after the ceiling sold them", n)
	}
	// Two sales of soldout's four requests each, as stock's TestASaleCostsFourSanityRequests pins them.
	if got, want := fk.requests(), (requests{Doc: 4, Query: 2, Mutate: 2}); got != want {
		t.Errorf("Sanity requests = %+v, want %+v: the ceiling must make soldout's requests", got, want)
	}
	resp, err := srv.Client().Post(wh.url, "application/json", strings.NewReader(`{"id":"evt_1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an event without an artwork: %d, want 400", resp.StatusCode)
	}
}

func TestStealPercent(t *testing.T) {
	for _, c := range []struct {
		a, b cpuTicks
		want float64
	}{
		{cpuTicks{total: 100, steal: 10}, cpuTicks{total: 300, steal: 30}, 10},
		{cpuTicks{total: 100, steal: 10}, cpuTicks{total: 100, steal: 10}, 0}, // no time passed
		{cpuTicks{}, cpuTicks{}, 0}, // no /proc/stat
	} {
		if got := stealPercent(c.a, c.b); got != c.want {
			t.Errorf("stealPercent(%+v, %+v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	if now := machineCPU(); now.total <= 0 || now.steal < 0 || now.steal > now.total {
		t.Errorf("machineCPU() = %+v: /proc/stat misread", now)
	}
}

func TestServerEnvReachesSoldoutLast(t *testing.T) {
	o, err := parseOptions([]string{"-mode", "ceiling", "-server-env", "GOMAXPROCS=1", "-server-env", "SOLDOUT_LOG_LEVEL=debug"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	env := serverEnv(o, "http://sanity", "file:/tmp/j.db", "whsec_x")
	if got := strings.Join(env[len(env)-2:], " "); got != "GOMAXPROCS=1 SOLDOUT_LOG_LEVEL=debug" {
		t.Errorf("soldout's environment ends with %q: -server-env must come last, to win over the bench's defaults", got)
	}
	if _, err := parseOptions([]string{"-mode", "ceiling", "-server-env", "GOMAXPROCS"}, io.Discard); err == nil {
		t.Error("-server-env without = accepted")
	}
}
