package stock_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"soldout/internal/journal"
	"soldout/internal/sanity"
	"soldout/internal/sanity/memlake"
	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

const (
	dataset = "production"
	token   = "test-token"
)

// env is one shop: an in-memory dataset behind real HTTP, a real SQLite
// journal, and the real Sanity client. Fulfillers made from it share the
// journal and the dataset, like replicas do.
type env struct {
	t       *testing.T
	lake    *memlake.Lake
	journal *journal.DB
	srv     *httptest.Server
	// requests counts every HTTP request that reached the dataset.
	requests atomic.Int64
	// handler, when set, serves in place of the lake (fault injection).
	handler http.Handler
	mu      sync.Mutex
	now     time.Time
	logs    syncBuffer // every fulfiller's log lines, as text
}

// syncBuffer is a bytes.Buffer that fulfillers may write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the log lines written so far at level that contain text.
func (b *syncBuffer) lines(level slog.Level, text string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var found []string
	for line := range strings.Lines(b.buf.String()) {
		if strings.Contains(line, "level="+level.String()) && strings.Contains(line, text) {
			found = append(found, line)
		}
	}
	return found
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, lake: memlake.New(dataset, token), now: time.Now()}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.requests.Add(1)
		e.mu.Lock()
		h := e.handler
		e.mu.Unlock()
		if h == nil {
			h = e.lake
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	db, err := journal.Open(context.Background(), filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.journal = db
	return e
}

func (e *env) setHandler(h http.Handler) {
	e.mu.Lock()
	e.handler = h
	e.mu.Unlock()
}

// around serves the lake, calling before and after each request.
func (e *env) around(before, after func(*http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if before != nil {
			before(r)
		}
		e.lake.ServeHTTP(w, r)
		if after != nil {
			after(r)
		}
	})
}

