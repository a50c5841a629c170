// Package metrics owns every Prometheus collector soldout exports, on a
// registry of its own (not the global one, so that tests can build several),
// and the small methods the other layers call. Every name starts with
// soldout_; counters end in _total and durations in _seconds.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"soldout/internal/sanity"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// SaleCounter counts the journal's sales in one state (*journal.DB does).
type SaleCounter interface {
	CountSales(ctx context.Context, state stock.SaleState) (int, error)
}

// Metrics is soldout's set of collectors. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	webhookRequests   *prometheus.CounterVec
	signatureFailures *prometheus.CounterVec
	eventDuration     *prometheus.HistogramVec
	fulfilRequests    *prometheus.CounterVec
	sanityRequests    *prometheus.CounterVec
	sanityDuration    *prometheus.HistogramVec
	sanityRetries     *prometheus.CounterVec
	sanityLastOK      prometheus.Gauge
	doubleSales       prometheus.Counter
	journalErrors     *prometheus.CounterVec
}

// failedStatuses are the answers to an event the pipeline could not apply:
// Sanity refused the write with a conflict (409), a person is needed (500),
// Sanity or the journal is unavailable for now (503). The webhook calls no
// Stripe API, so it never answers 502.
var failedStatuses = []int{http.StatusConflict, http.StatusInternalServerError, http.StatusServiceUnavailable}

// countTimeout bounds the journal query a scrape makes.
const countTimeout = 2 * time.Second

// eventBuckets resolve the seconds around the webhook's budget (8 s by
// default, SOLDOUT_TIME_BUDGET up to a minute), where the slow-events
// alert's threshold lies: DefBuckets jump from 5 s to 10 s and stop there.
var eventBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 4, 6, 8, 10, 15, 30, 60}

// New builds the collectors, the Go runtime's and the process's included.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		webhookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soldout_webhook_requests_total",
			Help: "Webhook requests by the event's outcome (\"rejected\" when none reached the pipeline, \"failed\" when it was not applied) and the status answered.",
		}, []string{"outcome", "status"}),
		signatureFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soldout_webhook_signature_failures_total",
			Help: "Webhook requests refused for their Stripe-Signature, by reason.",
		}, []string{"reason"}),
		eventDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "soldout_event_processing_duration_seconds",
			Help:    "Time spent in the fulfil pipeline per event, by source (webhook or fulfil, the success page).",
			Buckets: eventBuckets,
		}, []string{"source"}),
		fulfilRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soldout_fulfil_requests_total",
			Help: "POST /api/fulfil requests by outcome and status answered.",
		}, []string{"outcome", "status"}),
		sanityRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soldout_sanity_requests_total",
			Help: "HTTP attempts to Sanity by endpoint (doc, query, mutate) and result (ok, 4xx, 409, 429, 5xx, network, bad_response).",
		}, []string{"endpoint", "result"}),
		sanityDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "soldout_sanity_request_duration_seconds",
			Help:    "Duration of one HTTP attempt to Sanity, by endpoint.",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
		sanityRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soldout_sanity_retries_total",
			Help: "Retries of Sanity requests scheduled after a 429, 5xx, commit conflict or network error, by endpoint.",
		}, []string{"endpoint"}),
		sanityLastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "soldout_sanity_last_success_timestamp_seconds",
			Help: "Unix time of the last successful Sanity request; 0 until the first.",
		}),
		doubleSales: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "soldout_double_sales_total",
			Help: "Double sales recorded: a buyer paid for an artwork another session had taken. Each needs a refund decision.",
		}),
		journalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soldout_journal_errors_total",
			Help: "Journal calls of the fulfil pipeline that failed (not counting lost races, which are normal, nor calls whose request had already run out of time), by operation.",
		}, []string{"op"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.webhookRequests, m.signatureFailures, m.eventDuration, m.fulfilRequests,
		m.sanityRequests, m.sanityDuration, m.sanityRetries, m.sanityLastOK,
		m.doubleSales, m.journalErrors,
	)
	// Series that the README's alerts use with increase() exist from the
	// start, so that their first increment counts: increase() over a series
	// that appears at 1 is 0, and the first failure after a restart would
	// go unseen.
	for _, reason := range []string{stripehook.ReasonMissing, stripehook.ReasonMalformed, stripehook.ReasonStale, stripehook.ReasonNoMatch} {
		m.signatureFailures.WithLabelValues(reason)
	}
	for _, op := range journalOps {
		m.journalErrors.WithLabelValues(op)
	}
	for _, status := range failedStatuses {
		m.webhookRequests.WithLabelValues(string(stock.OutcomeFailed), strconv.Itoa(status))
	}
	m.webhookRequests.WithLabelValues(string(stock.OutcomeInvalidMetadata), strconv.Itoa(http.StatusOK))
	for _, endpoint := range sanity.Endpoints {
		m.sanityRequests.WithLabelValues(endpoint, "4xx")
	}
	for _, outcome := range []stock.Outcome{stock.OutcomeSold, stock.OutcomeHeld} {
		m.fulfilRequests.WithLabelValues(string(outcome), strconv.Itoa(http.StatusOK))
	}
	return m
}

