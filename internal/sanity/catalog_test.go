package sanity_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"soldout/internal/sanity"
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

	t.Run("isAvailable that is not a boolean", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		putArtwork(e.lake, "X", map[string]any{"isAvailable": "yes"})
		if _, err := e.client.Artwork(t.Context(), "X"); stock.ErrorCode(err) != stock.Misconfigured {
			t.Errorf("err = %v", err)
		}
	})
}

func TestPublished(t *testing.T) {
	e := newEnv(t, sanitytest.Options{})
	if p, err := e.client.Published(t.Context(), "X"); p != nil || err != nil {
		t.Errorf("nothing stored: %+v %v", p, err)
	}
	putArtwork(e.lake, "drafts.X", nil)
	if p, err := e.client.Published(t.Context(), "X"); p != nil || err != nil {
		t.Errorf("draft only: %+v %v", p, err)
	}
	rev := putArtwork(e.lake, "X", map[string]any{"isAvailable": false})
	p, err := e.client.Published(t.Context(), "X")
	if err != nil || p == nil || p.ID != "X" || p.Rev != rev || p.IsAvailable() {
		t.Errorf("published: %+v %v", p, err)
	}
	reqs := e.rec.requests()
	if last := reqs[len(reqs)-1]; last.path != "/v"+sanity.DefaultAPIVersion+"/data/doc/production/X" {
		t.Errorf("read %s, want the doc endpoint for X alone", last.path)
	}
	if _, err := e.client.Published(t.Context(), "drafts.X"); stock.ErrorCode(err) != stock.Invalid {
		t.Errorf("a draft id: %v", err)
	}
}

func TestMarkUnavailable(t *testing.T) {
	avail := func(v any) map[string]any { return map[string]any{"isAvailable": v, "title": "kept"} }
	tests := []struct {
		name    string
		docs    map[string]map[string]any
		written []string // ids whose _rev becomes the transaction id
	}{
		{"published only", map[string]map[string]any{"X": avail(true)}, []string{"X"}},
		{"field absent counts as on sale", map[string]map[string]any{"X": nil, "drafts.X": nil}, []string{"X", "drafts.X"}},
		{"draft and release versions on sale", map[string]map[string]any{
			"X": avail(true), "drafts.X": avail(true), "versions.rA.X": avail(true), "versions.rB.X": nil,
		}, []string{"X", "drafts.X", "versions.rA.X", "versions.rB.X"}},
		{"versions already unavailable are left alone", map[string]map[string]any{
			"X": avail(true), "drafts.X": avail(false), "versions.rA.X": avail(false),
		}, []string{"X"}},
		{"other artworks are left alone", map[string]map[string]any{
			"X": avail(true), "XY": avail(true), "drafts.XY": avail(true), "versions.r1.XY": avail(true), "versions.r1.X.Y": avail(true),
		}, []string{"X"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sanitytest.Options{})
			for id, fields := range tt.docs {
				putArtwork(e.lake, id, fields)
			}
			pub, err := e.client.Published(t.Context(), "X")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.client.MarkUnavailable(t.Context(), "sale-1", *pub); err != nil {
				t.Fatal(err)
			}
			for id, fields := range tt.docs {
				doc, _ := e.lake.Get(id)
				want := slices.Contains(tt.written, id)
				if (doc["_rev"] == "sale-1") != want || want && doc["isAvailable"] != false || doc["title"] != "Untitled" && doc["title"] != fields["title"] {
					t.Errorf("%s: %v (written: %v)", id, doc, want)
				}
			}
			if txs := e.lake.Transactions(); len(txs) != 1 || len(txs[0].Changes) != len(tt.written) {
				t.Errorf("transactions %+v", txs)
			}
		})
	}

	t.Run("one request, the other versions matched by query", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		putArtwork(e.lake, "X", nil)
		pub, _ := e.client.Published(t.Context(), "X")
		before := len(e.rec.requests())
		if err := e.client.MarkUnavailable(t.Context(), "sale-1", *pub); err != nil {
			t.Fatal(err)
		}
		reqs := e.rec.requests()[before:]
		if len(reqs) != 1 {
			t.Fatalf("%d requests", len(reqs))
		}
		var body struct {
			Mutations []struct {
				Patch map[string]any `json:"patch"`
			} `json:"mutations"`
			TransactionID string `json:"transactionId"`
		}
		if err := json.Unmarshal([]byte(reqs[0].body), &body); err != nil || len(body.Mutations) != 2 || body.TransactionID != "sale-1" {
			t.Fatalf("body %s: %v", reqs[0].body, err)
		}
		guarded, byQuery := body.Mutations[0].Patch, body.Mutations[1].Patch
		if guarded["id"] != "X" || guarded["ifRevisionID"] != pub.Rev {
			t.Errorf("published patch %v", guarded)
		}
		params, _ := byQuery["params"].(map[string]any)
		if byQuery["id"] != nil || byQuery["ifRevisionID"] != nil || byQuery["query"] == "" ||
			params["draft"] != "drafts.X" || params["versions"] != "versions.*.X" {
			t.Errorf("query patch %v", byQuery)
		}
	})

	t.Run("published changed since the read: nothing written", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		putArtwork(e.lake, "X", nil)
		putArtwork(e.lake, "drafts.X", nil)
		pub, _ := e.client.Published(t.Context(), "X")
		putArtwork(e.lake, "X", map[string]any{"title": "edited"})
		err := e.client.MarkUnavailable(t.Context(), "sale-1", *pub)
		if !errors.Is(err, stock.ErrRevisionMismatch) || stock.ErrorCode(err) != stock.Conflict {
			t.Fatalf("err = %v", err)
		}
		if e.lake.Writes("drafts.X") != 0 {
			t.Error("the draft was written by a failed transaction")
		}
	})

	t.Run("an id that already committed is a success", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		putArtwork(e.lake, "X", nil)
		pub, _ := e.client.Published(t.Context(), "X")
		for range 2 { // a redelivery still holding the old revision
			if err := e.client.MarkUnavailable(t.Context(), "sale-1", *pub); err != nil {
				t.Fatal(err)
			}
		}
		if n := e.lake.Writes("X"); n != 1 {
			t.Errorf("%d writes", n)
		}
	})

	t.Run("unguarded or unnamed writes are refused", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		for _, call := range []struct {
			txID string
			pub  stock.Variant
			want stock.Code
		}{{"sale-1", stock.Variant{ID: "X"}, stock.Internal}, {"", stock.Variant{ID: "X", Rev: "r"}, stock.Internal},
			{"sale-1", stock.Variant{ID: "drafts.X", Rev: "r"}, stock.Invalid}} {
			if err := e.client.MarkUnavailable(t.Context(), call.txID, call.pub); stock.ErrorCode(err) != call.want {
				t.Errorf("%+v: %v", call, err)
			}
		}
		if n := len(e.rec.requests()); n != 0 {
			t.Errorf("%d requests", n)
		}
	})
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
			pub, err := e.client.Published(t.Context(), "X")
			if err != nil {
				errs[i] = err
				return
			}
			if !pub.IsAvailable() {
				errs[i] = stock.ErrRevisionMismatch // it already sold
				return
			}
			errs[i] = e.client.MarkUnavailable(t.Context(), fmt.Sprintf("sale-%d", i), *pub)
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