// clock lets a test move time forward past a lease.
func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *env) catalog(tok string) *sanity.Client {
	c, err := sanity.New(sanity.Config{ProjectID: "test", Dataset: dataset, Token: tok, Host: e.srv.URL, MutationsPerSecond: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// fulfiller is one "process".
func (e *env) fulfiller(owner string) *stock.Fulfiller {
	return e.fulfillerWith(owner, e.catalog(token), e.journal)
}

func (e *env) fulfillerWith(owner string, c stock.Catalog, j stock.Journal) *stock.Fulfiller {
	return &stock.Fulfiller{Catalog: c, Journal: j, Logger: slog.New(slog.NewTextHandler(&e.logs, nil)), Owner: owner, Now: e.clock}
}

func (e *env) artwork(id string, extra ...map[string]any) {
	doc := map[string]any{"_id": id, "_type": "artwork", "title": id, "isAvailable": true}
	for _, m := range extra {
		for k, v := range m {
			doc[k] = v
		}
	}
	e.lake.Put(doc)
}

// available returns isAvailable of a stored document ("missing" if absent).
func (e *env) available(id string) string {
	d, ok := e.lake.Get(id)
	if !ok {
		return "missing"
	}
	return fmt.Sprint(d["isAvailable"])
}

func (e *env) rev(id string) string {
	d, _ := e.lake.Get(id)
	s, _ := d["_rev"].(string)
	return s
}

func event(id, typ, session, payment string, artworks ...string) stock.Event {
	body := stripehook.Sample{EventID: id, Type: typ, SessionID: session, PaymentStatus: payment, ArtworkIDs: artworks,
		Email: session + "@example.com", AmountTotal: 100000}.JSON()
	ev, err := stripehook.Decode(body)
	if err != nil {
		panic(err)
	}
	return ev
}

func paid(id, session string, artworks ...string) stock.Event {
	return event(id, stock.CheckoutCompleted, session, stock.PaymentPaid, artworks...)
}

func (e *env) handle(f *stock.Fulfiller, ev stock.Event) (stock.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f.Handle(ctx, ev)
}

func (e *env) mustHandle(f *stock.Fulfiller, ev stock.Event, want stock.Outcome) stock.Result {
	e.t.Helper()
	res, err := e.handle(f, ev)
	if err != nil {
		e.t.Fatalf("%s: %v", ev.ID, err)
	}
	if res.Outcome != want {
		e.t.Fatalf("%s: outcome %s, want %s (%+v)", ev.ID, res.Outcome, want, res.Artworks)
	}
	return res
}

func (e *env) sale(artwork, session string) stock.Sale {
	e.t.Helper()
	sales, err := e.journal.Sales(context.Background(), artwork)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range sales {
		if s.SessionID == session {
			return s
		}
	}
	return stock.Sale{}
}

// flips counts committed writes that set the published document of id to
// isAvailable false.
func (e *env) flips(id string) int {
	n := 0
	for _, tx := range e.lake.Transactions() {
		for _, c := range tx.Changes {
			if c.ID == id && c.Before != nil && c.Before["isAvailable"] != false && c.After != nil && c.After["isAvailable"] == false {
				n++
			}
		}
	}
	return n
}

func TestSaleMarksEveryVariantUnavailable(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	e.artwork("drafts.a1")
	e.artwork("versions.rSpring.a1")
	e.artwork("a2") // untouched
	f := e.fulfiller("p1")
	e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
	for _, id := range []string{"a1", "drafts.a1", "versions.rSpring.a1"} {
		if got := e.available(id); got != "false" {
			t.Errorf("%s isAvailable = %s", id, got)
		}
	}
	if e.available("a2") != "true" {
		t.Error("an unrelated artwork changed")
	}
	if n := len(e.lake.Transactions()); n != 1 {
		t.Errorf("%d transactions, want 1 atomic one", n)
	}
	s := e.sale("a1", "cs_1")
	if s.State != stock.SaleSold || s.AppliedRev != e.rev("a1") || s.Email != "cs_1@example.com" || s.Amount != 100000 {
		t.Errorf("journal sale = %+v", s)
	}
	rec, err := e.journal.Event(context.Background(), "evt_1")
	if err != nil || rec.Outcome != stock.OutcomeSold || rec.Attempts != 1 || len(rec.Payload) == 0 {
		t.Errorf("journal event = %+v, %v", rec, err)
	}
}

// TestASaleCostsFourSanityRequests: the read (the published document and
// its draft from the doc endpoint, with the release versions queried
// alongside), the one write of every version on sale, and the draft read
// again after it. The drafts are never found by query: queries run on
// Sanity's search store, which lags its documents. For the same reason a
// release version that the query lists is read from the doc endpoint,
// one request more.
func TestASaleCostsFourSanityRequests(t *testing.T) {
	const common = "GET doc a1,drafts.a1, GET query production, POST mutate production, GET doc drafts.a1"
	for _, tt := range []struct {
		name     string
		others   []string
		requests string
	}{
		{"published only", nil, common},
		{"with draft", []string{"drafts.a1"}, common},
		{"with draft and release version", []string{"drafts.a1", "versions.r1.a1"},
			"GET doc a1,drafts.a1, GET query production, GET doc versions.r1.a1, POST mutate production, GET doc drafts.a1"},
	} {
		others := tt.others
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			for _, id := range others {
				e.artwork(id)
			}
			var mu sync.Mutex
			var seen []string
			e.setHandler(e.around(func(r *http.Request) {
				mu.Lock()
				seen = append(seen, r.Method+" "+strings.SplitN(r.URL.Path, "/", 5)[3]+" "+path.Base(r.URL.Path))
				mu.Unlock()
			}, nil))
			e.mustHandle(e.fulfiller("p1"), paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
			if len(seen) > 1 {
				slices.Sort(seen[:2]) // sent concurrently
			}
			if got := strings.Join(seen, ", "); got != tt.requests {
				t.Errorf("requests: %v", got)
			}
			for _, id := range append(others, "a1") {
				if e.available(id) != "false" {
					t.Errorf("%s left available", id)
				}
			}
			if n := len(e.lake.Transactions()); n != 1 {
				t.Errorf("%d transactions, want the one atomic write", n)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	f := e.fulfiller("p1")
	e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
	before := e.requests.Load()
	e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeDuplicate)
	if e.requests.Load() != before {
		t.Error("a redelivered event reached Sanity")
	}
	// Stripe sometimes makes two events for one change: same session, new id.
	e.mustHandle(f, paid("evt_1b", "cs_1", "a1"), stock.OutcomeDuplicate)
	if e.flips("a1") != 1 {
		t.Errorf("flips = %d", e.flips("a1"))
	}
}

func TestConcurrentDuplicateDeliveries(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	// Two processes, each receiving the event ten times at once.
	fs := []*stock.Fulfiller{e.fulfiller("p1"), e.fulfiller("p2")}
	var wg sync.WaitGroup
	var failures, sold atomic.Int64
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.handle(fs[i%2], paid("evt_1", "cs_1", "a1"))
			switch {
			case err != nil:
				if !errors.Is(err, stock.ErrBusy) {
					t.Errorf("unexpected error: %v", err)
				}
				failures.Add(1) // Stripe would retry
			case res.Outcome == stock.OutcomeSold:
				sold.Add(1)
			case res.Outcome != stock.OutcomeDuplicate:
				t.Errorf("outcome %s", res.Outcome)
			}
		}()
	}
	wg.Wait()
	if e.flips("a1") != 1 || e.available("a1") != "false" {
		t.Fatalf("flips = %d, available = %s", e.flips("a1"), e.available("a1"))
	}
	if sold.Load() > 1 {
		t.Errorf("%d deliveries reported sold", sold.Load())
	}
	if sold.Load() == 0 {
		e.mustHandle(fs[0], paid("evt_1", "cs_1", "a1"), stock.OutcomeDuplicate)
	}
}

func TestTwoBuyersRace(t *testing.T) {
	for _, replicas := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d processes", replicas), func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			fs := []*stock.Fulfiller{e.fulfiller("p1"), e.fulfiller("p2")}
			outcomes := make([]stock.Outcome, 8)
			var wg sync.WaitGroup
			for i := range outcomes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := e.handle(fs[i%replicas], paid(fmt.Sprintf("evt_%d", i), fmt.Sprintf("cs_%d", i), "a1"))
					if err != nil {
						t.Errorf("buyer %d: %v", i, err)
					}
					outcomes[i] = res.Outcome
				}()
			}
			wg.Wait()
			var sold, double int
			for _, o := range outcomes {
				switch o {
				case stock.OutcomeSold:
					sold++
				case stock.OutcomeDoubleSale:
					double++
				}
			}
			if sold != 1 || double != len(outcomes)-1 {
				t.Fatalf("outcomes %v", outcomes)
			}
			if e.flips("a1") != 1 {
				t.Fatalf("%d flipping writes", e.flips("a1"))
			}
			doubles, err := e.journal.ListSales(context.Background(), journal.SaleFilter{State: stock.SaleDoubleSale})
			if err != nil || len(doubles) != len(outcomes)-1 {
				t.Fatalf("double sales journaled: %d, %v", len(doubles), err)
			}
		})
	}
}

