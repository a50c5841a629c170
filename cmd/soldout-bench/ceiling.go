package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"time"

	"soldout/internal/sanity"
)

// The ceiling is a minimal program that makes, per event, exactly the Sanity
// requests soldout makes for a sale of an artwork without draft or release
// versions — and nothing else: no signature, no decoding, no journal, no
// rules. It is measured the way soldout is: it runs as a child process (the
// bench binary run as `soldout-bench ceiling-worker`) behind a net/http
// server, and the same load generator sends it the same signed events over
// loopback while the same Sanity fake answers it. soldout can only be
// slower; how much slower is soldout's own cost.
//
// Per event, as soldout's stock.Fulfiller and sanity.Client do:
//  1. GET doc/<id>,drafts.<id> and, concurrently, GET query versionOf(<id>);
//  2. POST mutate: the guarded patch isAvailable=false;
//  3. GET doc/drafts.<id>: the draft read again after the write.

// ceilingVersionsQuery is the query soldout's sanity.Client sends.
const ceilingVersionsQuery = `*[sanity::versionOf($id)]{_id}`

type ceilingClient struct {
	client                      *http.Client
	docURL, queryURL, mutateURL string
	auth                        []string
}

func newCeilingClient(base string, c int) *ceilingClient {
	v := "/v" + sanity.DefaultAPIVersion + "/data/"
	return &ceilingClient{
		client:    newClient(c),
		docURL:    base + v + "doc/" + fakeDataset + "/",
		queryURL:  base + v + "query/" + fakeDataset + "?query=" + url.QueryEscape(ceilingVersionsQuery) + "&%24id=",
		mutateURL: base + v + "mutate/" + fakeDataset + "?returnIds=true&visibility=sync",
		auth:      []string{"Bearer " + fakeToken},
	}
}

func (cc *ceilingClient) call(ctx context.Context, method, target string, body []byte) ([]byte, outcome) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, failed("%v", err)
	}
	req.Header["Authorization"] = cc.auth
	req.Header["Accept"] = jsonType
	if body != nil {
		req.Header["Content-Type"] = jsonType
	}
	resp, err := cc.client.Do(req)
	if err != nil {
		return nil, failed("%v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, failed("%v", err)
	}
	if resp.StatusCode/100 != 2 {
		o := failed("%s %d %s", method, resp.StatusCode, bytes.TrimSpace(b))
		o.non2xx = true
		return nil, o
	}
	return b, outcome{ok: true}
}

func (cc *ceilingClient) event(ctx context.Context, id string) outcome {
	query := make(chan outcome, 1)
	go func() {
		_, o := cc.call(ctx, http.MethodGet, cc.queryURL+url.QueryEscape(`"`+id+`"`)+"&perspective=raw", nil)
		query <- o
	}()
	doc, o := cc.call(ctx, http.MethodGet, cc.docURL+id+",drafts."+id, nil)
	if q := <-query; o.ok && !q.ok {
		o = q
	}
	if !o.ok {
		return o
	}
	// The one thing that has to be read: the revision that guards the write.
	var docs struct {
		Documents []struct {
			ID  string `json:"_id"`
			Rev string `json:"_rev"`
		} `json:"documents"`
	}
	if err := json.Unmarshal(doc, &docs); err != nil || len(docs.Documents) == 0 {
		return failed("doc %s: %v %s", id, err, doc)
	}
	mutation := fmt.Appendf(nil, `{"mutations":[{"patch":{"id":%q,"ifRevisionID":%q,"set":{"isAvailable":false}}}],"transactionId":%q}`,
		id, docs.Documents[0].Rev, "ceiling-"+id)
	if _, o := cc.call(ctx, http.MethodPost, cc.mutateURL, mutation); !o.ok {
		return o
	}
	_, o = cc.call(ctx, http.MethodGet, cc.docURL+"drafts."+id, nil)
	return o
}

var (
	artworkKey    = []byte(`"artworkId":"`)
	ceilingAnswer = []byte(`{"received":true,"outcome":"sold"}`)
)

// ServeHTTP takes the artwork out of the event by a byte search, not by
// decoding it — the least a program can do to know what to patch — makes
// the Sanity requests and answers as soldout does.
func (cc *ceilingClient) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	_, rest, found := bytes.Cut(body, artworkKey)
	id, _, closed := bytes.Cut(rest, []byte(`"`))
	if err != nil || !found || !closed {
		http.Error(w, "no artworkId in the event", http.StatusBadRequest)
		return
	}
	if o := cc.event(r.Context(), string(id)); !o.ok {
		http.Error(w, o.failure, http.StatusBadGateway)
		return
	}
	w.Header()["Content-Type"] = jsonType
	_, _ = w.Write(ceilingAnswer)
}

// ceilingHandler serves the two routes the load generator uses.
func ceilingHandler(cc *ceilingClient) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("POST /api/webhook", cc)
	return mux
}

// runCeilingWorker is the child side of the ceiling: a server until SIGTERM.
func runCeilingWorker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ceiling-worker", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	base := fs.String("sanity", "", "the fake's base URL")
	c := fs.Int("c", 1, "concurrency, for the size of the connection pool")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: ceilingHandler(newCeilingClient(*base, *c)), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ceilingRun measures the ceiling worker as soldoutRun measures soldout.
func ceilingRun(ctx context.Context, o *options, c int) (runResult, error) {
	self, err := os.Executable()
	if err != nil {
		return runResult{}, err
	}
	return measure(ctx, o, c, "ceiling", func(addr, sanityURL, _ string) (*server, error) {
		cmd := exec.Command(self, "ceiling-worker", "-addr", addr, "-sanity", sanityURL, "-c", strconv.Itoa(c))
		cmd.Env = runtimeEnv()
		return startChild(cmd, addr)
	})
}
