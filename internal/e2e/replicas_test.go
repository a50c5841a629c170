package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"soldout/internal/journal"
	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
)

// stormSize is a few hundred events over a few dozen artworks.
var stormSize = scenarioSize{
	untouched: 12, sold: 30, competing: 10, delayed: 8,
	abandoned: 200, noMetadata: 4,
	second: 0.25, duplicate: 0.15,
}

// stormSanity fails about a fifth of the mutations with 429, 503 and 500,
// commits a few and drops their answer, and adds latency to every request.
// A 429 asks for one second, so it pauses the whole replica that got it.
func stormSanity(t *testing.T, seed uint64) func(int) *fakeSanity {
	return func(slots int) *fakeSanity {
		return newFakeSanity(t, slots,
			sanitytest.Options{Latency: 2 * time.Millisecond, Jitter: 15 * time.Millisecond, Rate: 0.04, Fault: sanitytest.RateLimited, Seed: seed},
			sanitytest.Options{Rate: 0.08, Fault: sanitytest.Error503, Seed: seed + 1},
			sanitytest.Options{Rate: 0.08, Fault: sanitytest.Error500, Seed: seed + 2},
			sanitytest.Options{Rate: 0.03, Fault: sanitytest.CommitThenDrop, Seed: seed + 3},
		)
	}
}

// suiteDeadline bounds every test's driving; the whole suite should take
// well under it.
const suiteDeadline = 2 * time.Minute

func TestStormOnThreeReplicas(t *testing.T) {
	const seed = 1
	c := newCluster(t, 3, stormSanity(t, seed))
	s := newScenario(seed, 3, stormSize)
	s.put(c.sanity)
	d := newDriver(c, 24, seed)
	ctx, cancel := context.WithTimeout(context.Background(), suiteDeadline)
	defer cancel()
	d.run(ctx, s.jobs)
	s.check(t, c, d, checkOptions{})
	logStats(t, s, c, d)
}

