package sanity_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"soldout/internal/sanity"
	"soldout/internal/sanity/memlake"
	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
)

func ptr(b bool) *bool { return &b }

func TestArtwork(t *testing.T) {
	type doc struct {
		id     string
		fields map[string]any
	}
	avail := func(v any) map[string]any { return map[string]any{"isAvailable": v} }
	tests := []struct {
		name      string
		docs      []doc
		published *bool // nil: expect no published doc
		others    []string
		availOf   map[string]*bool
	}{
		{"nothing stored", nil, nil, nil, nil},
		{"published only", []doc{{"X", avail(true)}}, ptr(true), nil, map[string]*bool{"X": ptr(true)}},
		{"published, field missing", []doc{{"X", nil}}, ptr(true), nil, map[string]*bool{"X": nil}},
		{"published, field null (unset in the Studio)", []doc{{"X", avail(nil)}}, ptr(true), nil, map[string]*bool{"X": nil}},
		{"published and draft", []doc{{"X", avail(false)}, {"drafts.X", avail(true)}}, ptr(true), []string{"drafts.X"},
			map[string]*bool{"X": ptr(false), "drafts.X": ptr(true)}},
		{"draft only", []doc{{"drafts.X", avail(true)}}, nil, []string{"drafts.X"}, nil},
		{"draft and release versions, in id order", []doc{
			{"X", avail(true)}, {"drafts.X", nil}, {"versions.rB.X", avail(true)}, {"versions.rA.X", avail(false)},
		}, ptr(true), []string{"drafts.X", "versions.rA.X", "versions.rB.X"},
			map[string]*bool{"drafts.X": nil, "versions.rA.X": ptr(false), "versions.rB.X": ptr(true)}},
		{"other artworks' versions are not mixed in", []doc{
			{"X", avail(true)}, {"XY", avail(true)}, {"drafts.XY", nil}, {"versions.r1.XY", nil}, {"versions.r1.X.Y", nil},
		}, ptr(true), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sanitytest.Options{})
			revs := map[string]string{}
			for _, d := range tt.docs {
				revs[d.id] = putArtwork(e.lake, d.id, d.fields)
			}
			art, err := e.client.Artwork(t.Context(), "X")
			if err != nil {
				t.Fatal(err)
			}
			if art.ID != "X" || (art.Published == nil) != (tt.published == nil) {
				t.Fatalf("artwork %+v", art)
			}
			var others []string
			for _, v := range art.Others {
				others = append(others, v.ID)
			}
			if !reflect.DeepEqual(others, tt.others) {
				t.Errorf("others %v, want %v", others, tt.others)
			}
			for _, v := range art.Variants() {
				if v.Rev != revs[v.ID] {
					t.Errorf("%s: rev %q, want %q", v.ID, v.Rev, revs[v.ID])
				}
				if want, ok := tt.availOf[v.ID]; ok && !reflect.DeepEqual(v.Available, want) {
					t.Errorf("%s: available %v, want %v", v.ID, v.Available, want)
				}
			}
		})
	}

	t.Run("release versions found by a stale query are read fresh", func(t *testing.T) {
		// Sanity answers queries from a search store that lags the
		// documents; stale serves the queries, live everything else.
		stale, live := memlake.New("production", token), memlake.New("production", token)
		for _, lake := range []*memlake.Lake{stale, live} {
			putArtwork(lake, "X", map[string]any{"isAvailable": true})
		}
		putArtwork(stale, "versions.r1.X", map[string]any{"isAvailable": true})
		putArtwork(stale, "versions.gone.X", map[string]any{"isAvailable": true})
		edited := putArtwork(live, "versions.r1.X", map[string]any{"isAvailable": true, "title": "edited"})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/data/query/") {
				stale.ServeHTTP(w, r)
				return
			}
			live.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		art, err := newClient(t, srv.URL).Artwork(t.Context(), "X")
		if err != nil {
			t.Fatal(err)
		}
		if len(art.Others) != 1 || art.Others[0].ID != "versions.r1.X" || art.Others[0].Rev != edited {
			t.Fatalf("versions %+v, want versions.r1.X at its current rev %s (a stale rev fails the write's guard until the search store catches up; a deleted version is not written)", art.Others, edited)
		}
	})
	t.Run("a published document and its draft near Sanity's size limit", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		big := strings.Repeat("x", 9<<20) // together over the 16 MiB once read; Sanity stores up to 32 MB each
		putArtwork(e.lake, "X", map[string]any{"isAvailable": true, "body": big})
		putArtwork(e.lake, "drafts.X", map[string]any{"isAvailable": true, "body": big})
		if art, err := e.client.Artwork(t.Context(), "X"); err != nil || len(art.Others) != 1 {
			t.Fatalf("art %+v, err %v: a sale of this artwork could never be applied", art.Others, err)
		}
	})
	t.Run("isAvailable that is not a boolean", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		putArtwork(e.lake, "X", map[string]any{"isAvailable": "yes"})
		if _, err := e.client.Artwork(t.Context(), "X"); stock.ErrorCode(err) != stock.Misconfigured {
			t.Errorf("err = %v", err)
		}
	})
}