func TestDelayedPayments(t *testing.T) {
	t.Run("held then paid", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		if e.available("a1") != "false" || e.sale("a1", "cs_1").State != stock.SaleHeld {
			t.Fatal("not held")
		}
		e.mustHandle(f, event("evt_2", stock.CheckoutAsyncSucceeded, "cs_1", "", "a1"), stock.OutcomeSold)
		if e.sale("a1", "cs_1").State != stock.SaleSold || e.flips("a1") != 1 {
			t.Fatalf("sale %+v, flips %d", e.sale("a1", "cs_1"), e.flips("a1"))
		}
	})
	t.Run("held then failed: released", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		e.artwork("drafts.a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		e.mustHandle(f, event("evt_2", stock.CheckoutAsyncFailed, "cs_1", "", "a1"), stock.OutcomeReleased)
		if e.available("a1") != "true" || e.available("drafts.a1") != "true" {
			t.Fatalf("not released: %s / %s", e.available("a1"), e.available("drafts.a1"))
		}
		if e.sale("a1", "cs_1").State != stock.SaleReleased {
			t.Fatal("journal not released")
		}
		// The piece can be sold again.
		e.mustHandle(f, paid("evt_3", "cs_2", "a1"), stock.OutcomeSold)
	})
	t.Run("held, changed by an editor, then failed: left alone", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		e.artwork("a1", map[string]any{"isAvailable": false, "title": "edited"})
		e.mustHandle(f, event("evt_2", stock.CheckoutAsyncFailed, "cs_1", "", "a1"), stock.OutcomeReleaseSkipped)
		if e.available("a1") != "false" {
			t.Fatal("soldout overwrote an editor's change")
		}
	})
	t.Run("withdrawn by an editor while being held, then failed: left alone", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		var once sync.Once
		e.setHandler(e.around(func(r *http.Request) {
			if sanitytest.IsMutate(r) {
				once.Do(func() { e.artwork("a1", map[string]any{"isAvailable": false}) })
			}
		}, nil))
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		e.setHandler(nil)
		e.mustHandle(f, event("evt_2", stock.CheckoutAsyncFailed, "cs_1", "", "a1"), stock.OutcomeReleaseSkipped)
		if e.available("a1") != "false" {
			t.Fatal("soldout undid a withdrawal it did not make")
		}
	})
	t.Run("held, a paying buyer's double sale, then failed: not re-offered", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		e.mustHandle(f, paid("evt_2", "cs_B", "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, event("evt_3", stock.CheckoutAsyncFailed, "cs_A", "", "a1"), stock.OutcomeReleaseSkipped)
		if e.available("a1") != "false" {
			t.Fatal("the piece was put back on sale while a buyer who paid for it waits")
		}
		if s := e.sale("a1", "cs_A"); s.State != stock.SaleReleased {
			t.Errorf("held sale %+v", s)
		}
		if s := e.sale("a1", "cs_B"); s.State != stock.SaleDoubleSale {
			t.Errorf("waiting buyer %+v", s)
		}
	})
	t.Run("a pending buyer's double sale: told apart from a paid one until the payment succeeds", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, paid("evt_1", "cs_A", "a1"), stock.OutcomeSold)
		e.mustHandle(f, event("evt_2", stock.CheckoutCompleted, "cs_B", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
		if got := e.logs.lines(slog.LevelError, "cs_B"); len(got) != 1 || !strings.Contains(got[0], "pending") || strings.Contains(got[0], "refund one buyer;") {
			t.Fatalf("an unpaid double sale must say the payment is pending, not ask for a refund yet: %q", got)
		}
		e.mustHandle(f, event("evt_3", stock.CheckoutAsyncSucceeded, "cs_B", "", "a1"), stock.OutcomeDoubleSale)
		if got := e.logs.lines(slog.LevelError, "evt_3"); len(got) != 1 || !strings.Contains(got[0], "refund") {
			t.Fatalf("the pending buyer's payment succeeded: an operator must be told to refund, got %q", got)
		}
	})
	t.Run("held, a pending buyer's double sale, then failed: not said to have paid", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_A", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		e.mustHandle(f, event("evt_2", stock.CheckoutCompleted, "cs_B", stock.PaymentUnpaid, "a1"), stock.OutcomeDoubleSale)
		e.mustHandle(f, event("evt_3", stock.CheckoutAsyncFailed, "cs_A", "", "a1"), stock.OutcomeReleaseSkipped)
		if got := e.logs.lines(slog.LevelError, "evt_3"); len(got) != 1 || strings.Contains(got[0], "paid for") {
			t.Fatalf("the waiting buyer has not paid yet: %q", got)
		}
		e.mustHandle(f, event("evt_4", stock.CheckoutAsyncFailed, "cs_B", "", "a1"), stock.OutcomeReleased)
		if got := e.logs.lines(slog.LevelWarn, "evt_4"); len(got) != 1 || !strings.Contains(got[0], "nobody holds") {
			t.Fatalf("the piece is left unavailable for nobody: an operator must hear of it, got %q", got)
		}
	})
	t.Run("held, failed, the journal's write lost: released on redelivery", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1"), stock.OutcomeHeld)
		failed := event("evt_2", stock.CheckoutAsyncFailed, "cs_1", "", "a1")
		if _, err := e.handle(e.fulfillerWith("p1", e.catalog(token), crashJournal{e.journal, "FinishEvent"}), failed); err == nil {
			t.Fatal("the crash did not surface")
		}
		if e.available("a1") != "true" {
			t.Fatal("Sanity was not released before the crash")
		}
		// Sanity holds soldout's own release: not an editor's change.
		e.mustHandle(f, failed, stock.OutcomeReleased)
		if s := e.sale("a1", "cs_1"); s.State != stock.SaleReleased {
			t.Fatalf("sale %+v", s)
		}
	})
	t.Run("held, the journal's write lost, then failed first: released", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		e.artwork("drafts.a1")
		f := e.fulfiller("p1")
		completed := event("evt_1", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1")
		if _, err := e.handle(e.fulfillerWith("p1", e.catalog(token), crashJournal{e.journal, "FinishEvent"}), completed); err == nil {
			t.Fatal("the crash did not surface")
		}
		if e.available("a1") != "false" || e.available("drafts.a1") != "false" {
			t.Fatal("Sanity was not written before the crash")
		}
		// Stripe does not keep order: the failure comes before the redelivery.
		e.mustHandle(f, event("evt_2", stock.CheckoutAsyncFailed, "cs_1", "", "a1"), stock.OutcomeReleased)
		if e.available("a1") != "true" || e.available("drafts.a1") != "true" {
			t.Fatalf("soldout's own hold was not undone: %s / %s", e.available("a1"), e.available("drafts.a1"))
		}
		if len(e.logs.lines(slog.LevelWarn, "evt_2")) != 0 {
			t.Errorf("a misleading warning: %q", e.logs.lines(slog.LevelWarn, "evt_2"))
		}
		e.mustHandle(f, completed, stock.OutcomeIgnored)
	})
	t.Run("failure overtakes the completion", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, event("evt_2", stock.CheckoutAsyncFailed, "cs_1", "", "a1"), stock.OutcomeReleased)
		e.mustHandle(f, event("evt_1", stock.CheckoutCompleted, "cs_1", stock.PaymentUnpaid, "a1"), stock.OutcomeIgnored)
		if e.available("a1") != "true" {
			t.Fatal("a failed payment still holds the artwork")
		}
	})
	t.Run("failed for another session's piece: untouched", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfiller("p1")
		e.mustHandle(f, paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
		e.mustHandle(f, event("evt_2", stock.CheckoutAsyncFailed, "cs_2", "", "a1"), stock.OutcomeReleased)
		if e.available("a1") != "false" {
			t.Fatal("another session's failure released a sold piece")
		}
	})
}

