package zzdebug

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"soldout/internal/sanity"
	"soldout/internal/sanity/memlake"
	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
)

func TestX(t *testing.T) {
	lake := memlake.New("production", "tok")
	rev := lake.Put(map[string]any{"_id": "a1", "_type": "artwork", "isAvailable": true})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lake.ServeHTTP(w, r)
		if sanitytest.IsMutate(r) {
			once.Do(func() { lake.Put(map[string]any{"_id": "drafts.a1", "_type": "artwork", "isAvailable": true}) })
		}
	}))
	defer srv.Close()
	c, _ := sanity.New(sanity.Config{ProjectID: "test", Dataset: "production", Token: "tok", Host: srv.URL})
	err := c.SetAvailable(t.Context(), "tx1", false, []stock.Variant{{ID: "a1", Rev: rev}})
	t.Log(err)
	d, err := c.Draft(t.Context(), "a1")
	t.Logf("%+v %v", d, err)
	if d != nil {
		t.Log(*d.Available)
	}
}