func TestDraft(t *testing.T) {
	e := newEnv(t, sanitytest.Options{})
	putArtwork(e.lake, "X", nil)
	if d, err := e.client.Draft(t.Context(), "X"); d != nil || err != nil {
		t.Errorf("no draft: %+v %v", d, err)
	}
	rev := putArtwork(e.lake, "drafts.X", map[string]any{"isAvailable": false})
	d, err := e.client.Draft(t.Context(), "X")
	if err != nil || d == nil || d.ID != "drafts.X" || d.Rev != rev || d.IsAvailable() {
		t.Errorf("draft: %+v %v", d, err)
	}
	reqs := e.rec.requests()
	if last := reqs[len(reqs)-1]; last.path != "/v"+sanity.DefaultAPIVersion+"/data/doc/production/drafts.X" {
		t.Errorf("read %s, want the doc endpoint for drafts.X alone", last.path)
	}
	if _, err := e.client.Draft(t.Context(), "drafts.X"); stock.ErrorCode(err) != stock.Invalid {
		t.Errorf("a draft id: %v", err)
	}
}

func TestSetAvailable(t *testing.T) {
	t.Run("writes every variant, and _rev becomes the transaction id", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		putArtwork(e.lake, "X", map[string]any{"isAvailable": true})
		putArtwork(e.lake, "drafts.X", map[string]any{"isAvailable": true, "title": "draft title"})
		putArtwork(e.lake, "versions.r1.X", nil)
		art, err := e.client.Artwork(t.Context(), "X")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.client.SetAvailable(t.Context(), "sale-1", false, art.Variants()); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"X", "drafts.X", "versions.r1.X"} {
			doc, _ := e.lake.Get(id)
			if doc["isAvailable"] != false || doc["_rev"] != "sale-1" || e.lake.Writes(id) != 1 {
				t.Errorf("%s: %v, %d writes", id, doc, e.lake.Writes(id))
			}
		}
		if doc, _ := e.lake.Get("drafts.X"); doc["title"] != "draft title" {
			t.Errorf("another field changed: %v", doc)
		}
		if txs := e.lake.Transactions(); len(txs) != 1 || len(txs[0].Changes) != 3 {
			t.Errorf("transactions %+v", txs)
		}
	})

	t.Run("a variant changed since it was read", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		putArtwork(e.lake, "X", nil)
		putArtwork(e.lake, "drafts.X", nil)
		art, _ := e.client.Artwork(t.Context(), "X")
		putArtwork(e.lake, "drafts.X", map[string]any{"title": "edited"}) // an editor typed
		err := e.client.SetAvailable(t.Context(), "sale-1", false, art.Variants())
		if !errors.Is(err, stock.ErrRevisionMismatch) || stock.ErrorCode(err) != stock.Conflict {
			t.Fatalf("err = %v", err)
		}
		if doc, _ := e.lake.Get("X"); doc["isAvailable"] != nil || e.lake.Writes("X") != 0 {
			t.Errorf("the published doc was written: %v", doc)
		}
	})

	t.Run("a variant vanished since it was read", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		putArtwork(e.lake, "X", nil)
		putArtwork(e.lake, "drafts.X", nil)
		art, _ := e.client.Artwork(t.Context(), "X")
		e.lake.Delete("drafts.X") // the draft was published or discarded
		if err := e.client.SetAvailable(t.Context(), "sale-1", false, art.Variants()); !errors.Is(err, stock.ErrRevisionMismatch) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("an id that already committed is a success", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		putArtwork(e.lake, "X", nil)
		art, _ := e.client.Artwork(t.Context(), "X")
		if err := e.client.SetAvailable(t.Context(), "sale-1", false, art.Variants()); err != nil {
			t.Fatal(err)
		}
		// A redelivery holding the old revision: the guard would fail, but
		// the transaction id says it is done.
		if err := e.client.SetAvailable(t.Context(), "sale-1", false, art.Variants()); err != nil {
			t.Fatalf("second call: %v", err)
		}
		if n := e.lake.Writes("X"); n != 1 {
			t.Errorf("%d writes", n)
		}
	})

	t.Run("nothing to write sends nothing", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		if err := e.client.SetAvailable(t.Context(), "sale-1", false, nil); err != nil || len(e.rec.requests()) != 0 {
			t.Errorf("err %v, %d requests", err, len(e.rec.requests()))
		}
	})

	t.Run("unguarded or unnamed writes are refused", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		if err := e.client.SetAvailable(t.Context(), "sale-1", false, []stock.Variant{{ID: "X"}}); stock.ErrorCode(err) != stock.Internal {
			t.Errorf("no rev: %v", err)
		}
		if err := e.client.SetAvailable(t.Context(), "", false, []stock.Variant{{ID: "X", Rev: "r"}}); stock.ErrorCode(err) != stock.Internal {
			t.Errorf("no transaction id: %v", err)
		}
		if n := len(e.rec.requests()); n != 0 {
			t.Errorf("%d requests", n)
		}
	})
}