// TestReplicaKilledMidStorm kills a replica with kill -9 while it is
// writing a sale, after a third of the deliveries: its write is committed in
// Sanity and its claim is left in the journal. The claim must hold off every
// other replica (503, no write) until its lease expires, then the sale
// completes elsewhere without a second write.
func TestReplicaKilledMidStorm(t *testing.T) {
	const seed = 2
	c := newCluster(t, 3, stormSanity(t, seed))
	s := newScenario(seed, 3, stormSize)
	s.put(c.sanity)
	d := newDriver(c, 24, seed)
	ctx, cancel := context.WithTimeout(context.Background(), suiteDeadline)
	defer cancel()

	armAt := int64(s.deliveries() / 3)
	armed := make(chan (<-chan heldMutate), 1)
	var once sync.Once
	d.onAnswer = func(answer) {
		if d.attempts.Load() >= armAt {
			once.Do(func() { armed <- c.sanity.holdNextMutate() })
		}
	}
	db := c.journal()
	type crash struct {
		held     heldMutate
		claim    stock.Sale
		killedAt time.Time
		err      error
	}
	crashed := make(chan crash, 1)
	go func() {
		var cr crash
		defer func() { crashed <- cr }()
		var held <-chan heldMutate
		select {
		case held = <-armed:
		case <-ctx.Done():
			cr.err = fmt.Errorf("the storm ended before %d deliveries", armAt)
			return
		}
		select {
		case cr.held = <-held:
		case <-ctx.Done():
			cr.err = fmt.Errorf("no mutation after %d deliveries", armAt)
			return
		}
		r := c.replicas[cr.held.slot]
		r.kill()
		cr.killedAt = time.Now()
		artwork := strings.TrimPrefix(cr.held.ids[0], "drafts.")
		sales, err := db.Sales(ctx, artwork)
		if err != nil {
			cr.err = err
			return
		}
		for _, sale := range sales {
			if sale.AppliedRev == "" && sale.LeaseOwner != "" {
				cr.claim = sale
			}
		}
		if cr.claim.SessionID == "" {
			cr.err = fmt.Errorf("the killed replica left no claim on %s: %+v", artwork, sales)
		}
		// Restarted as a platform would, with the same settings; it is a new
		// process, so the dead one's claim binds it too.
		if err := r.start(); err != nil && cr.err == nil {
			cr.err = err
		}
	}()
	d.run(ctx, s.jobs)
	cr := <-crashed
	if cr.err != nil {
		t.Fatal(cr.err)
	}
	s.check(t, c, d, checkOptions{soldAnswerMayBeLost: true})

	claim := cr.claim
	t.Logf("killed replica %d while it wrote %v (tx %s); its claim on %s for %s lasted until %s, %v after the kill",
		cr.held.slot, cr.held.ids, cr.held.txID, claim.ArtworkID, claim.SessionID,
		claim.LeaseUntil.Format(time.TimeOnly), claim.LeaseUntil.Sub(cr.killedAt).Round(time.Millisecond))
	if claim.LeaseUntil.Sub(cr.killedAt) > testLeaseTTL {
		t.Errorf("claim lasts %v after the kill, longer than the %v lease", claim.LeaseUntil.Sub(cr.killedAt), testLeaseTTL)
	}
	final, err := db.Sales(context.Background(), claim.ArtworkID)
	if err != nil {
		t.Fatal(err)
	}
	for _, sale := range final {
		if sale.SessionID == claim.SessionID && slices.Contains(cr.held.ids, claim.ArtworkID) && sale.AppliedRev != cr.held.txID {
			t.Errorf("%s: journal records write %s, but the dead replica's write %s is the one in Sanity", claim.ArtworkID, sale.AppliedRev, cr.held.txID)
		}
	}
	// While the claim was live, other replicas refused the session's events
	// with 503; none completed before it expired.
	answers, _ := d.snapshot()
	busy := 0
	for _, a := range answers {
		ev := s.event(a.event)
		if ev.session != claim.SessionID || a.at.Before(cr.killedAt) {
			continue
		}
		switch {
		case a.ok() && a.at.Before(claim.LeaseUntil):
			t.Errorf("event %s answered %d %s at %s, before the dead replica's claim expired", a.event, a.status, a.outcome, a.at.Format(time.TimeOnly))
		case a.status == 503 && a.at.Before(claim.LeaseUntil):
			busy++
		}
	}
	if busy == 0 {
		t.Errorf("no replica answered 503 while the dead replica's claim on %s was live", claim.ArtworkID)
	}
	logStats(t, s, c, d)
}