// TestAlreadyUnavailableClosesItsDrafts: the published document was
// withdrawn by hand while its draft still offers the piece; a buyer pays
// anyway. Publishing that draft would sell the piece to a second buyer.
func TestAlreadyUnavailableClosesItsDrafts(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1", map[string]any{"isAvailable": false})
	e.artwork("drafts.a1")
	e.mustHandle(e.fulfiller("p1"), paid("evt_1", "cs_1", "a1"), stock.OutcomeAlreadyUnavailable)
	if e.available("drafts.a1") != "false" {
		t.Error("the draft still offers a piece somebody paid for")
	}
}

func TestIgnoredAndRefused(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	e.artwork("gone", map[string]any{"isAvailable": false})
	f := e.fulfiller("p1")
	tests := []struct {
		name string
		ev   stock.Event
		want stock.Outcome
	}{
		{"other type", event("evt_o", "payment_intent.succeeded", "", ""), stock.OutcomeIgnored},
		{"expired", event("evt_x", stock.CheckoutExpired, "cs_x", "", "a1"), stock.OutcomeIgnored},
		// A sale that names no piece leaves it for sale: a person must look.
		{"no metadata", paid("evt_n", "cs_n"), stock.OutcomeInvalidMetadata},
		{"no metadata, a failed delayed payment", event("evt_nf", stock.CheckoutAsyncFailed, "cs_nf", ""), stock.OutcomeIgnored},
		{"already unavailable by hand", paid("evt_g", "cs_g", "gone"), stock.OutcomeAlreadyUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.mustHandle(f, tt.ev, tt.want)
		})
	}
	if e.available("a1") != "true" || len(e.lake.Transactions()) != 0 {
		t.Fatal("an ignored event wrote to Sanity")
	}
	if got := e.logs.lines(slog.LevelError, "evt_n"); len(got) != 1 || !strings.Contains(got[0], "metadata.artworkId") {
		t.Errorf("a sale naming no artwork is not logged at ERROR with the fix: %q", got)
	}
}