// WatchHeld adds the held-artworks gauge, which asks sales at every scrape.
// It is separate from New because the journal opens after the Sanity client,
// which needs the metrics already.
func (m *Metrics) WatchHeld(sales SaleCounter) {
	m.reg.MustRegister(heldCollector{sales})
}

// Handler serves the metrics in Prometheus' text format. A failed journal
// count drops only the held-artworks gauge from the scrape (and is logged),
// not every metric.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
		// Concurrent scrapers share one collection, so the journal sees one
		// count however many Prometheus servers scrape.
		CoalesceGather:      true,
		MaxRequestsInFlight: 4,
	})
}

// ObserveWebhook counts one webhook request.
func (m *Metrics) ObserveWebhook(outcome string, status int) {
	m.webhookRequests.WithLabelValues(outcome, strconv.Itoa(status)).Inc()
}

// SignatureFailure counts a webhook refused for its signature.
func (m *Metrics) SignatureFailure(reason string) {
	m.signatureFailures.WithLabelValues(reason).Inc()
}

// ObserveEvent records one run of the fulfil pipeline.
func (m *Metrics) ObserveEvent(source string, d time.Duration) {
	m.eventDuration.WithLabelValues(source).Observe(d.Seconds())
}

// ObserveFulfil counts one POST /api/fulfil request.
func (m *Metrics) ObserveFulfil(outcome string, status int) {
	m.fulfilRequests.WithLabelValues(outcome, strconv.Itoa(status)).Inc()
}

// SanityRequest has the signature of sanity.Config.Observe: result "retry"
// reports a scheduled retry (d is its backoff), any other an attempt made.
func (m *Metrics) SanityRequest(endpoint, result string, d time.Duration) {
	if result == "retry" {
		m.sanityRetries.WithLabelValues(endpoint).Inc()
		return
	}
	m.sanityRequests.WithLabelValues(endpoint, result).Inc()
	m.sanityDuration.WithLabelValues(endpoint).Observe(d.Seconds())
	if result == "ok" {
		m.sanityLastOK.SetToCurrentTime()
	}
}

// DoubleSale counts a recorded double sale.
func (m *Metrics) DoubleSale() { m.doubleSales.Inc() }

// journalError counts a failed journal call of operation op.
func (m *Metrics) journalError(op string) { m.journalErrors.WithLabelValues(op).Inc() }

// heldCollector asks the journal, at each scrape, how many artworks are held
// for a delayed payment. A gauge computed from the journal is right across
// restarts and replicas, where a process's own count would not be.
type heldCollector struct{ sales SaleCounter }

var heldDesc = prometheus.NewDesc("soldout_held_artworks",
	"Artworks held for a buyer whose delayed payment (SEPA, bank transfer) has not arrived yet, from the journal.", nil, nil)

func (c heldCollector) Describe(ch chan<- *prometheus.Desc) { ch <- heldDesc }

func (c heldCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
	defer cancel()
	n, err := c.sales.CountSales(ctx, stock.SaleHeld)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(heldDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(n))
}
