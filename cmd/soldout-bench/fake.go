package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"soldout/internal/sanity/memlake"
)

const (
	fakeDataset = "production"
	fakeToken   = "bench-token-not-a-secret"
)

// fake is the Sanity stand-in: memlake behind a real HTTP server on
// loopback, with an optional delay per request and a count of requests per
// endpoint, so that a run can report how many Sanity requests an event costs.
type fake struct {
	lake    *memlake.Lake
	latency time.Duration
	url     string
	srv     *http.Server
	doc     atomic.Int64
	query   atomic.Int64
	mutate  atomic.Int64
	other   atomic.Int64
}

func startFake(latency time.Duration) (*fake, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fake{lake: memlake.New(fakeDataset, fakeToken), latency: latency, url: "http://" + ln.Addr().String()}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go func() {
		if err := f.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(fmt.Sprintf("sanity fake: %v", err))
		}
	}()
	return f, nil
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.Contains(p, "/data/doc/"):
		f.doc.Add(1)
	case strings.Contains(p, "/data/query/"):
		f.query.Add(1)
	case strings.Contains(p, "/data/mutate/"):
		f.mutate.Add(1)
	default:
		f.other.Add(1)
	}
	if f.latency > 0 {
		t := time.NewTimer(f.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	f.lake.ServeHTTP(w, r)
}

// startSeeded starts a fake holding n artworks under a fresh prefix.
func startSeeded(latency time.Duration, n int) (*fake, string, error) {
	f, err := startFake(latency)
	if err != nil {
		return nil, "", err
	}
	prefix := randomHex(4)
	f.seed(prefix, n)
	return f, prefix, nil
}

func (f *fake) close() { _ = f.srv.Shutdown(context.Background()) }

// requests is a snapshot of the request counts.
type requests struct {
	Doc    int64 `json:"doc"`
	Query  int64 `json:"query"`
	Mutate int64 `json:"mutate"`
	Other  int64 `json:"other"`
}

func (f *fake) requests() requests {
	return requests{f.doc.Load(), f.query.Load(), f.mutate.Load(), f.other.Load()}
}

func (r requests) total() int64 { return r.Doc + r.Query + r.Mutate + r.Other }

func (r requests) minus(s requests) requests {
	return requests{r.Doc - s.Doc, r.Query - s.Query, r.Mutate - s.Mutate, r.Other - s.Other}
}

// artworkID names the i-th artwork of a run; prefix keeps runs apart.
func artworkID(prefix string, i int) string { return "bench-" + prefix + "-" + strconv.Itoa(i) }

// seed stores count available, published artworks without drafts: the
// common case, a sale of a piece nobody is editing.
func (f *fake) seed(prefix string, count int) {
	for i := range count {
		f.lake.Put(map[string]any{"_id": artworkID(prefix, i), "_type": "artwork", "title": "Bench " + strconv.Itoa(i),
			"isAvailable": true, "price": 1200, "currency": "eur"})
	}
}

// stillAvailable counts the artworks [from, from+count) of prefix that are
// not marked unavailable: after a run in which every event was answered
// "sold", it must be zero.
func (f *fake) stillAvailable(prefix string, from, count int) int {
	n := 0
	for i := from; i < from+count; i++ {
		if d, ok := f.lake.Get(artworkID(prefix, i)); !ok || d["isAvailable"] != false {
			n++
		}
	}
	return n
}