func TestHostileArtworkIDsNeverReachSanity(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	e.artwork("drafts.a1")
	f := e.fulfiller("p1")
	for i, id := range []string{"a1,drafts.a1", "a1/../x", `a1"`, "drafts.a1", "versions.r1.a1", strings.Repeat("x", 5000), "a 1", "a1?x=1", "%2e"} {
		before := e.requests.Load()
		ev := event(fmt.Sprintf("evt_%d", i), stock.CheckoutCompleted, fmt.Sprintf("cs_%d", i), stock.PaymentPaid)
		ev.Session.ArtworkIDs = []string{id}
		e.mustHandle(f, ev, stock.OutcomeInvalidMetadata)
		if e.requests.Load() != before {
			t.Fatalf("id %.20q reached Sanity", id)
		}
	}
	if e.available("a1") != "true" || e.available("drafts.a1") != "true" {
		t.Fatal("a hostile id changed a document")
	}
}

func TestUnknownArtworkIsRetried(t *testing.T) {
	e := newEnv(t)
	f := e.fulfiller("p1")
	_, err := e.handle(f, paid("evt_1", "cs_1", "missing"))
	if stock.ErrorCode(err) != stock.Misconfigured {
		t.Fatalf("err = %v, want Misconfigured", err)
	}
	rec, _ := e.journal.Event(context.Background(), "evt_1")
	if rec.Outcome != stock.OutcomeFailed || rec.LastError == "" {
		t.Fatalf("journal: %+v", rec)
	}
	e.artwork("missing") // restored
	e.mustHandle(f, paid("evt_1", "cs_1", "missing"), stock.OutcomeSold)
}

func TestCartAppliesEveryPieceOrFails(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	e.artwork("a3")
	f := e.fulfiller("p1")
	ev := paid("evt_1", "cs_1", "a1", "a2", "a3")
	res, err := e.handle(f, ev)
	if err == nil {
		t.Fatal("a cart with a missing piece succeeded")
	}
	if e.available("a1") != "false" || e.available("a3") != "false" {
		t.Fatalf("the pieces that exist were not taken: %+v", res)
	}
	e.artwork("a2")
	res = e.mustHandle(f, ev, stock.OutcomeSold)
	want := "a1=duplicate a2=sold a3=duplicate"
	var got []string
	for _, a := range res.Artworks {
		got = append(got, a.ArtworkID+"="+string(a.Outcome))
	}
	if strings.Join(got, " ") != want {
		t.Fatalf("artworks %v, want %s", got, want)
	}
}

