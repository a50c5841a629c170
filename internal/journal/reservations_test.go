package journal

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"soldout/internal/stock"
)

// TestReservations extends the contract suite: every backend must pass it.
func TestReservations(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			b.available(t)
			for _, c := range reservationContract {
				t.Run(c.name, func(t *testing.T) { c.test(t, b.url(t)) })
			}
		})
	}
}

var reservationContract = []struct {
	name string
	test func(t *testing.T, url string)
}{
	{"Claim", testClaim},
	{"EndBySession", testEndBySession},
	{"ClaimRace", testClaimRace},
	{"ClaimRaceAcrossHandles", testClaimRaceAcrossHandles},
}

// claimAt is a claim made at now for a session expiring 31 minutes later.
func claimAt(artwork, claim string, now time.Time) stock.Reservation {
	expires := now.Add(31 * time.Minute)
	return stock.Reservation{
		ArtworkID: artwork, ClaimID: claim, State: stock.ReservationOpen,
		ExpiresAt: expires, HeldUntil: expires.Add(stock.ReservationGrace), CreatedAt: now, UpdatedAt: now,
	}
}

func mustClaim(t *testing.T, d *DB, r stock.Reservation, want bool) stock.Reservation {
	t.Helper()
	holder, claimed, err := d.ClaimReservation(ctx, r)
	if err != nil {
		t.Fatalf("claim %s: %v", r.ClaimID, err)
	}
	if claimed != want {
		t.Fatalf("claim %s: claimed = %v, want %v (holder %+v)", r.ClaimID, claimed, want, holder)
	}
	return holder
}

func stored(t *testing.T, d *DB, artwork string) stock.Reservation {
	t.Helper()
	r, err := d.Reservation(ctx, artwork)
	if err != nil || r == nil {
		t.Fatalf("reservation of %s: %+v, %v", artwork, r, err)
	}
	return *r
}