// TestGracefulStopDuringBurst sends SIGTERM to one of two replicas in the
// middle of a burst: it must finish what it accepted, answer it, and exit
// 0; every event it answered 2xx must be applied, and the rest complete on
// the other replica through redelivery.
func TestGracefulStopDuringBurst(t *testing.T) {
	const seed = 3
	c := newCluster(t, 2, func(slots int) *fakeSanity {
		// Slow enough that requests are in flight when the signal comes.
		return newFakeSanity(t, slots,
			sanitytest.Options{Latency: 20 * time.Millisecond, Jitter: 40 * time.Millisecond, Rate: 0.05, Fault: sanitytest.Error503, Seed: seed})
	})
	s := newScenario(seed, 2, scenarioSize{untouched: 4, sold: 40, competing: 8, delayed: 4, abandoned: 40, duplicate: 0.15})
	s.put(c.sanity)
	d := newDriver(c, 16, seed)
	db := c.journal()
	ctx, cancel := context.WithTimeout(context.Background(), suiteDeadline)
	defer cancel()

	const stopAfter = 15 // 2xx answers from replica 0
	var ok0 atomic.Int64
	signal := make(chan struct{})
	d.onAnswer = func(a answer) {
		if a.slot == 0 && a.ok() && ok0.Add(1) == stopAfter {
			close(signal)
		}
	}
	type stop struct {
		exit, err error
		inFlight  int64
		answered  []answer // replica 0's 2xx answers
	}
	stopped := make(chan stop, 1)
	go func() {
		var st stop
		defer func() { stopped <- st }()
		select {
		case <-signal:
		case <-ctx.Done():
			st.err = fmt.Errorf("replica 0 never answered %d events", stopAfter)
			return
		}
		st.inFlight = d.inflight[0].Load()
		if st.exit, st.err = c.replicas[0].sigterm(); st.err != nil {
			return
		}
		// Its connections are closed: the driver has every answer it will
		// get from it once the requests still counted return.
		for i := 0; d.inflight[0].Load() > 0; i++ {
			if i == 500 {
				st.err = fmt.Errorf("requests to the stopped replica still open")
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		answers, _ := d.snapshot()
		for _, a := range answers {
			if a.slot == 0 && a.ok() {
				st.answered = append(st.answered, a)
			}
		}
		// Checked now, before redeliveries elsewhere could mend anything.
		checkApplied(t, db, c.sanity, s, st.answered)
	}()
	d.run(ctx, s.jobs)
	st := <-stopped
	if st.err != nil {
		t.Fatal(st.err)
	}
	if st.exit != nil {
		t.Errorf("replica 0 exited with %v after SIGTERM, want status 0", st.exit)
	}
	if len(c.replicas[0].logs.find("stopped cleanly")) != 1 {
		t.Error(`replica 0 did not log "stopped cleanly"`)
	}
	// No answer lost: every event the stopped replica logged as answered
	// reached the driver.
	logged := map[string]int{}
	for _, l := range c.replicas[0].logs.find("event ") {
		if l["status"] == float64(200) {
			logged[fmt.Sprint(l["event_id"])]++
		}
	}
	got := map[string]int{}
	for _, a := range st.answered {
		got[a.event]++
	}
	for id, n := range logged {
		if got[id] != n {
			t.Errorf("event %s: replica 0 answered 200 %d times, the driver got %d", id, n, got[id])
		}
	}
	t.Logf("SIGTERM with %d requests in flight to replica 0; it answered %d events 2xx in all", st.inFlight, len(st.answered))
	s.check(t, c, d, checkOptions{})
	logStats(t, s, c, d)
}

// checkApplied asserts that every 2xx answer is backed by the journal and by
// Sanity.
func checkApplied(t *testing.T, db *journal.DB, f *fakeSanity, s *scenario, answered []answer) {
	ctx := context.Background()
	for _, a := range answered {
		rec, err := db.Event(ctx, a.event)
		if err != nil || !rec.Outcome.Final() {
			t.Errorf("event %s answered %s, but the journal has %q (%v)", a.event, a.outcome, rec.Outcome, err)
			continue
		}
		ev := s.event(a.event)
		if ev.artwork == "" || (a.outcome != stock.OutcomeSold && a.outcome != stock.OutcomeHeld) {
			continue
		}
		if doc, _ := f.lake.Get(ev.artwork); available(doc) {
			t.Errorf("event %s answered %s, but %s is still available", a.event, a.outcome, ev.artwork)
		}
		sales, err := db.Sales(ctx, ev.artwork)
		if err != nil {
			t.Error(err)
		}
		applied := false
		for _, sale := range sales {
			applied = applied || sale.SessionID == ev.session && sale.AppliedRev != ""
		}
		if !applied {
			t.Errorf("event %s answered %s, but the journal has no applied sale for %s: %+v", a.event, a.outcome, ev.session, sales)
		}
	}
}

func (s *scenario) event(id string) *event {
	for _, ev := range s.events {
		if ev.id == id {
			return ev
		}
	}
	panic("no event " + id)
}

// logStats shows what the run went through, to judge whether it tested
// anything: faults injected, redeliveries, answers by status.
func logStats(t *testing.T, s *scenario, c *cluster, d *driver) {
	answers, _ := d.snapshot()
	statuses := map[int]int{}
	var slowest time.Duration
	for _, a := range answers {
		statuses[a.status]++
		slowest = max(slowest, a.took)
	}
	mutates := map[int]int{}
	for _, m := range c.sanity.calls() {
		mutates[m.status]++
	}
	t.Logf("%d events in %d deliveries over %d artworks; %d attempts; answers by status %v (0: no answer); slowest %v; Sanity mutate requests by status %v (0: dropped after commit, negative: held)",
		len(s.events), s.deliveries(), len(s.artworks), len(answers), statuses, slowest.Round(time.Millisecond), mutates)
}