func TestEditorSavesBetweenReadAndWrite(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	var once sync.Once
	e.setHandler(e.around(func(r *http.Request) {
		if sanitytest.IsMutate(r) {
			once.Do(func() { e.artwork("a1", map[string]any{"title": "edited"}) })
		}
	}, nil))
	e.mustHandle(e.fulfiller("p1"), paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
	d, _ := e.lake.Get("a1")
	if d["isAvailable"] != false || d["title"] != "edited" {
		t.Fatalf("doc = %v", d)
	}
}

// TestDraftOpenedBetweenReadAndWriteIsPatched: an editor opened the artwork
// after soldout's read and before its write. The draft copies the old
// isAvailable: true and does not change a1's _rev, so the guarded write
// succeeds without it; the read after the write finds it.
func TestDraftOpenedBetweenReadAndWriteIsPatched(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	var once sync.Once
	e.setHandler(e.around(func(r *http.Request) {
		if sanitytest.IsMutate(r) {
			once.Do(func() { e.artwork("drafts.a1") })
		}
	}, nil))
	e.mustHandle(e.fulfiller("p1"), paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
	for _, id := range []string{"a1", "drafts.a1"} {
		if e.available(id) != "false" {
			t.Errorf("%s was left available", id)
		}
	}
	// Its transaction id names the sale as the take's does, so that a
	// release recognises the draft as soldout's to give back.
	sale := e.sale("a1", "cs_1")
	salePart := sale.AppliedRev[:strings.LastIndex(sale.AppliedRev, "-")+1]
	if rev := e.rev("drafts.a1"); rev == sale.AppliedRev || !strings.HasPrefix(rev, salePart) {
		t.Errorf("draft written under %s, not under an id of the sale %s…", rev, salePart)
	}
}

func TestResponseLostAfterCommit(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	e.setHandler(sanitytest.Faulty(e.lake, sanitytest.Options{Sequence: []sanitytest.Fault{sanitytest.CommitThenDrop, sanitytest.CommitThen502}}))
	e.mustHandle(e.fulfiller("p1"), paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
	if e.flips("a1") != 1 {
		t.Fatalf("flips = %d", e.flips("a1"))
	}
}

func TestSanityOutageThenRecovery(t *testing.T) {
	for name, fault := range map[string]sanitytest.Fault{"500": sanitytest.Error500, "503": sanitytest.Error503, "429": sanitytest.RateLimited} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			e.setHandler(sanitytest.Faulty(e.lake, sanitytest.Options{Sequence: []sanitytest.Fault{fault, fault}, RetryAfter: 10 * time.Millisecond}))
			e.mustHandle(e.fulfiller("p1"), paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
		})
	}
	t.Run("down for longer than the budget", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		e.setHandler(sanitytest.Faulty(e.lake, sanitytest.Options{Rate: 1, Fault: sanitytest.Error503}))
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := e.fulfiller("p1").Handle(ctx, paid("evt_1", "cs_1", "a1"))
		if stock.ErrorCode(err) != stock.Unavailable {
			t.Fatalf("err = %v", err)
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("answered after %s", time.Since(start))
		}
		e.setHandler(nil) // Sanity is back: Stripe's retry applies it
		e.mustHandle(e.fulfiller("p1"), paid("evt_1", "cs_1", "a1"), stock.OutcomeSold)
	})
}

func TestBadToken(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	f := e.fulfillerWith("p1", e.catalog("wrong-token"), e.journal)
	_, err := e.handle(f, paid("evt_1", "cs_1", "a1"))
	if stock.ErrorCode(err) != stock.Misconfigured || !strings.Contains(err.Error(), "Editor") {
		t.Fatalf("err = %v", err)
	}
}

// crashJournal makes the process "die" at one step: the call fails and
// nothing after it happens.
type crashJournal struct {
	stock.Journal
	failAt string
}

var errCrash = errors.New("simulated crash")

func (c crashJournal) InsertSale(ctx context.Context, s stock.Sale) error {
	if c.failAt == "InsertSale" {
		return errCrash
	}
	return c.Journal.InsertSale(ctx, s)
}

func (c crashJournal) FinishEvent(ctx context.Context, id string, o stock.Outcome, d, le string, at time.Time, settled ...stock.Sale) error {
	if c.failAt == "FinishEvent" {
		return errCrash
	}
	return c.Journal.FinishEvent(ctx, id, o, d, le, at, settled...)
}

// crashCatalog commits the write, then dies before hearing back.
type crashCatalog struct{ stock.Catalog }

