package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"soldout/internal/httpapi"
	"soldout/internal/stock"
)

// Every name must pass Prometheus' own linter (suffixes, units, help).
func TestNamesFollowConventions(t *testing.T) {
	m := New()
	m.WatchHeld(fakeSales{n: 1})
	m.ObserveWebhook("sold", 200)
	m.ObserveEvent("webhook", time.Millisecond)
	m.ObserveFulfil("not_paid", 200)
	m.SanityRequest("doc", "ok", time.Millisecond)
	m.SanityRequest("doc", "retry", time.Millisecond)
	m.DoubleSale()
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "soldout_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s lacks the soldout_ prefix", name)
		}
	}
}

func TestSanityRequest(t *testing.T) {
	m := New()
	before := float64(time.Now().Unix())
	for _, r := range []string{"ok", "ok", "5xx", "retry"} {
		m.SanityRequest("mutate", r, 20*time.Millisecond)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"ok", testutil.ToFloat64(m.sanityRequests.WithLabelValues("mutate", "ok")), 2},
		{"5xx", testutil.ToFloat64(m.sanityRequests.WithLabelValues("mutate", "5xx")), 1},
		{"a retry is not a request", testutil.ToFloat64(m.sanityRequests.WithLabelValues("mutate", "retry")), 0},
		{"retries", testutil.ToFloat64(m.sanityRetries.WithLabelValues("mutate")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.sanityDuration); n != 1 {
		t.Errorf("duration series: %d, want 1 (mutate)", n)
	}
	if last := testutil.ToFloat64(m.sanityLastOK); last < before {
		t.Errorf("last success %v, want at least %v", last, before)
	}
}

// The journal wrapper counts double sales once and journal failures
// honestly.
func TestJournal(t *testing.T) {
	live := context.Background()
	spent, cancel := context.WithCancel(live)
	cancel()
	down := stock.Wrap(stock.Unavailable, errors.New("disk I/O error"), "journal: insert sale")
	for _, c := range []struct {
		name       string
		ctx        context.Context
		state      stock.SaleState
		err        error
		doubles    float64
		journalErr float64
	}{
		{"double sale recorded", live, stock.SaleDoubleSale, nil, 1, 0},
		{"sale recorded", live, stock.SaleSold, nil, 0, 0},
		{"double sale row already there", live, stock.SaleDoubleSale, stock.Wrap(stock.Conflict, stock.ErrSaleExists, "journal"), 0, 0},
		{"lost race", live, stock.SaleSold, stock.Wrap(stock.Conflict, stock.ErrSaleTaken, "journal"), 0, 0},
		{"journal down", live, stock.SaleDoubleSale, down, 0, 1},
		{"caller out of time", spent, stock.SaleSold, stock.Wrap(stock.Unavailable, context.Canceled, "journal"), 0, 0},
		{"journal down while caller out of time", spent, stock.SaleSold, down, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := New()
			j := m.Journal(fakeJournal{err: c.err})
			insert, op := j.InsertSale, "insert_sale"
			if c.state == stock.SaleDoubleSale {
				insert = func(ctx context.Context, s stock.Sale) error { return j.InsertDoubleSale(ctx, s, nil) }
				op = "insert_double_sale"
			}
			err := insert(c.ctx, stock.Sale{State: c.state})
			if !errors.Is(err, c.err) {
				t.Errorf("error %v not passed through", err)
			}
			if got := testutil.ToFloat64(m.doubleSales); got != c.doubles {
				t.Errorf("double sales %v, want %v", got, c.doubles)
			}
			if got := testutil.ToFloat64(m.journalErrors.WithLabelValues(op)); got != c.journalErr {
				t.Errorf("journal errors %v, want %v", got, c.journalErr)
			}
		})
	}
}

// A journal that cannot count drops the gauge from the scrape, not the
// scrape.
func TestHeldGauge(t *testing.T) {
	for _, c := range []struct {
		name  string
		sales fakeSales
		want  string
	}{
		{"counted", fakeSales{n: 3}, "soldout_held_artworks 3\n"},
		{"journal down", fakeSales{err: errors.New("database is locked")}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := New()
			m.WatchHeld(c.sales)
			m.DoubleSale()
			rec := httptest.NewRecorder()
			m.Handler(slog.New(slog.NewTextHandler(io.Discard, nil))).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			body := rec.Body.String()
			if rec.Code != 200 || !strings.Contains(body, "soldout_double_sales_total 1\n") {
				t.Fatalf("scrape: %d\n%s", rec.Code, body)
			}
			if got := strings.Contains(body, "soldout_held_artworks "); got != (c.want != "") || !strings.Contains(body, c.want) {
				t.Errorf("held gauge: want %q in\n%s", c.want, body)
			}
		})
	}
}

