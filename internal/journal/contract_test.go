package journal

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"soldout/internal/stock"
)

// TestJournal is the contract suite: every backend must pass all of it.
func TestJournal(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			b.available(t)
			for _, c := range contract {
				t.Run(c.name, func(t *testing.T) { c.test(t, b.url(t)) })
			}
		})
	}
}

var contract = []struct {
	name string
	test func(t *testing.T, url string)
}{
	{"RecordDelivery", testRecordDelivery},
	{"RecordDeliveryConcurrent", testRecordDeliveryConcurrent},
	{"FinishEvent", testFinishEvent},
	{"FinishEventWithSales", testFinishEventWithSales},
	{"FinishEventsRacingOnTheSameSales", testFinishEventsRacing},
	{"Settings", testSettings},
	{"FillHistory", testFillHistory},
	{"UnfinishedEventAfterCrash", testUnfinishedAfterCrash},
	{"InsertSale", testInsertSale},
	{"InsertSaleRace", testInsertSaleRace},
	{"InsertDoubleSale", testInsertDoubleSale},
	{"UpdateSale", testUpdateSale},
	{"UpdateSaleRace", testUpdateSaleRace},
	{"WritersOnSeveralHandles", testSeveralHandles},
	{"Migrations", testMigrations},
	{"ConcurrentOpen", testConcurrentOpen},
	{"ReopenKeepsData", testReopen},
	{"ListEvents", testListEvents},
	{"Event", testEvent},
	{"OddText", testOddText},
	{"ListSales", testListSales},
	{"Cancelled", testCancelled},
	{"Closed", testClosed},
}

var (
	ctx = context.Background()
	t0  = time.UnixMilli(1_750_000_000_000).UTC()
)

func event(id, typ, session string, artworks ...string) stock.Event {
	return stock.Event{
		ID:       id,
		Type:     typ,
		Created:  t0.Add(-time.Minute),
		Livemode: true,
		Session:  stock.Session{ID: session, ArtworkIDs: artworks},
		Payload:  []byte(`{"id":"` + id + `"}`),
	}
}

func record(t testing.TB, d *DB, ev stock.Event, at time.Time) stock.EventRecord {
	t.Helper()
	rec, err := d.RecordDelivery(ctx, ev, at)
	if err != nil {
		t.Fatalf("RecordDelivery(%s): %v", ev.ID, err)
	}
	committed(t, d)
	return rec
}

// committed waits until the writes made so far are committed. RecordDelivery
// may return before its commit (see committer.stage); the webhook's
// FinishEvent is what waits, and readers see the row from then on.
func committed(t testing.TB, d *DB) {
	t.Helper()
	if err := d.write(ctx, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func finish(t testing.TB, d *DB, id string, o stock.Outcome, at time.Time) {
	t.Helper()
	if err := d.FinishEvent(ctx, id, o, "", "", at); err != nil {
		t.Fatalf("FinishEvent(%s): %v", id, err)
	}
}

func sale(artwork, session string, state stock.SaleState) stock.Sale {
	return stock.Sale{ArtworkID: artwork, SessionID: session, State: state, Currency: "eur", Amount: 120000}
}

// fixedClock makes the stamps on sales rows predictable.
func fixedClock(d *DB, at time.Time) { d.now = func() time.Time { return at } }

// wins closes errs, drains it and counts the writes that succeeded; any
// error but lost (the expected verdict for the losers) fails the test.
func wins(t *testing.T, errs chan error, lost error) int {
	t.Helper()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, lost):
			t.Errorf("unexpected error: %v", err)
		}
	}
	return won
}

func equal(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got %v, want %v", what, err, target)
	}
}