func (c crashCatalog) SetAvailable(ctx context.Context, txID string, available bool, vs []stock.Variant) error {
	if err := c.Catalog.SetAvailable(ctx, txID, available, vs); err != nil {
		return err
	}
	return errCrash
}

// failingCatalog dies before its write reaches Sanity.
type failingCatalog struct{ stock.Catalog }

func (failingCatalog) SetAvailable(context.Context, string, bool, []stock.Variant) error {
	return errCrash
}

// TestTakeFinishesWhatSomeoneElseStarted: the claim was made, the process
// died before writing, and meanwhile someone marked the published document
// unavailable by hand but left the draft on sale. The retry closes the draft.
func TestTakeFinishesWhatSomeoneElseStarted(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	e.artwork("drafts.a1")
	ev := paid("evt_1", "cs_1", "a1")
	if _, err := e.handle(e.fulfillerWith("dead", failingCatalog{e.catalog(token)}, e.journal), ev); err == nil {
		t.Fatal("the crash did not surface")
	}
	e.artwork("a1", map[string]any{"isAvailable": false})
	e.advance(stock.DefaultLeaseTTL + time.Second)
	e.mustHandle(e.fulfiller("restarted"), ev, stock.OutcomeSold)
	if e.available("drafts.a1") != "false" {
		t.Error("the draft was left on sale")
	}
	if s := e.sale("a1", "cs_1"); s.State != stock.SaleSold || s.AppliedRev != e.rev("a1") {
		t.Errorf("sale %+v, published rev %s", s, e.rev("a1"))
	}
}

func TestRestartAfterCrashAtEachStep(t *testing.T) {
	tests := []struct {
		name    string
		journal func(stock.Journal) stock.Journal
		catalog func(stock.Catalog) stock.Catalog
		winner  string // the session that must end up with the piece
	}{
		{"before the claim", func(j stock.Journal) stock.Journal { return crashJournal{j, "InsertSale"} }, nil, "cs_2"},
		{"after the Sanity commit", nil, func(c stock.Catalog) stock.Catalog { return crashCatalog{c} }, "cs_1"},
		// The sale is marked applied with the outcome, in one transaction.
		{"before recording the sale and the outcome", func(j stock.Journal) stock.Journal { return crashJournal{j, "FinishEvent"} }, nil, "cs_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			e.artwork("drafts.a1")
			var j stock.Journal = e.journal
			var c stock.Catalog = e.catalog(token)
			if tt.journal != nil {
				j = tt.journal(j)
			}
			if tt.catalog != nil {
				c = tt.catalog(c)
			}
			first, second := paid("evt_1", "cs_1", "a1"), paid("evt_2", "cs_2", "a1")
			if _, err := e.handle(e.fulfillerWith("dead", c, j), first); err == nil {
				t.Fatal("the crash did not surface")
			}
			// A competing buyer arrives while the dead process's lease lives;
			// it may be told to come back (503).
			_, _ = e.handle(e.fulfiller("other"), second)
			// After the lease ran out, Stripe's redeliveries reach a restarted process.
			e.advance(stock.DefaultLeaseTTL + time.Second)
			restarted := e.fulfiller("restarted")
			for _, ev := range []stock.Event{first, second} {
				if _, err := e.handle(restarted, ev); err != nil {
					t.Fatalf("%s: %v", ev.ID, err)
				}
			}
			if e.available("a1") != "false" || e.available("drafts.a1") != "false" || e.flips("a1") != 1 {
				t.Fatalf("a1=%s draft=%s flips=%d", e.available("a1"), e.available("drafts.a1"), e.flips("a1"))
			}
			loser := map[string]string{"cs_1": "cs_2", "cs_2": "cs_1"}[tt.winner]
			if s := e.sale("a1", tt.winner); s.State != stock.SaleSold || s.AppliedRev == "" {
				t.Fatalf("winner %+v", s)
			}
			if s := e.sale("a1", loser); s.State != stock.SaleDoubleSale {
				t.Fatalf("loser %+v", s)
			}
			e.mustHandle(restarted, first, stock.OutcomeDuplicate)
			e.mustHandle(restarted, second, stock.OutcomeDuplicate)
		})
	}
}

func TestLiveLeaseOfAnotherProcessIsNotOverridden(t *testing.T) {
	e := newEnv(t)
	e.artwork("a1")
	if _, err := e.handle(e.fulfillerWith("dead", e.catalog(token), crashJournal{e.journal, "FinishEvent"}), paid("evt_1", "cs_1", "a1")); err == nil {
		t.Fatal("no crash")
	}
	_, err := e.handle(e.fulfiller("p2"), paid("evt_1", "cs_1", "a1"))
	if !errors.Is(err, stock.ErrBusy) || stock.ErrorCode(err) != stock.Unavailable {
		t.Fatalf("err = %v, want busy", err)
	}
}

