package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"soldout/internal/sanity/memlake"
	"soldout/internal/sanity/sanitytest"
)

const (
	sanityDataset = "production"
	sanityToken   = "sk-e2e-sanity-token"
)

// fakeSanity is one memlake dataset behind a chain of sanitytest faults,
// reached through one front door (listener) per replica slot, so that every
// mutate request is known by the replica that sent it.
type fakeSanity struct {
	lake    *memlake.Lake
	faulted http.Handler
	doors   []*httptest.Server
	closing chan struct{} // ends held requests when the test ends

	mu      sync.Mutex
	mutates []mutateCall
	hold    chan heldMutate // armed by holdNextMutate; nil when not
}

// mutateCall is one mutate request as the fake saw it.
type mutateCall struct {
	at time.Time // arrival
	// status is the answer's; 0 when a fault dropped the connection after
	// the commit, and minus the dataset's when the answer was held back.
	status int
}

// heldMutate is a mutate request that was committed and then left
// unanswered: from the sender's side, a write in flight.
type heldMutate struct {
	slot int
	txID string
	ids  []string
}

// newFakeSanity serves a fresh dataset to slots replicas. faults are
// applied outermost first; each is a sanitytest.Faulty layer, so a chain
// mixes fault kinds.
func newFakeSanity(t *testing.T, slots int, faults ...sanitytest.Options) *fakeSanity {
	f := &fakeSanity{lake: memlake.New(sanityDataset, sanityToken), closing: make(chan struct{})}
	var h http.Handler = f.lake
	for i := len(faults) - 1; i >= 0; i-- {
		h = sanitytest.Faulty(h, faults[i])
	}
	f.faulted = h
	for slot := range slots {
		srv := httptest.NewServer(door{f, slot})
		t.Cleanup(srv.Close) // after closing (cleanups run last first)
		f.doors = append(f.doors, srv)
	}
	t.Cleanup(func() { close(f.closing) })
	return f
}

// url is the SANITY_API_HOST of a replica slot.
func (f *fakeSanity) url(slot int) string { return f.doors[slot].URL }

// putArtworks stores available artworks, with a draft for those in drafts.
func (f *fakeSanity) putArtworks(ids []string, drafts map[string]bool) {
	for _, id := range ids {
		f.lake.Put(map[string]any{"_id": id, "_type": "artwork", "title": id, "isAvailable": true})
		if drafts[id] {
			f.lake.Put(map[string]any{"_id": "drafts." + id, "_type": "artwork", "title": id + " (draft)", "isAvailable": true})
		}
	}
}

// holdNextMutate makes the next mutate request commit and then hang without
// an answer until its sender gives up or dies. The channel receives it.
func (f *fakeSanity) holdNextMutate() <-chan heldMutate {
	ch := make(chan heldMutate, 1)
	f.mu.Lock()
	f.hold = ch
	f.mu.Unlock()
	return ch
}

// calls returns the mutate requests seen so far, in arrival order.
func (f *fakeSanity) calls() []mutateCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]mutateCall(nil), f.mutates...)
}

type door struct {
	f    *fakeSanity
	slot int
}

func (d door) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !sanitytest.IsMutate(r) {
		d.f.faulted.ServeHTTP(w, r)
		return
	}
	call := mutateCall{at: time.Now()}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	d.f.mu.Lock()
	hold := d.f.hold
	d.f.hold = nil
	d.f.mu.Unlock()
	if hold != nil {
		// Straight to the dataset, past the faults: the write must commit.
		rec := httptest.NewRecorder()
		d.f.lake.ServeHTTP(rec, r)
		call.status = -rec.Code
		d.f.record(call)
		txID, ids := parseMutate(body)
		hold <- heldMutate{slot: d.slot, txID: txID, ids: ids}
		select {
		case <-r.Context().Done():
		case <-d.f.closing:
		}
		panic(http.ErrAbortHandler) // drop the connection unanswered
	}

	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		call.status = sw.status // still 0 if a fault dropped the connection
		d.f.record(call)
	}()
	d.f.faulted.ServeHTTP(sw, r)
}

func (f *fakeSanity) record(c mutateCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutates = append(f.mutates, c)
}

// parseMutate reads the transaction id and the patched ids of a mutate body
// as soldout sends it.
func parseMutate(body []byte) (txID string, ids []string) {
	var m struct {
		TransactionID string `json:"transactionId"`
		Mutations     []struct {
			Patch *struct {
				ID string `json:"id"`
			} `json:"patch"`
		} `json:"mutations"`
	}
	_ = json.Unmarshal(body, &m)
	for _, mu := range m.Mutations {
		if mu.Patch != nil {
			ids = append(ids, mu.Patch.ID)
		}
	}
	return m.TransactionID, ids
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// available reports a document's isAvailable as soldout reads it: a missing
// field is available.
func available(doc map[string]any) bool {
	v, ok := doc["isAvailable"].(bool)
	return !ok || v
}

// flips counts, per document id, the committed changes that made it
// unavailable: the writes a sale is allowed exactly one of.
func (f *fakeSanity) flips() map[string]int {
	n := map[string]int{}
	for _, tx := range f.lake.Transactions() {
		for _, c := range tx.Changes {
			if c.Before != nil && c.After != nil && available(c.Before) && !available(c.After) {
				n[c.ID]++
			}
		}
	}
	return n
}