func testRecordDelivery(t *testing.T, url string) {
	d := open(t, url)
	ev := event("evt_1", stock.CheckoutCompleted, "cs_1", "art_a", "art_b", "art_a")

	first := record(t, d, ev, t0)
	equal(t, "first delivery", first, stock.EventRecord{
		ID: "evt_1", Type: stock.CheckoutCompleted, Created: t0.Add(-time.Minute), Livemode: true,
		SessionID: "cs_1", ArtworkIDs: []string{"art_a", "art_b", "art_a"},
		FirstReceived: t0, LastReceived: t0, Attempts: 1,
	})

	finish(t, d, "evt_1", stock.OutcomeSold, t0.Add(time.Second))
	second := record(t, d, ev, t0.Add(time.Minute))
	if second.Attempts != 2 || second.Outcome != stock.OutcomeSold ||
		!second.FirstReceived.Equal(t0) || !second.LastReceived.Equal(t0.Add(time.Minute)) {
		t.Errorf("redelivery: got %+v, want attempts 2, outcome sold, received %v then %v", second, t0, t0.Add(time.Minute))
	}

	// A replica whose clock is behind does not move last_received back.
	third := record(t, d, ev, t0.Add(30*time.Second))
	if third.Attempts != 3 || !third.LastReceived.Equal(t0.Add(time.Minute)) {
		t.Errorf("late redelivery: got attempts %d, last received %v", third.Attempts, third.LastReceived)
	}

	// A redelivery of a finished event is answered 2xx at once, so it is
	// committed before RecordDelivery returns: readers see it straight away.
	if _, err := d.RecordDelivery(ctx, ev, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Event(ctx, "evt_1"); err != nil || got.Attempts != 4 {
		t.Errorf("redelivery of a finished event, read at once: %+v, %v; want attempts 4", got, err)
	}

	// An event for no artwork (an ignored type) is recorded as well.
	other := record(t, d, event("evt_2", "customer.created", ""), t0)
	if other.Attempts != 1 || other.ArtworkIDs != nil {
		t.Errorf("event without artworks: %+v", other)
	}
}

func testRecordDeliveryConcurrent(t *testing.T, url string) {
	d := open(t, url)
	ev := event("evt_c", stock.CheckoutCompleted, "cs_c", "art_c")
	const n = 20
	firsts := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec, err := d.RecordDelivery(ctx, ev, t0.Add(time.Duration(i)*time.Millisecond))
			if err != nil {
				t.Error(err)
				return
			}
			if rec.Attempts == 1 {
				firsts <- i
			}
		})
	}
	wg.Wait()
	committed(t, d)
	close(firsts)
	if len(firsts) != 1 {
		t.Errorf("%d deliveries saw themselves as the first, want 1", len(firsts))
	}
	got, err := d.Event(ctx, "evt_c")
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != n {
		t.Errorf("attempts = %d, want %d", got.Attempts, n)
	}
	evs, err := d.ListEvents(ctx, EventFilter{ArtworkID: "art_c"})
	if err != nil || len(evs) != 1 {
		t.Errorf("events of art_c: %d, %v; want one row", len(evs), err)
	}
}