// TestEventsOfTheOtherStripeMode: a test checkout must not withdraw a piece
// from a live shop (a test endpoint pointed at production, a test secret
// beside the live one), nor the reverse; without a mode, both are taken. A
// refused event stays unapplied, not ignored: when the shop's own setting
// was wrong, the event applies once it is fixed.
func TestEventsOfTheOtherStripeMode(t *testing.T) {
	for _, tt := range []struct {
		mode     stock.StripeMode
		livemode bool
		refused  bool
	}{
		{stock.ModeLive, false, true},
		{stock.ModeTest, true, true},
		{stock.ModeLive, true, false},
		{stock.ModeTest, false, false},
		{stock.ModeAny, true, false},
		{stock.ModeAny, false, false},
	} {
		t.Run(fmt.Sprintf("%q shop, livemode %v", tt.mode, tt.livemode), func(t *testing.T) {
			e := newEnv(t)
			e.artwork("a1")
			f := e.fulfiller("p1")
			f.Mode = tt.mode
			ev := paid("evt_1", "cs_1", "a1")
			ev.Livemode = tt.livemode
			if !tt.refused {
				e.mustHandle(f, ev, stock.OutcomeSold)
				return
			}
			if _, err := e.handle(f, ev); stock.ErrorCode(err) != stock.Misconfigured {
				t.Fatalf("err = %v, want misconfigured", err)
			}
			if e.available("a1") != "true" {
				t.Fatal("an event of the other mode changed Sanity")
			}
			f.Mode = stock.ModeAny // the setting fixed: Stripe's retry applies it
			e.mustHandle(f, ev, stock.OutcomeSold)
		})
	}
}

// Text logs (SOLDOUT_LOG_FORMAT=text) show each artwork as id:outcome, not
// as a Go struct.
func TestArtworkResultsInTextLogs(t *testing.T) {
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("event processed", "artworks", []stock.ArtworkResult{{ArtworkID: "a1", Outcome: stock.OutcomeSold}, {ArtworkID: "a2", Outcome: stock.OutcomeHeld}})
	if !strings.Contains(logged.String(), `artworks="[a1:sold a2:held]"`) {
		t.Errorf("text line %q", logged.String())
	}
}

// changingCatalog finds the document changed at every write, as under an
// editor saving again and again.
type changingCatalog struct{ stock.Catalog }

func (changingCatalog) SetAvailable(context.Context, string, bool, []stock.Variant) error {
	return stock.Wrap(stock.Conflict, stock.ErrRevisionMismatch, "sanity mutate")
}

// blockingCatalog holds its writes until released, or until their context
// ends.
type blockingCatalog struct {
	stock.Catalog
	entered chan struct{}
	release chan struct{}
}

func (c blockingCatalog) SetAvailable(ctx context.Context, txID string, available bool, vs []stock.Variant) error {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	select {
	case <-c.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.Catalog.SetAvailable(ctx, txID, available, vs)
}

// Other writers that keep an artwork busy until the budget runs out are
// contention, which a later delivery settles (ErrContended: the webhook
// logs it at WARN), not a fault: an artwork that kept changing in Sanity,
// and a delivery that waited for another one of the same artwork.
func TestContentionIsErrContended(t *testing.T) {
	t.Run("kept changing in Sanity", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		f := e.fulfillerWith("p1", changingCatalog{e.catalog(token)}, e.journal)
		if _, err := e.handle(f, paid("evt_1", "cs_1", "a1")); !errors.Is(err, stock.ErrContended) || stock.ErrorCode(err) != stock.Unavailable {
			t.Errorf("err = %v, want Unavailable wrapping ErrContended", err)
		}
	})
	t.Run("waiting for another delivery", func(t *testing.T) {
		e := newEnv(t)
		e.artwork("a1")
		slow := blockingCatalog{e.catalog(token), make(chan struct{}, 1), make(chan struct{})}
		f := e.fulfillerWith("p1", slow, e.journal)
		done := make(chan error, 1)
		go func() { _, err := e.handle(f, paid("evt_1", "cs_1", "a1")); done <- err }()
		<-slow.entered
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := f.Handle(ctx, paid("evt_2", "cs_2", "a1")); !errors.Is(err, stock.ErrContended) || stock.ErrorCode(err) != stock.Unavailable {
			t.Errorf("err = %v, want Unavailable wrapping ErrContended", err)
		}
		close(slow.release)
		if err := <-done; err != nil {
			t.Errorf("the first delivery: %v", err)
		}
	})
}