type fakeSales struct {
	n   int
	err error
}

func (f fakeSales) CountSales(ctx context.Context, state stock.SaleState) (int, error) {
	if state != stock.SaleHeld {
		return 0, errors.New("asked for " + string(state))
	}
	return f.n, f.err
}

// fakeJournal answers InsertSale with err.
type fakeJournal struct {
	stock.Journal
	err error
}

func (f fakeJournal) InsertSale(context.Context, stock.Sale) error { return f.err }
func (f fakeJournal) InsertDoubleSale(context.Context, stock.Sale, *stock.Sale) error {
	return f.err
}

// The series the README's alerts watch with increase() are there, at 0,
// before anything happened: otherwise the first failure after a restart
// would make its series appear at 1, and increase() would not see it.
func TestAlertSeriesExistFromTheStart(t *testing.T) {
	m := New()
	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want []string
	}{
		{"webhook requests", m.webhookRequests, []string{"failed 409", "failed 500", "failed 503", "invalid_metadata 200"}},
		{"sanity requests", m.sanityRequests, []string{"doc 4xx", "query 4xx", "mutate 4xx"}},
		{"fulfil requests", m.fulfilRequests, []string{"sold 200", "held 200"}},
	} {
		got := map[string]float64{}
		ch := make(chan prometheus.Metric, 64)
		c.c.Collect(ch)
		close(ch)
		for metric := range ch {
			var pb dto.Metric
			if err := metric.Write(&pb); err != nil {
				t.Fatal(err)
			}
			var labels []string
			for _, l := range pb.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			got[strings.Join(labels, " ")] = pb.GetCounter().GetValue()
		}
		for _, w := range c.want {
			if v, ok := got[w]; !ok || v != 0 {
				t.Errorf("%s: series %q is %v (present %v), want present at 0; have %v", c.name, w, v, ok, got)
			}
		}
	}
}

// The event histogram resolves where it matters: the README's slow-events
// alert (p99 over 6 s), the default budget, and the longest budget soldout
// accepts (60 s) must each fall on a bucket bound, not inside one bucket that
// histogram_quantile can only interpolate.
func TestEventBucketsResolveTheBudget(t *testing.T) {
	const alertThreshold, maxBudget = 6.0, 60.0
	m := New()
	m.ObserveEvent("webhook", 7*time.Second)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var bounds []float64
	for _, f := range families {
		if f.GetName() == "soldout_event_processing_duration_seconds" {
			for _, b := range f.GetMetric()[0].GetHistogram().GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
			}
		}
	}
	for _, bound := range []float64{alertThreshold, httpapi.DefaultBudget.Seconds(), maxBudget} {
		if !slices.Contains(bounds, bound) {
			t.Errorf("no bucket bound at %v s in %v", bound, bounds)
		}
	}
}

// A reservation the pipeline fails to end is a journal error like the
// others; the storefront's own calls pass through untouched.
func TestReservations(t *testing.T) {
	down := stock.Wrap(stock.Unavailable, errors.New("disk I/O error"), "journal: end reservation")
	m := New()
	r := m.Reservations(fakeReservations{err: down})
	if _, _, err := r.EndReservation(context.Background(), "cs_1", stock.ReservationConverted, time.Now()); !errors.Is(err, down) {
		t.Fatalf("error %v not passed through", err)
	}
	if got := testutil.ToFloat64(m.journalErrors.WithLabelValues("end_reservation")); got != 1 {
		t.Errorf("journal errors %v, want 1", got)
	}
	if _, err := r.Reservation(context.Background(), "a1"); !errors.Is(err, down) {
		t.Errorf("the storefront's call: %v, want its own answer", err)
	}
}

type fakeReservations struct {
	stock.Reservations
	err error
}

func (f fakeReservations) EndReservation(context.Context, string, stock.ReservationState, time.Time) (stock.Reservation, bool, error) {
	return stock.Reservation{}, false, f.err
}

func (f fakeReservations) Reservation(context.Context, string) (*stock.Reservation, error) {
	return nil, f.err
}