// The sale rows an event settles are written with its outcome, all or
// nothing.
func testFinishEventWithSales(t *testing.T, url string) {
	d := open(t, url)
	fixedClock(d, t0)
	record(t, d, event("evt_s", stock.CheckoutCompleted, "cs_s", "art_1", "art_2"), t0)
	for _, a := range []string{"art_1", "art_2"} {
		if err := d.InsertSale(ctx, sale(a, "cs_s", stock.SaleSold)); err != nil {
			t.Fatal(err)
		}
	}
	read := func(artwork string) stock.Sale {
		t.Helper()
		rows, err := d.Sales(ctx, artwork)
		if err != nil || len(rows) != 1 {
			t.Fatal(rows, err)
		}
		return rows[0]
	}
	applied := func(s stock.Sale, rev string) stock.Sale {
		s.AppliedRev, s.UpdatedAt = rev, time.Time{}
		return s
	}
	s1, s2 := read("art_1"), read("art_2")

	// art_2 was written by somebody else since it was read: nothing is
	// stored, not art_1's row and not the outcome, even though art_1's
	// update comes first in the transaction.
	if _, err := d.UpdateSale(ctx, s2); err != nil {
		t.Fatal(err)
	}
	err := d.FinishEvent(ctx, "evt_s", stock.OutcomeSold, "", "", t0.Add(time.Second), applied(s1, "tx1"), applied(s2, "tx2"))
	wantErr(t, "a stale row", err, stock.ErrStale)
	if got := read("art_1"); got.AppliedRev != "" || got.Version != s1.Version {
		t.Errorf("art_1 written by a failed FinishEvent: %+v", got)
	}
	if ev, _ := d.Event(ctx, "evt_s"); ev.Outcome != "" {
		t.Errorf("outcome stored by a failed FinishEvent: %+v", ev)
	}

	s2 = read("art_2")
	at := t0.Add(2 * time.Second)
	if err := d.FinishEvent(ctx, "evt_s", stock.OutcomeSold, "art_1=sold art_2=sold", "", at, applied(s1, "tx1"), applied(s2, "tx2")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []stock.Sale{applied(s1, "tx1"), applied(s2, "tx2")} {
		want.Version, want.UpdatedAt = want.Version+1, at
		equal(t, "settled "+want.ArtworkID, read(want.ArtworkID), want)
	}
	if ev, _ := d.Event(ctx, "evt_s"); ev.Outcome != stock.OutcomeSold {
		t.Errorf("outcome not stored: %+v", ev)
	}
}

// Two replicas record outcomes that settle the same two rows, each listing
// them in its own order (a hold and the double sale waiting for it, both
// released at once: each records the other's row too). One wins, the other
// hears ErrStale and decides again; neither may wait on the other's locks
// (PostgreSQL would find a deadlock only after a second, and answer with
// an error of its own).
func testFinishEventsRacing(t *testing.T, url string) {
	d1, d2 := open(t, url), open(t, url)
	for i := range 10 {
		art := fmt.Sprint("art_race_", i)
		a, b := sale(art, "cs_a", stock.SaleHeld), sale(art, "cs_b", stock.SaleDoubleSale)
		for j, s := range []stock.Sale{a, b} {
			record(t, d1, event(fmt.Sprint("evt_", i, "_", j), stock.CheckoutAsyncFailed, s.SessionID, art), t0)
			if err := d1.InsertSale(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		released := func(s stock.Sale) stock.Sale {
			s.State = stock.SaleReleased
			return s
		}
		errs := make(chan error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for j, settled := range [][]stock.Sale{{released(a), b}, {a, released(b)}} {
			d := []*DB{d1, d2}[j]
			if j == 1 {
				settled[0], settled[1] = settled[1], settled[0] // the other order
			}
			wg.Go(func() {
				<-start
				errs <- d.FinishEvent(ctx, fmt.Sprint("evt_", i, "_", j), stock.OutcomeReleased, "", "", t0, settled...)
			})
		}
		close(start)
		wg.Wait()
		if won := wins(t, errs, stock.ErrStale); won != 1 {
			t.Errorf("round %d: %d of two racing outcomes recorded, want 1", i, won)
		}
	}
}

// The history benchmarks' journal looks like a real one's past: events of
// a real payload's size, their artworks, and a sale for each.
func testFillHistory(t *testing.T, url string) {
	d := open(t, url)
	if err := d.FillHistory(ctx, 100, 10); err != nil {
		t.Fatal(err)
	}
	count := func(query string) int {
		t.Helper()
		var n int
		if err := d.read.QueryRowContext(ctx, query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for query, want := range map[string]int{
		`SELECT count(*) FROM events`:                     100,
		`SELECT count(*) FROM event_artworks`:             100,
		`SELECT count(*) FROM sales WHERE state = 'sold'`: 100,
		`SELECT min(length(payload)) FROM events`:         2400,
	} {
		if got := count(query); got != want {
			t.Errorf("%s: %d, want %d", query, got, want)
		}
	}
	if d.kind == kindPostgres {
		// Stored size: PostgreSQL would compress a repeating payload away.
		if got := count(`SELECT min(pg_column_size(payload)) FROM events`); got < 2000 {
			t.Errorf("payloads stored in %d bytes, want a real event's 2,400", got)
		}
	}
	evs, err := d.ListEvents(ctx, EventFilter{ArtworkID: HistoryArtworkID(3, 10)})
	if err != nil || len(evs) != 10 {
		t.Errorf("events of one artwork: %d, %v; want 10", len(evs), err)
	}
}

func testSettings(t *testing.T, url string) {
	d := open(t, url)
	if v, err := d.Setting(ctx, "stripe_mode"); err != nil || v != "" {
		t.Fatalf("unset: %q, %v", v, err)
	}
	for _, v := range []string{"test", "live"} {
		if err := d.SetSetting(ctx, "stripe_mode", v); err != nil {
			t.Fatal(err)
		}
		if got, err := open(t, url).Setting(ctx, "stripe_mode"); err != nil || got != v {
			t.Errorf("after storing %q, another handle reads %q, %v", v, got, err)
		}
	}
}

func testFinishEvent(t *testing.T, url string) {
	d := open(t, url)
	record(t, d, event("evt_f", stock.CheckoutCompleted, "cs_f", "art_f"), t0)
	if err := d.FinishEvent(ctx, "evt_f", stock.OutcomeFailed, "art_f=failed", "sanity: 503", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := d.Event(ctx, "evt_f")
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome != stock.OutcomeFailed || got.Detail != "art_f=failed" || got.LastError != "sanity: 503" {
		t.Errorf("after FinishEvent: %+v", got)
	}
	// A retry that succeeds replaces the failure.
	if err := d.FinishEvent(ctx, "evt_f", stock.OutcomeSold, "art_f=sold", "", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Event(ctx, "evt_f"); got.Outcome != stock.OutcomeSold || got.LastError != "" {
		t.Errorf("after the retry: %+v", got)
	}
	// Another replica that lost the race, or saw the work done, finishes
	// later: what the winner recorded stays.
	for _, late := range []stock.Outcome{stock.OutcomeFailed, stock.OutcomeDuplicate} {
		if err := d.FinishEvent(ctx, "evt_f", late, "art_f="+string(late), "busy", t0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := d.Event(ctx, "evt_f"); got.Outcome != stock.OutcomeSold || got.Detail != "art_f=sold" || got.LastError != "" {
			t.Errorf("a late %s overwrote the outcome: %+v", late, got)
		}
	}

	err = d.FinishEvent(ctx, "evt_nope", stock.OutcomeSold, "", "", t0)
	if stock.ErrorCode(err) != stock.Unavailable {
		t.Errorf("finishing an unrecorded event: %v, want an unavailable error (Stripe retries)", err)
	}
}

// A process that crashed between recording and finishing leaves the outcome
// empty; the redelivery must see that the work is still to be done.
func testUnfinishedAfterCrash(t *testing.T, url string) {
	d, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	ev := event("evt_crash", stock.CheckoutCompleted, "cs_x", "art_x")
	record(t, d, ev, t0)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = open(t, url)
	rec := record(t, d, ev, t0.Add(time.Hour))
	if rec.Outcome != "" || rec.Outcome.Final() || rec.Attempts != 2 {
		t.Errorf("after a crash: outcome %q, attempts %d; want \"\" and 2", rec.Outcome, rec.Attempts)
	}
}

func testInsertSale(t *testing.T, url string) {
	d := open(t, url)
	fixedClock(d, t0)
	s := stock.Sale{
		ArtworkID: "art_1", SessionID: "cs_1", State: stock.SaleHeld, Email: "a@example.com",
		Amount: 120000, Currency: "eur", EventIDs: []string{"evt_1"}, AppliedRev: "rev1",
		LeaseOwner: "replica-1", LeaseUntil: t0.Add(time.Minute), Version: 1,
	}
	if err := d.InsertSale(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := d.Sales(ctx, "art_1")
	if err != nil {
		t.Fatal(err)
	}
	want := s
	want.CreatedAt, want.UpdatedAt = t0, t0
	equal(t, "stored sale", got, []stock.Sale{want})

	// Times the caller sets are kept.
	given := sale("art_2", "cs_1", stock.SaleReleased)
	given.CreatedAt, given.UpdatedAt = t0.Add(-time.Hour), t0.Add(-time.Minute)
	if err := d.InsertSale(ctx, given); err != nil {
		t.Fatal(err)
	}
	got, err = d.Sales(ctx, "art_2")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "sale with its own times", got, []stock.Sale{given})

	// The same session again, whether the row is active or not.
	wantErr(t, "same session, active", d.InsertSale(ctx, s), stock.ErrSaleExists)
	released := s
	released.State = stock.SaleReleased
	wantErr(t, "same session, released", d.InsertSale(ctx, released), stock.ErrSaleExists)

	// Another session while art_1 is held.
	err = d.InsertSale(ctx, sale("art_1", "cs_2", stock.SaleSold))
	wantErr(t, "another active session", err, stock.ErrSaleTaken)
	if stock.ErrorCode(err) != stock.Conflict {
		t.Errorf("ErrSaleTaken has code %q, want conflict", stock.ErrorCode(err))
	}
	// Rows that hold nothing may sit alongside the active one.
	for _, r := range []stock.Sale{sale("art_1", "cs_3", stock.SaleDoubleSale), sale("art_1", "cs_4", stock.SaleReleased)} {
		if err := d.InsertSale(ctx, r); err != nil {
			t.Errorf("insert %s: %v", r.State, err)
		}
	}
	if got, _ := d.Sales(ctx, "art_1"); len(got) != 3 {
		t.Errorf("art_1 has %d rows, want 3", len(got))
	}

	err = d.InsertSale(ctx, sale("art_1", "cs_5", "Sold"))
	if err == nil || stock.ErrorCode(err) != stock.Unavailable {
		t.Errorf("an unknown state: %v, want the database to refuse it", err)
	}
}

// Twenty buyers of one artwork, each with a session of their own: the
// database lets exactly one hold it.
func testInsertSaleRace(t *testing.T, url string) {
	d := open(t, url)
	const n = 20
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- d.InsertSale(ctx, sale("art_r", fmt.Sprint("cs_", i), stock.SaleSold)) })
		wg.Go(func() { errs <- d.InsertSale(ctx, sale("art_r", fmt.Sprint("cs_double_", i), stock.SaleDoubleSale)) })
	}
	wg.Wait()
	won := wins(t, errs, stock.ErrSaleTaken)
	if won != n+1 {
		t.Errorf("%d inserts succeeded, want %d double sales and one sale", won, n)
	}
	active, err := d.ListSales(ctx, SaleFilter{ArtworkID: "art_r", State: stock.SaleSold})
	if err != nil || len(active) != 1 {
		t.Errorf("sold rows of art_r: %d, %v; want 1", len(active), err)
	}
}

func testUpdateSale(t *testing.T, url string) {
	d := open(t, url)
	fixedClock(d, t0)
	s := sale("art_u", "cs_1", stock.SaleHeld)
	if err := d.InsertSale(ctx, s); err != nil {
		t.Fatal(err)
	}

	fixedClock(d, t0.Add(time.Minute))
	s.State, s.EventIDs, s.AppliedRev, s.Email = stock.SaleSold, []string{"evt_1", "evt_2"}, "rev2", "b@example.com"
	got, err := d.UpdateSale(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	want := s
	want.Version, want.CreatedAt, want.UpdatedAt = 1, t0, t0.Add(time.Minute)
	equal(t, "updated sale", got, want)
	if rows, _ := d.Sales(ctx, "art_u"); len(rows) != 1 || !reflect.DeepEqual(rows[0], want) {
		t.Errorf("stored after update: %+v", rows)
	}

	// s still carries version 0.
	_, err = d.UpdateSale(ctx, s)
	wantErr(t, "stale version", err, stock.ErrStale)
	// A time the caller sets is kept.
	got.UpdatedAt = t0.Add(time.Hour)
	if got, err = d.UpdateSale(ctx, got); err != nil || !got.UpdatedAt.Equal(t0.Add(time.Hour)) || got.Version != 2 {
		t.Errorf("update with UpdatedAt set: %+v, %v", got, err)
	}
	_, err = d.UpdateSale(ctx, sale("art_u", "cs_none", stock.SaleReleased))
	wantErr(t, "no such row", err, stock.ErrStale)

	// A second session may not become active while cs_1 holds the piece...
	other := sale("art_u", "cs_2", stock.SaleReleased)
	if err := d.InsertSale(ctx, other); err != nil {
		t.Fatal(err)
	}
	other.State = stock.SaleHeld
	_, err = d.UpdateSale(ctx, other)
	wantErr(t, "second active row", err, stock.ErrSaleTaken)

	// ...but may once cs_1 lets go.
	got.State = stock.SaleReleased
	if _, err := d.UpdateSale(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got, err := d.UpdateSale(ctx, other); err != nil || got.Version != 1 || got.State != stock.SaleHeld {
		t.Errorf("after the release: %+v, %v", got, err)
	}
}

// Twenty writers read version 0 and race to write: one wins.
func testUpdateSaleRace(t *testing.T, url string) {
	d := open(t, url)
	s := sale("art_cas", "cs_1", stock.SaleHeld)
	if err := d.InsertSale(ctx, s); err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := s
			s.LeaseOwner = fmt.Sprint("replica-", i)
			_, err := d.UpdateSale(ctx, s)
			errs <- err
		})
	}
	wg.Wait()
	won := wins(t, errs, stock.ErrStale)
	rows, err := d.Sales(ctx, "art_cas")
	if err != nil {
		t.Fatal(err)
	}
	if won != 1 || rows[0].Version != 1 {
		t.Errorf("%d writers won, version %d; want 1 and 1", won, rows[0].Version)
	}
}

// Several processes (replicas) writing one database at once: none of them
// may see a lock error.
func testSeveralHandles(t *testing.T, url string) {
	dbs := make([]*DB, 4)
	for i := range dbs {
		dbs[i] = open(t, url)
	}
	var wg sync.WaitGroup
	for h, d := range dbs {
		for g := range 10 {
			wg.Go(func() {
				for i := range 5 {
					id := fmt.Sprintf("evt_%d_%d_%d", h, g, i)
					if _, err := d.RecordDelivery(ctx, event(id, stock.CheckoutCompleted, "cs", "art_h"), t0); err != nil {
						t.Error(err)
						return
					}
					if err := d.FinishEvent(ctx, id, stock.OutcomeSold, "", "", t0); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	evs, err := dbs[0].ListEvents(ctx, EventFilter{ArtworkID: "art_h", Outcomes: []stock.Outcome{stock.OutcomeSold}})
	if err != nil || len(evs) != 4*10*5 {
		t.Errorf("got %d events, %v; want %d", len(evs), err, 4*10*5)
	}
}

func schemaRows(t *testing.T, d *DB) int {
	t.Helper()
	var n int
	if err := d.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func testMigrations(t *testing.T, url string) {
	for range 2 { // the second Open finds nothing to do
		d, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		v, err := d.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != LatestSchemaVersion() || v < 1 {
			t.Errorf("schema version %d, want %d", v, LatestSchemaVersion())
		}
		if n := schemaRows(t, d); n != len(migrations) {
			t.Errorf("%d rows in schema_migrations, want %d", n, len(migrations))
		}
		d.Close()
	}
}

// Replicas booting together race to migrate a fresh database.
func testConcurrentOpen(t *testing.T, url string) {
	dbs := make([]*DB, 4)
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Go(func() {
			d, err := Open(ctx, url)
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			dbs[i] = d
		})
	}
	wg.Wait()
	for _, d := range dbs {
		if d == nil {
			continue
		}
		t.Cleanup(func() { d.Close() })
		if v, err := d.SchemaVersion(ctx); err != nil || v != LatestSchemaVersion() {
			t.Errorf("schema version %d, %v; want %d", v, err, LatestSchemaVersion())
		}
	}
	if dbs[0] != nil {
		if n := schemaRows(t, dbs[0]); n != len(migrations) {
			t.Errorf("%d rows in schema_migrations, want %d", n, len(migrations))
		}
	}
}

func testReopen(t *testing.T, url string) {
	d, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	ev := event("evt_keep", stock.CheckoutCompleted, "cs_keep", "art_keep")
	record(t, d, ev, t0)
	finish(t, d, ev.ID, stock.OutcomeSold, t0)
	if err := d.InsertSale(ctx, sale("art_keep", "cs_keep", stock.SaleSold)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = open(t, url)
	got, err := d.Event(ctx, ev.ID)
	if err != nil || got.Outcome != stock.OutcomeSold || string(got.Payload) != string(ev.Payload) {
		t.Errorf("event after reopening: %+v, %v", got, err)
	}
	if sales, err := d.Sales(ctx, "art_keep"); err != nil || len(sales) != 1 {
		t.Errorf("sales after reopening: %+v, %v", sales, err)
	}
}

func ids(recs []stock.EventRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func testListEvents(t *testing.T, url string) {
	d := open(t, url)
	for i, e := range []struct {
		ev      stock.Event
		outcome stock.Outcome
	}{
		{event("evt_1", stock.CheckoutCompleted, "cs_1", "art_a"), stock.OutcomeSold},
		{event("evt_2", stock.CheckoutCompleted, "cs_2", "art_b"), stock.OutcomeFailed},
		{event("evt_3", stock.CheckoutExpired, "cs_3", "art_a", "art_b"), stock.OutcomeReleased},
		{event("evt_4", "customer.created", ""), stock.OutcomeIgnored},
		{event("evt_5", stock.CheckoutCompleted, "cs_5", "art_a"), ""}, // still in progress
	} {
		at := t0.Add(time.Duration(i) * time.Minute)
		record(t, d, e.ev, at)
		if e.outcome != "" {
			finish(t, d, e.ev.ID, e.outcome, at)
		}
	}
	// A redelivery of an old event does not make it new.
	record(t, d, event("evt_1", stock.CheckoutCompleted, "cs_1", "art_a"), t0.Add(time.Hour))

	for _, c := range []struct {
		name string
		f    EventFilter
		want []string
	}{
		{"all", EventFilter{}, []string{"evt_5", "evt_4", "evt_3", "evt_2", "evt_1"}},
		{"limit", EventFilter{Limit: 2}, []string{"evt_5", "evt_4"}},
		{"since", EventFilter{Since: t0.Add(2 * time.Minute)}, []string{"evt_5", "evt_4", "evt_3"}},
		{"before", EventFilter{Before: t0.Add(2 * time.Minute)}, []string{"evt_2", "evt_1"}},
		{"artwork before", EventFilter{ArtworkID: "art_a", Before: t0.Add(4 * time.Minute)}, []string{"evt_3", "evt_1"}},
		{"type", EventFilter{Type: stock.CheckoutCompleted}, []string{"evt_5", "evt_2", "evt_1"}},
		{"outcome", EventFilter{Outcomes: []stock.Outcome{stock.OutcomeFailed}}, []string{"evt_2"}},
		{"unfinished", EventFilter{Outcomes: []stock.Outcome{""}}, []string{"evt_5"}},
		{"failed or unfinished", EventFilter{Outcomes: []stock.Outcome{stock.OutcomeFailed, ""}}, []string{"evt_5", "evt_2"}},
		{"artwork", EventFilter{ArtworkID: "art_a"}, []string{"evt_5", "evt_3", "evt_1"}},
		{"artwork limit", EventFilter{ArtworkID: "art_a", Limit: 1}, []string{"evt_5"}},
		{"artwork since", EventFilter{ArtworkID: "art_b", Since: t0.Add(2 * time.Minute)}, []string{"evt_3"}},
		{"artwork and type", EventFilter{ArtworkID: "art_a", Type: stock.CheckoutExpired}, []string{"evt_3"}},
		{"artwork and outcome", EventFilter{ArtworkID: "art_a", Outcomes: []stock.Outcome{stock.OutcomeSold}}, []string{"evt_1"}},
		{"nothing", EventFilter{ArtworkID: "art_none"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := d.ListEvents(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "ids", ids(got), c.want)
			for _, r := range got {
				if r.Payload != nil {
					t.Errorf("%s: listing carries the payload", r.ID)
				}
			}
			counted := c.f
			counted.Limit = 0
			all, _ := d.ListEvents(ctx, counted)
			if n, err := d.CountEvents(ctx, c.f); err != nil || n != len(all) {
				t.Errorf("CountEvents = %d, %v; want %d, what ListEvents lists without its limit", n, err, len(all))
			}
		})
	}

	got, err := d.ListEvents(ctx, EventFilter{ArtworkID: "art_b", Type: stock.CheckoutExpired})
	if err != nil || len(got) != 1 {
		t.Fatalf("evt_3: %+v, %v", got, err)
	}
	equal(t, "evt_3 listed", got[0], stock.EventRecord{
		ID: "evt_3", Type: stock.CheckoutExpired, Created: t0.Add(-time.Minute), Livemode: true, SessionID: "cs_3",
		ArtworkIDs: []string{"art_a", "art_b"}, FirstReceived: t0.Add(2 * time.Minute), LastReceived: t0.Add(2 * time.Minute),
		Attempts: 1, Outcome: stock.OutcomeReleased,
	})
}

func testEvent(t *testing.T, url string) {
	d := open(t, url)
	ev := event("evt_p", stock.CheckoutCompleted, "cs_p", "art_p")
	ev.Payload = []byte(`{"id":"evt_p","object":"event","data":{"object":{"metadata":{"artworkId":"art_p"}}}}`)
	record(t, d, ev, t0)
	got, err := d.Event(ctx, "evt_p")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Payload) != string(ev.Payload) || got.SessionID != "cs_p" {
		t.Errorf("Event: %+v", got)
	}
	_, err = d.Event(ctx, "evt_missing")
	if stock.ErrorCode(err) != stock.NotFound {
		t.Errorf("missing event: %v, want a not_found error", err)
	}
}

// testOddText: strings with NUL and bytes that are not UTF-8 (PostgreSQL's
// text takes neither) are stored as stock.Text makes them, on both backends,
// and lookups by the same raw strings find them: whatever a caller did not
// clean (a Sanity revision, an id typed on the command line) neither fails
// on every retry nor reads as "journal unavailable".
func testOddText(t *testing.T, url string) {
	d := open(t, url)
	ev := event("evt_odd\x00", stock.CheckoutCompleted, "cs_odd\x00", "art\x00x", "art\xffy")
	ev.Payload = []byte("{\"id\":\"evt_odd\\u0000\",\"name\":\"Zo\xff\"}")
	rec := record(t, d, ev, t0)
	if rec.ID != stock.Text(ev.ID) || rec.SessionID != stock.Text(ev.Session.ID) {
		t.Errorf("recorded as %q/%q, want %q/%q", rec.ID, rec.SessionID, stock.Text(ev.ID), stock.Text(ev.Session.ID))
	}
	detail, lastErr := "art\x00x=invalid_metadata", "sanity answered \"bad id \x00\xff\""
	s := sale("art_ok", ev.Session.ID, stock.SaleSold)
	s.Email, s.Version = "b\x00@example.com", 1
	if err := d.InsertSale(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.AppliedRev, s.WaitsFor = "rev\x00", "soldout-\xff"
	if err := d.FinishEvent(ctx, ev.ID, stock.OutcomeInvalidMetadata, detail, lastErr, t0, s); err != nil {
		t.Fatal(err)
	}
	got, err := d.Event(ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Payload) != stock.Text(string(ev.Payload)) || got.Detail != stock.Text(detail) || got.LastError != stock.Text(lastErr) || got.Outcome != stock.OutcomeInvalidMetadata {
		t.Errorf("Event: %+v, payload %q", got, got.Payload)
	}
	recs, err := d.ListEvents(ctx, EventFilter{ArtworkID: ev.Session.ArtworkIDs[1]})
	if err != nil || len(recs) != 1 {
		t.Errorf("events of %q: %v, %v", ev.Session.ArtworkIDs[1], recs, err)
	}
	sales, err := d.SaleBySession(ctx, ev.Session.ID)
	if err != nil || len(sales) != 1 || sales[0].Email != stock.Text(s.Email) || sales[0].AppliedRev != stock.Text(s.AppliedRev) || sales[0].WaitsFor != stock.Text(s.WaitsFor) {
		t.Errorf("sales of %q: %+v, %v", ev.Session.ID, sales, err)
	}
	if _, err := d.Event(ctx, "evt_missing\xff"); stock.ErrorCode(err) != stock.NotFound {
		t.Errorf("an unknown odd id: %v, want not_found", err)
	}
}

func sessions(sales []stock.Sale) []string {
	var out []string
	for _, s := range sales {
		out = append(out, s.ArtworkID+"/"+s.SessionID)
	}
	return out
}

func testListSales(t *testing.T, url string) {
	d := open(t, url)
	for i, s := range []stock.Sale{
		sale("art_a", "cs_1", stock.SaleSold),
		sale("art_b", "cs_1", stock.SaleSold),
		sale("art_c", "cs_2", stock.SaleHeld),
		sale("art_a", "cs_3", stock.SaleDoubleSale),
	} {
		fixedClock(d, t0.Add(time.Duration(i)*time.Minute))
		if err := d.InsertSale(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		f    SaleFilter
		want []string
	}{
		{"all", SaleFilter{}, []string{"art_a/cs_3", "art_c/cs_2", "art_b/cs_1", "art_a/cs_1"}},
		{"state", SaleFilter{State: stock.SaleSold}, []string{"art_b/cs_1", "art_a/cs_1"}},
		{"artwork", SaleFilter{ArtworkID: "art_a"}, []string{"art_a/cs_3", "art_a/cs_1"}},
		{"both", SaleFilter{ArtworkID: "art_a", State: stock.SaleDoubleSale}, []string{"art_a/cs_3"}},
		{"limit", SaleFilter{Limit: 1}, []string{"art_a/cs_3"}},
		{"none", SaleFilter{State: stock.SaleReleased}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := d.ListSales(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "sales", sessions(got), c.want)
		})
	}
	got, err := d.SaleBySession(ctx, "cs_1")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "SaleBySession", sessions(got), []string{"art_a/cs_1", "art_b/cs_1"})
	got, err = d.Sales(ctx, "art_a")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Sales, oldest first", sessions(got), []string{"art_a/cs_1", "art_a/cs_3"})
}

// A caller that has given up gets a retryable error at once, and the journal
// carries on for everybody else.
func testCancelled(t *testing.T, url string) {
	d := open(t, url)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := d.RecordDelivery(cancelled, event("evt_gone", stock.CheckoutCompleted, "cs", "art"), t0)
	if !errors.Is(err, context.Canceled) || stock.ErrorCode(err) != stock.Unavailable {
		t.Errorf("cancelled RecordDelivery: %v, want an unavailable error wrapping context.Canceled", err)
	}
	if rec := record(t, d, event("evt_next", stock.CheckoutCompleted, "cs", "art"), t0); rec.Attempts != 1 {
		t.Errorf("next delivery: %+v", rec)
	}
}

// A closed journal fails its callers with a retryable error.
func testClosed(t *testing.T, url string) {
	d, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = d.RecordDelivery(ctx, event("evt_late", stock.CheckoutCompleted, "cs", "art"), t0)
	if stock.ErrorCode(err) != stock.Unavailable {
		t.Errorf("RecordDelivery after Close: %v, want an unavailable error", err)
	}
	if err := d.Ping(ctx); stock.ErrorCode(err) != stock.Unavailable {
		t.Errorf("Ping after Close: %v, want an unavailable error", err)
	}
}

// testInsertDoubleSale: the double sale and the rewrite of the held row it
// lost to commit together, or not at all.
func testInsertDoubleSale(t *testing.T, url string) {
	d := open(t, url)
	held := sale("art_d", "cs_held", stock.SaleHeld)
	held.Version = 1
	if err := d.InsertSale(ctx, held); err != nil {
		t.Fatal(err)
	}
	double := sale("art_d", "cs_double", stock.SaleDoubleSale)
	double.Version, double.WaitsFor = 1, "cs_held"
	if err := d.InsertDoubleSale(ctx, double, &held); err != nil {
		t.Fatal(err)
	}
	rows, err := d.Sales(ctx, "art_d")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]stock.Sale{}
	for _, r := range rows {
		byID[r.SessionID] = r
	}
	if byID["cs_held"].Version != 2 || byID["cs_held"].State != stock.SaleHeld {
		t.Errorf("held row %+v, want it rewritten as it was, at version 2", byID["cs_held"])
	}
	if byID["cs_double"].WaitsFor != "cs_held" {
		t.Errorf("double sale %+v, want it to name the sale it waits for", byID["cs_double"])
	}

	// The held row changed since it was read (released, say): neither write.
	late := sale("art_d", "cs_late", stock.SaleDoubleSale)
	late.Version = 1
	wantErr(t, "winner changed meanwhile", d.InsertDoubleSale(ctx, late, &held), stock.ErrStale)
	if rows, _ := d.Sales(ctx, "art_d"); len(rows) != 2 {
		t.Errorf("%d rows after a refused double sale, want 2", len(rows))
	}

	// The double sale's own row exists already (another replica recorded
	// it): neither write, so the winner's row keeps its version.
	current := byID["cs_held"]
	wantErr(t, "double sale recorded already", d.InsertDoubleSale(ctx, double, &current), stock.ErrSaleExists)
	rows, _ = d.Sales(ctx, "art_d")
	for _, r := range rows {
		if r.SessionID == "cs_held" && r.Version != 2 {
			t.Errorf("held row %+v after a refused double sale, want it still at version 2", r)
		}
	}

	// Without a winner row (a claim lost in a crash): the double sale alone.
	alone := sale("art_e", "cs_alone", stock.SaleDoubleSale)
	alone.Version, alone.WaitsFor = 1, "soldout-0123456789abcdef-fedcba9876543210"
	if err := d.InsertDoubleSale(ctx, alone, nil); err != nil {
		t.Fatal(err)
	}
	if rows, _ := d.Sales(ctx, "art_e"); len(rows) != 1 || rows[0].WaitsFor != alone.WaitsFor {
		t.Errorf("rows %+v", rows)
	}
}
