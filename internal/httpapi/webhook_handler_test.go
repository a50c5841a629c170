package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"soldout/internal/httpapi"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// webhookRequest is Stripe's delivery of a completed, paid checkout of
// artwork, signed with newFulfilEnv's secret.
func webhookRequest(eventID, artwork string) *http.Request {
	body := stripehook.Sample{EventID: eventID, Type: stock.CheckoutCompleted, SessionID: "cs_test_" + eventID,
		ArtworkIDs: []string{artwork}, Email: "buyer@example.com", AmountTotal: 90000}.JSON()
	req := httptest.NewRequest(http.MethodPost, "/api/webhook", strings.NewReader(string(body)))
	req.Header.Set("Stripe-Signature", stripehook.Sign(body, fulfilSecret, time.Now()))
	return req
}

// wantSold checks that a webhook's answer, the dataset and the journal all
// say that eventID sold artwork.
func (e *fulfilEnv) wantSold(t *testing.T, rec *httptest.ResponseRecorder, eventID, artwork string) {
	t.Helper()
	var ans struct {
		Outcome string `json:"outcome"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &ans) != nil || ans.Outcome != string(stock.OutcomeSold) {
		t.Errorf("answer %d %s, want 200 sold", rec.Code, rec.Body)
	}
	if got := e.available(artwork); got != false {
		t.Errorf("%s isAvailable = %v, want false", artwork, got)
	}
	if ev, err := e.journal.Event(context.Background(), eventID); err != nil || ev.Outcome != stock.OutcomeSold {
		t.Errorf("journaled %s: outcome %q (%s), %v; want sold", eventID, ev.Outcome, ev.LastError, err)
	}
}

// wrapCatalog rebuilds the server on a fulfiller whose catalog is wrap of
// the current one.
func (e *fulfilEnv) wrapCatalog(wrap func(stock.Catalog) stock.Catalog) {
	f := e.cfg.Fulfiller
	e.cfg.Fulfiller = &stock.Fulfiller{Catalog: wrap(f.Catalog), Journal: f.Journal, Logger: f.Logger, Owner: f.Owner}
	e.h = httpapi.NewServer(e.cfg)
}

// A client announcing a huge body and sending a small one gets no buffer
// of the announced size: no memory is held for bytes that never come, and
// what did come is read and refused like any unsigned request.
func TestWebhookAnnouncedLengthIsNotAllocated(t *testing.T) {
	e := newFulfilEnv(t, false, nil)
	post := func(announced int64) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/webhook", strings.NewReader(`{"id":"evt_1","object":"event"}`))
		req.ContentLength = announced
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		return rec
	}
	post(-1) // the first request's one-time allocations are not this test's
	// Far over the largest body read, yet small enough for the runtime to
	// hand out if the handler asked: a mistake fails here, not in a crash.
	const announced = 256 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rec := post(announced)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > httpapi.MaxBodyBytes {
		t.Errorf("an unsigned request announcing %d bytes made the handler allocate %d bytes, more than the largest body it reads", int64(announced), n)
	}
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"code":"`+stripehook.ReasonMissing+`"`) {
		t.Errorf("answer %d %s, want 400 %s", rec.Code, rec.Body, stripehook.ReasonMissing)
	}
	if n := e.obs.count("signature " + stripehook.ReasonMissing); n != 2 {
		t.Errorf("signature failures observed: %d, want 2", n)
	}
}

// slowSanity is a catalog whose first write waits until released. Like an
// HTTP request in flight, it fails at once if its context ends meanwhile.
type slowSanity struct {
	stock.Catalog
	entered, released chan struct{} // closed when the write starts, and to let it go on
	enter, release    sync.Once
}

func newSlowSanity() *slowSanity {
	return &slowSanity{entered: make(chan struct{}), released: make(chan struct{})}
}

func (s *slowSanity) let() { s.release.Do(func() { close(s.released) }) }

func (s *slowSanity) SetAvailable(ctx context.Context, txID string, available bool, variants []stock.Variant) error {
	s.enter.Do(func() { close(s.entered) })
	select {
	case <-s.released:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Catalog.SetAvailable(ctx, txID, available, variants)
}

// Stripe (or `stripe listen`) hanging up while the sale is being written
// to Sanity does not stop it halfway: the sale is applied and journaled,
// as Stripe's retry would find it.
func TestWebhookFinishesAfterTheSenderHangsUp(t *testing.T) {
	e := newFulfilEnv(t, false, nil)
	e.artwork("art-1")
	slow := newSlowSanity()
	t.Cleanup(slow.let)
	e.wrapCatalog(func(c stock.Catalog) stock.Catalog { slow.Catalog = c; return slow })

	ctx, hangUp := context.WithCancel(context.Background())
	defer hangUp()
	req := webhookRequest("evt_hangup", "art-1").WithContext(ctx)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.h.ServeHTTP(rec, req)
	}()
	select {
	case <-slow.entered:
	case <-done:
		t.Fatalf("answered %d %s without writing to Sanity", rec.Code, rec.Body)
	}
	hangUp()
	slow.let()
	<-done
	e.wantSold(t, rec, "evt_hangup", "art-1")
}

// deadlineProbe is a catalog that keeps the deadline of every call's
// context (zero: none).
type deadlineProbe struct {
	stock.Catalog
	mu   sync.Mutex
	seen []time.Time
}

func (p *deadlineProbe) note(ctx context.Context) {
	d, _ := ctx.Deadline()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, d)
}

func (p *deadlineProbe) deadlines() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.seen...)
}

func (p *deadlineProbe) Artwork(ctx context.Context, id string) (stock.Artwork, error) {
	p.note(ctx)
	return p.Catalog.Artwork(ctx, id)
}

func (p *deadlineProbe) Draft(ctx context.Context, id string) (*stock.Variant, error) {
	p.note(ctx)
	return p.Catalog.Draft(ctx, id)
}

func (p *deadlineProbe) SetAvailable(ctx context.Context, txID string, available bool, variants []stock.Variant) error {
	p.note(ctx)
	return p.Catalog.SetAvailable(ctx, txID, available, variants)
}

// The pipeline's work must end before the webhook's budget does, with a
// margin to record the outcome and answer: a Sanity call may not run until
// the moment Stripe (or Checkout's redirect) stops waiting.
func TestWebhookDeadlineLeavesAMargin(t *testing.T) {
	const budget = 4 * time.Second
	e := newFulfilEnv(t, false, nil)
	e.cfg.Budget = budget
	e.artwork("art-1")
	probe := &deadlineProbe{}
	e.wrapCatalog(func(c stock.Catalog) stock.Catalog { probe.Catalog = c; return probe })

	start := time.Now()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, webhookRequest("evt_budget", "art-1"))
	e.wantSold(t, rec, "evt_budget", "art-1")
	deadlines := probe.deadlines()
	if len(deadlines) == 0 {
		t.Fatal("the sale made no Sanity call")
	}
	end := start.Add(budget)
	for i, d := range deadlines {
		switch {
		case d.IsZero():
			t.Errorf("Sanity call %d has no deadline", i+1)
		case end.Sub(d) < budget/8:
			t.Errorf("Sanity call %d's deadline leaves %s of the %s budget; want at least %s to record the outcome and answer",
				i+1, end.Sub(d), budget, budget/8)
		case d.Sub(start) < budget/2:
			t.Errorf("Sanity call %d has only %s of the %s budget", i+1, d.Sub(start), budget)
		}
	}
}