// TestConcurrentSales: many buyers of one artwork race through the whole
// read-then-guarded-write; exactly one flips it.
func TestConcurrentSales(t *testing.T) {
	e := newEnv(t, sanitytest.Options{})
	putArtwork(e.lake, "X", map[string]any{"isAvailable": true})
	putArtwork(e.lake, "drafts.X", map[string]any{"isAvailable": true})
	const buyers = 24
	var wg sync.WaitGroup
	errs := make([]error, buyers)
	for i := range buyers {
		wg.Go(func() {
			art, err := e.client.Artwork(t.Context(), "X")
			if err != nil {
				errs[i] = err
				return
			}
			if !art.Published.IsAvailable() {
				errs[i] = stock.ErrRevisionMismatch // it already sold
				return
			}
			errs[i] = e.client.SetAvailable(t.Context(), fmt.Sprintf("sale-%d", i), false, art.Variants())
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, stock.ErrRevisionMismatch):
			t.Errorf("unexpected error: %v", err)
		}
	}
	flips := 0
	for _, tx := range e.lake.Transactions() {
		for _, c := range tx.Changes {
			if c.ID == "X" && c.Before["isAvailable"] != c.After["isAvailable"] {
				flips++
			}
		}
	}
	if won != 1 || flips != 1 {
		t.Errorf("%d winners, %d flips of X", won, flips)
	}
}

// A failed read of the release versions fails the whole read: an artwork
// read without them would be marked unavailable everywhere but in a release,
// whose publication would put the sold piece on sale again.
func TestArtworkFailsWithoutItsReleaseVersions(t *testing.T) {
	e := newEnv(t, sanitytest.Options{Rate: 1, Fault: sanitytest.Error500,
		Match: func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/data/query/") }})
	putArtwork(e.lake, "X", map[string]any{"isAvailable": true})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if art, err := e.client.Artwork(ctx, "X"); err == nil {
		t.Errorf("Artwork read with its versions query failing: %+v, want an error", art)
	}
}