func testClaim(t *testing.T, url string) {
	d := open(t, url)
	if r, err := d.Reservation(ctx, "art_1"); r != nil || err != nil {
		t.Fatalf("never reserved: %+v, %v", r, err)
	}
	first := claimAt("art_1", "claim_1", t0)
	mustClaim(t, d, first, true)
	equal(t, "stored claim", stored(t, d, "art_1"), first)

	// While it holds, every other claim gets the holder back.
	if err := d.SetReservationSession(ctx, "art_1", "claim_1", "cs_1", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	holder := mustClaim(t, d, claimAt("art_1", "claim_2", t0.Add(time.Minute)), false)
	want := first
	want.SessionID, want.UpdatedAt = "cs_1", t0.Add(time.Second)
	equal(t, "holder", holder, want)
	mustClaim(t, d, claimAt("art_1", "claim_3", first.HeldUntil.Add(-time.Millisecond)), false)
	// Other artworks are not affected.
	mustClaim(t, d, claimAt("art_2", "claim_4", t0), true)

	// Past its hold, with no event ever received, the row holds nothing.
	late := claimAt("art_1", "claim_5", first.HeldUntil)
	mustClaim(t, d, late, true)
	equal(t, "taken over", stored(t, d, "art_1"), late)

	// A stale claim can neither record a session nor release the new one.
	wantErr(t, "session of a lost claim", d.SetReservationSession(ctx, "art_1", "claim_1", "cs_x", t0), stock.ErrStale)
	if err := d.ReleaseReservation(ctx, "art_1", "claim_1", t0); err != nil {
		t.Errorf("release of a lost claim: %v", err)
	}
	equal(t, "untouched by the lost claim", stored(t, d, "art_1"), late)

	// Released, the artwork can be claimed again at once.
	if err := d.ReleaseReservation(ctx, "art_1", "claim_5", late.CreatedAt.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if r := stored(t, d, "art_1"); r.State != stock.ReservationReleased || !r.UpdatedAt.Equal(late.CreatedAt.Add(time.Second)) {
		t.Errorf("released: %+v", r)
	}
	wantErr(t, "session of a released claim", d.SetReservationSession(ctx, "art_1", "claim_5", "cs_5", t0), stock.ErrStale)
	mustClaim(t, d, claimAt("art_1", "claim_6", late.CreatedAt.Add(2*time.Second)), true)
}

func testEndBySession(t *testing.T, url string) {
	d := open(t, url)
	for _, state := range []stock.ReservationState{stock.ReservationExpired, stock.ReservationConverted} {
		t.Run(string(state), func(t *testing.T) {
			art, session := "art_"+string(state), "cs_"+string(state)
			r := claimAt(art, "claim_1", t0)
			mustClaim(t, d, r, true)
			if err := d.SetReservationSession(ctx, art, "claim_1", session, t0); err != nil {
				t.Fatal(err)
			}
			got, ended, err := d.EndReservation(ctx, session, state, t0.Add(time.Minute))
			if err != nil || !ended {
				t.Fatalf("end: %v, %v", ended, err)
			}
			r.SessionID, r.State, r.UpdatedAt = session, state, t0.Add(time.Minute)
			equal(t, "ended", got, r)
			equal(t, "stored", stored(t, d, art), r)
			if _, ended, err := d.EndReservation(ctx, session, stock.ReservationExpired, t0.Add(time.Hour)); ended || err != nil {
				t.Errorf("second end: %v, %v", ended, err)
			}
			// A release of the claim, late (its checkout's cleanup), leaves
			// an ended reservation as it is: a converted one stays the sale's.
			if err := d.ReleaseReservation(ctx, art, "claim_1", t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			equal(t, "after a late release", stored(t, d, art), r)
			mustClaim(t, d, claimAt(art, "claim_2", t0.Add(2*time.Minute)), true)
		})
	}
	if _, ended, err := d.EndReservation(ctx, "cs_unknown", stock.ReservationExpired, t0); ended || err != nil {
		t.Errorf("unknown session: %v, %v", ended, err)
	}

	// The event of a session whose lapsed row was taken over ends nothing.
	r := claimAt("art_lapsed", "claim_1", t0)
	mustClaim(t, d, r, true)
	if err := d.SetReservationSession(ctx, "art_lapsed", "claim_1", "cs_old", t0); err != nil {
		t.Fatal(err)
	}
	next := claimAt("art_lapsed", "claim_2", r.HeldUntil)
	mustClaim(t, d, next, true)
	if _, ended, err := d.EndReservation(ctx, "cs_old", stock.ReservationExpired, r.HeldUntil); ended || err != nil {
		t.Errorf("old session: %v, %v", ended, err)
	}
	equal(t, "new claim", stored(t, d, "art_lapsed"), next)
}

// raceClaims makes n claims of one artwork at once, spread over dbs, and
// checks that exactly one won and everybody else saw it.
func raceClaims(t *testing.T, dbs []*DB, n int) {
	t.Helper()
	type answer struct {
		holder  stock.Reservation
		claimed bool
		err     error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var a answer
			a.holder, a.claimed, a.err = dbs[i%len(dbs)].ClaimReservation(ctx, claimAt("art_race", fmt.Sprint("claim_", i), t0))
			answers[i] = a
		})
	}
	wg.Wait()
	var winners []string
	for _, a := range answers {
		if a.err != nil {
			t.Fatalf("claim: %v", a.err)
		}
		if a.claimed {
			winners = append(winners, a.holder.ClaimID)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d claims won, want 1: %v", len(winners), winners)
	}
	for i, a := range answers {
		if !a.claimed && a.holder.ClaimID != winners[0] {
			t.Errorf("claim %d was told %s holds it, but %s won", i, a.holder.ClaimID, winners[0])
		}
	}
	if r := stored(t, dbs[0], "art_race"); r.ClaimID != winners[0] {
		t.Errorf("stored claim %s, winner %s", r.ClaimID, winners[0])
	}
}

func testClaimRace(t *testing.T, url string) {
	raceClaims(t, []*DB{open(t, url)}, 20)
}

// Replicas: several handles on one database.
func testClaimRaceAcrossHandles(t *testing.T, url string) {
	dbs := make([]*DB, 4)
	for i := range dbs {
		dbs[i] = open(t, url)
	}
	raceClaims(t, dbs, 20)
}
