package sanity_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"soldout/internal/sanity"
	"soldout/internal/sanity/memlake"
	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
)

const token = "sk-test-secret"

// request is what the recorder saw.
type request struct {
	method, path, rawQuery, auth string
	query                        url.Values
	body                         string
}

// recorder remembers every request that reaches next.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []request
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.URL.Query(), string(body)})
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, r)
}

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.reqs...)
}

type env struct {
	lake   *memlake.Lake
	faults *sanitytest.Handler
	rec    *recorder
	client *sanity.Client
}

// newEnv serves a memlake through sanitytest faults and a recorder.
func newEnv(t testing.TB, opts sanitytest.Options, configure ...func(*sanity.Config)) *env {
	t.Helper()
	e := &env{lake: memlake.New("production", token)}
	e.faults = sanitytest.Faulty(e.lake, opts)
	e.rec = &recorder{next: e.faults}
	srv := httptest.NewServer(e.rec)
	t.Cleanup(srv.Close)
	e.client = newClient(t, srv.URL, configure...)
	return e
}

func newClient(t testing.TB, host string, configure ...func(*sanity.Config)) *sanity.Client {
	t.Helper()
	cfg := sanity.Config{ProjectID: "p1", Dataset: "production", Token: token, Host: host, MutationsPerSecond: math.Inf(1)}
	for _, f := range configure {
		f(&cfg)
	}
	c, err := sanity.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// canned answers every request with one response and counts them.
type canned struct {
	status  int
	headers map[string]string
	body    string
	calls   atomic.Int32
}

func (c *canned) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.calls.Add(1)
	for k, v := range c.headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(c.status)
	_, _ = io.WriteString(w, c.body)
}

func cannedClient(t *testing.T, h *canned) *sanity.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return newClient(t, srv.URL)
}

func putArtwork(lake *memlake.Lake, id string, fields map[string]any) string {
	doc := map[string]any{"_id": id, "_type": "artwork", "title": "Untitled"}
	for k, v := range fields {
		doc[k] = v
	}
	return lake.Put(doc)
}

func TestNew(t *testing.T) {
	good := sanity.Config{ProjectID: "ab12cd34", Dataset: "production", Token: "t"}
	tests := []struct {
		name   string
		modify func(*sanity.Config)
		ok     bool
	}{
		{"defaults", func(*sanity.Config) {}, true},
		{"explicit version with v", func(c *sanity.Config) { c.APIVersion = "v2025-03-01" }, true},
		{"dataset alias", func(c *sanity.Config) { c.Dataset = "~live" }, true},
		{"local host without token", func(c *sanity.Config) { c.Host = "http://127.0.0.1:7777/"; c.Token = "" }, true},
		{"no project", func(c *sanity.Config) { c.ProjectID = "" }, false},
		{"project with a slash", func(c *sanity.Config) { c.ProjectID = "ab/cd" }, false},
		{"project with a dot", func(c *sanity.Config) { c.ProjectID = "ab.evil.com" }, false},
		{"no dataset", func(c *sanity.Config) { c.Dataset = "" }, false},
		{"dataset with a slash", func(c *sanity.Config) { c.Dataset = "prod/../x" }, false},
		{"uppercase dataset", func(c *sanity.Config) { c.Dataset = "Production" }, false},
		{"version not a date", func(c *sanity.Config) { c.APIVersion = "latest" }, false},
		{"version without release versions", func(c *sanity.Config) { c.APIVersion = "2021-10-21" }, false},
		{"cdn host", func(c *sanity.Config) { c.Host = "https://ab12cd34.apicdn.sanity.io" }, false},
		{"host with a query", func(c *sanity.Config) { c.Host = "http://127.0.0.1:7777/?x=1" }, false},
		{"host not a URL", func(c *sanity.Config) { c.Host = "127.0.0.1:7777" }, false},
		{"host with credentials", func(c *sanity.Config) { c.Host = "https://user:abc@example.com" }, false},
		{"https proxy", func(c *sanity.Config) { c.Host = "https://sanity-proxy.internal:8443" }, true},
		{"plain http on localhost", func(c *sanity.Config) { c.Host = "http://localhost:7777" }, true},
		{"plain http on IPv6 loopback", func(c *sanity.Config) { c.Host = "http://[::1]:7777" }, true},
		{"plain http to a remote host with a token", func(c *sanity.Config) { c.Host = "http://sanity-proxy.internal:8080" }, false},
		{"plain http to a remote address with a token", func(c *sanity.Config) { c.Host = "http://10.0.0.7:8080" }, false},
		{"token not ASCII", func(c *sanity.Config) { c.Token = "abcé" }, false},
		{"no token against Sanity", func(c *sanity.Config) { c.Token = "" }, false},
		{"token with a newline", func(c *sanity.Config) { c.Token = "abc\nX-Evil: 1" }, false},
		{"negative rate", func(c *sanity.Config) { c.MutationsPerSecond = -1 }, false},
		{"a rate so slow it would overflow the interval", func(c *sanity.Config) { c.MutationsPerSecond = 1e-10 }, false},
		{"the slowest rate", func(c *sanity.Config) { c.MutationsPerSecond = sanity.MinMutationsPerSecond }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.modify(&cfg)
			_, err := sanity.New(cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && stock.ErrorCode(err) != stock.Misconfigured {
				t.Errorf("code %s, want misconfigured", stock.ErrorCode(err))
			}
			if err != nil && strings.Contains(err.Error(), "abc") {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestDefaultHostIsTheLiveAPI: without Host every request goes to
// <project>.api.sanity.io over HTTPS, never the CDN.
func TestDefaultHostIsTheLiveAPI(t *testing.T) {
	var mu sync.Mutex
	var urls []string
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		urls = append(urls, r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
		mu.Unlock()
		body := `{"result":[],"documents":[],"transactionId":"t","results":[]}`
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	})}
	c, err := sanity.New(sanity.Config{ProjectID: "ab12cd34", Dataset: "production", Token: "t", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Artwork(t.Context(), "X"); err != nil {
		t.Fatal(err)
	}
	if err := c.DryRunWrite(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(urls) != 3 {
		t.Fatalf("requests %v", urls)
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, "https://ab12cd34.api.sanity.io/v2025-02-19/data/") || strings.Contains(u, "apicdn") {
			t.Errorf("request to %s", u)
		}
	}
}

// TestRequestShapes pins paths, parameters, headers and bodies.
func TestRequestShapes(t *testing.T) {
	e := newEnv(t, sanitytest.Options{})
	rev := putArtwork(e.lake, "X", map[string]any{"isAvailable": true})
	ctx := t.Context()

	if _, err := e.client.Artwork(ctx, "X"); err != nil {
		t.Fatal(err)
	}
	reqs := e.rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("Artwork sent %d requests", len(reqs))
	}
	var doc, query request
	for _, r := range reqs {
		if strings.Contains(r.path, "/data/doc/") {
			doc = r
		} else {
			query = r
		}
	}
	if doc.method != "GET" || doc.path != "/v2025-02-19/data/doc/production/X,drafts.X" || doc.rawQuery != "" {
		t.Errorf("doc request %+v", doc)
	}
	if query.method != "GET" || query.path != "/v2025-02-19/data/query/production" ||
		query.query.Get("query") != "*[sanity::versionOf($id)]{_id}" ||
		query.query.Get("$id") != `"X"` || query.query.Get("perspective") != "raw" {
		t.Errorf("query request %+v", query)
	}

	if err := e.client.SetAvailable(ctx, "tx-1", false, []stock.Variant{{ID: "X", Rev: rev}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Draft(ctx, "X"); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DryRunWrite(ctx); err != nil {
		t.Fatal(err)
	}
	reqs = e.rec.requests()[2:]
	mut, draft, ping, dry := reqs[0], reqs[1], reqs[2], reqs[3]
	if mut.method != "POST" || mut.path != "/v2025-02-19/data/mutate/production" || mut.rawQuery != "returnIds=true&visibility=sync" {
		t.Errorf("mutate request %+v", mut)
	}
	wantBody := `{"mutations":[{"patch":{"id":"X","ifRevisionID":"` + rev + `","set":{"isAvailable":false}}}],"transactionId":"tx-1"}`
	if mut.body != wantBody {
		t.Errorf("mutate body\n%s\nwant\n%s", mut.body, wantBody)
	}
	if draft.method != "GET" || draft.path != "/v2025-02-19/data/doc/production/drafts.X" {
		t.Errorf("draft request %+v", draft)
	}
	if ping.query.Get("query") != "count(*[_id == $id])" || ping.query.Get("$id") == "" {
		t.Errorf("ping request %+v", ping)
	}
	if dry.rawQuery != "returnIds=true&visibility=sync&dryRun=true" {
		t.Errorf("dry run request %+v", dry)
	}
	for _, r := range e.rec.requests() {
		if r.auth != "Bearer "+token {
			t.Errorf("%s %s: Authorization %q", r.method, r.path, r.auth)
		}
	}
}

func TestQueryParamsAndLongQueries(t *testing.T) {
	e := newEnv(t, sanitytest.Options{})
	putArtwork(e.lake, "X", nil)
	var n int
	// A hostile value stays a JSON string parameter.
	if err := e.client.Query(t.Context(), "count(*[_id == $id])", map[string]any{"id": `X"] || true || ["`}, "raw", &n); err != nil || n != 0 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if err := e.client.Query(t.Context(), "count(*[_id == $id])", map[string]any{"id": "X"}, "", &n); err != nil || n != 1 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	long := strings.Repeat("x", 9000)
	if err := e.client.Query(t.Context(), "count(*[_id == $id])", map[string]any{"id": long}, "raw", &n); err != nil || n != 0 {
		t.Fatalf("long: n=%d err=%v", n, err)
	}
	reqs := e.rec.requests()
	last := reqs[len(reqs)-1]
	if last.method != "POST" || last.query.Get("perspective") != "raw" || !strings.Contains(last.body, `"params":{"id":"`+long+`"}`) {
		t.Errorf("long query sent as %s %s", last.method, last.rawQuery)
	}
	if err := e.client.Query(t.Context(), "count(*[_id == $id])", map[string]any{"id": "X"}, "", nil); err != nil {
		t.Errorf("a result discarded (out nil): %v", err)
	}
	if err := e.client.Query(t.Context(), "count(*)", map[string]any{"bad-name": 1}, "", nil); stock.ErrorCode(err) != stock.Invalid {
		t.Errorf("bad parameter name: %v", err)
	}
	// Anything beyond soldout's GROQ is a 400 from memlake: a bug, Internal.
	if err := e.client.Query(t.Context(), `*[_type == "artwork"]`, nil, "", nil); stock.ErrorCode(err) != stock.Internal {
		t.Errorf("unsupported query: %v", err)
	}
}

// TestHostileIDs: ids that could address other documents never reach the
// server.
func TestHostileIDs(t *testing.T) {
	e := newEnv(t, sanitytest.Options{})
	hostile := []string{
		"", "a,b", "X,drafts.Y", "a/b", "../x", "..", ".", "a..b", ".a", "a.", "-a", "a.-b",
		`a"b`, "a'b", "a b", "a%2Cb", "a?b", "a#b", "a\nb", "é", strings.Repeat("a", 5000),
		strings.Repeat("a", 129), "drafts.X", "versions.r1.X", "drafts.",
	}
	ctx := t.Context()
	for _, id := range hostile {
		if _, err := e.client.Artwork(ctx, id); stock.ErrorCode(err) != stock.Invalid {
			t.Errorf("Artwork(%.20q): %v", id, err)
		}
		if _, err := e.client.Draft(ctx, id); stock.ErrorCode(err) != stock.Invalid {
			t.Errorf("Draft(%.20q): %v", id, err)
		}
		if id == "drafts.X" || id == "versions.r1.X" {
			continue // valid variant ids for the low-level calls
		}
		if _, err := e.client.Documents(ctx, "ok", id); stock.ErrorCode(err) != stock.Invalid {
			t.Errorf("Documents(%.20q): %v", id, err)
		}
		if err := e.client.SetAvailable(ctx, "tx", false, []stock.Variant{{ID: "ok", Rev: "r"}, {ID: id, Rev: "r"}}); stock.ErrorCode(err) != stock.Invalid {
			t.Errorf("SetAvailable(%.20q): %v", id, err)
		}
		if _, err := e.client.Mutate(ctx, sanity.MutateRequest{Mutations: []sanity.Mutation{{Delete: &sanity.Delete{ID: id}}}}); stock.ErrorCode(err) != stock.Invalid {
			t.Errorf("Mutate delete(%.20q): %v", id, err)
		}
	}
	for _, txID := range []string{"a b", "a.b", `a"b`, strings.Repeat("t", 129)} {
		if err := e.client.SetAvailable(ctx, txID, false, []stock.Variant{{ID: "ok", Rev: "r"}}); stock.ErrorCode(err) != stock.Invalid {
			t.Errorf("transaction id %.20q: %v", txID, err)
		}
	}
	if n := len(e.rec.requests()); n != 0 {
		t.Errorf("%d requests reached the server: %+v", n, e.rec.requests()[0])
	}
	// The variant forms are fine for the low-level read.
	if _, err := e.client.Documents(ctx, "drafts.X", "versions.r1.X"); err != nil {
		t.Errorf("Documents of variant ids: %v", err)
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		code     stock.Code
		mention  []string // in the error text
		mismatch bool
	}{
		{"401 bad token", 401, `{"statusCode":401,"error":"Unauthorized","message":"Session not found","errorCode":"SIO-401-ANF"}`,
			stock.Misconfigured, []string{"Editor", "sanity.io/manage", "Tokens", "p1", "SIO-401-ANF"}, false},
		{"403 no permission", 403, `{"error":{"type":"mutationError","description":"Mutation(s) failed with 1 error(s)","items":[{"index":0,"error":{"type":"insufficientPermissionsError","description":"Insufficient permissions; permission \"update\" required"}}]}}`,
			stock.Misconfigured, []string{"Editor", "sanity.io/manage", "drafts"}, false},
		{"400 validation", 400, `{"error":{"type":"validationError","description":"Malformed document ID"}}`,
			stock.Internal, nil, false},
		{"404 dataset", 404, `{"error":{"type":"notFoundError","description":"Dataset not found"}}`,
			stock.Misconfigured, []string{"dataset production"}, false},
		{"413 too large", 413, `{"error":{"type":"httpPayloadTooLarge","description":"too large"}}`,
			stock.Internal, nil, false},
		{"409 revision mismatch", 409, `{"error":{"type":"mutationError","description":"Mutation failed","items":[{"index":0,"error":{"type":"documentRevisionIDDoesNotMatchError","id":"X","currentRevisionID":"b","expectedRevisionID":"a"}}]}}`,
			stock.Conflict, nil, true},
		{"409 guarded patch of a vanished doc", 409, `{"error":{"type":"mutationError","description":"Mutation failed","items":[{"index":0,"error":{"type":"documentNotFoundError","id":"X"}}]}}`,
			stock.Conflict, nil, true},
		{"409 other conflict", 409, `{"error":{"type":"mutationError","description":"Mutation failed","items":[{"index":0,"error":{"type":"documentAlreadyExistsError","id":"X"}}]}}`,
			stock.Conflict, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &canned{status: tt.status, body: tt.body}
			c := cannedClient(t, h)
			err := c.SetAvailable(t.Context(), "tx-1", false, []stock.Variant{{ID: "X", Rev: "a"}})
			if stock.ErrorCode(err) != tt.code {
				t.Fatalf("code %q, want %q: %v", stock.ErrorCode(err), tt.code, err)
			}
			if errors.Is(err, stock.ErrRevisionMismatch) != tt.mismatch {
				t.Errorf("errors.Is(ErrRevisionMismatch) = %v: %v", !tt.mismatch, err)
			}
			var ae *sanity.APIError
			if !errors.As(err, &ae) || ae.Status != tt.status {
				t.Errorf("no *APIError with status %d in %v", tt.status, err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error lacks %q: %v", m, err)
				}
			}
			if strings.Contains(err.Error(), token) {
				t.Error("error shows the token")
			}
			if n := h.calls.Load(); n != 1 {
				t.Errorf("%d requests; a %d must not be retried", n, tt.status)
			}
		})
	}

	t.Run("unguarded patch of a missing doc is no revision mismatch", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{})
		_, err := e.client.Mutate(t.Context(), sanity.MutateRequest{Mutations: []sanity.Mutation{
			{Patch: &sanity.Patch{ID: "nope", Set: map[string]any{"a": 1}}},
		}})
		if stock.ErrorCode(err) != stock.Conflict || errors.Is(err, stock.ErrRevisionMismatch) {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("a guard that finds our own transaction's revision is a success", func(t *testing.T) {
		c := cannedClient(t, &canned{status: 409, body: `{"error":{"type":"mutationError","description":"Mutation failed","items":[{"index":0,"error":{"type":"documentRevisionIDDoesNotMatchError","id":"X","currentRevisionID":"tx-1","expectedRevisionID":"a"}}]}}`})
		if err := c.SetAvailable(t.Context(), "tx-1", false, []stock.Variant{{ID: "X", Rev: "a"}}); err != nil {
			t.Errorf("err = %v", err)
		}
	})

	// Only Sanity's own answer to this transaction says it committed: a
	// body naming transactionAlreadyExistsError under another status than
	// 409 (a proxy's, a 5xx after the retries), or a 2xx for another
	// transaction, would record a sale that Sanity never saw.
	for _, tt := range []struct {
		name   string
		status int
		body   string
	}{
		{"already exists under a 503", 503, `{"error":{"type":"transactionAlreadyExistsError","description":"Transaction already exists"}}`},
		{"already exists under a 400", 400, `{"error":{"type":"transactionAlreadyExistsError","description":"Transaction already exists"}}`},
		{"our revision under a 400", 400, `{"error":{"type":"mutationError","items":[{"index":0,"error":{"type":"documentRevisionIDDoesNotMatchError","id":"X","currentRevisionID":"tx-1","expectedRevisionID":"a"}}]}}`},
		{"a 200 for another transaction", 200, `{"transactionId":"someone-elses","results":[{"id":"X","operation":"update"}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cannedClient(t, &canned{status: tt.status, body: tt.body})
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			if err := c.SetAvailable(ctx, "tx-1", false, []stock.Variant{{ID: "X", Rev: "a"}}); err == nil {
				t.Errorf("a %d %s taken for the write", tt.status, tt.body)
			}
		})
	}

	t.Run("token that may not read drafts", func(t *testing.T) {
		c := cannedClient(t, &canned{status: 200, body: `{"documents":[],"omitted":[{"id":"drafts.X","reason":"permission"}]}`})
		_, err := c.Documents(t.Context(), "X", "drafts.X")
		if stock.ErrorCode(err) != stock.Misconfigured || !strings.Contains(err.Error(), "Editor") {
			t.Errorf("err = %v", err)
		}
	})

	// A 2xx that is not Sanity's answer says nothing about the dataset:
	// "nothing there" would let a sale or a release answer 200 with Sanity
	// left wrong. It is Unavailable (Stripe retries the event), counted as
	// bad_response, and not retried in place.
	for _, tt := range []struct {
		name, body string
		call       func(c *sanity.Client) error
	}{
		{"undecodable doc answer", `{"documents":`, func(c *sanity.Client) error { _, err := c.Draft(t.Context(), "X"); return err }},
		{"a proxy's HTML page", `<html><body>OK</body></html>`, func(c *sanity.Client) error { _, err := c.Draft(t.Context(), "X"); return err }},
		{"doc answer without documents", `{}`, func(c *sanity.Client) error { _, err := c.Documents(t.Context(), "X"); return err }},
		{"query answer without result", `{"ms":1}`, func(c *sanity.Client) error {
			var out []map[string]any
			return c.Query(t.Context(), `*[_id == $id]`, map[string]any{"id": "X"}, "raw", &out)
		}},
		{"mutate answer without transactionId", `{}`, func(c *sanity.Client) error {
			_, err := c.Mutate(t.Context(), sanity.MutateRequest{TransactionID: "tx-1", Mutations: []sanity.Mutation{{Patch: &sanity.Patch{ID: "X", Set: map[string]any{"a": 1}}}}})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := &canned{status: 200, body: tt.body}
			if err := tt.call(cannedClient(t, h)); stock.ErrorCode(err) != stock.Unavailable || h.calls.Load() != 1 {
				t.Errorf("err = %v after %d requests, want unavailable after 1", err, h.calls.Load())
			}
		})
	}
	t.Run("a query that matched nothing", func(t *testing.T) {
		var out *map[string]any
		c := cannedClient(t, &canned{status: 200, body: `{"ms":1,"result":null}`})
		if err := c.Query(t.Context(), `*[_id == $id][0]`, map[string]any{"id": "X"}, "raw", &out); err != nil || out != nil {
			t.Errorf("err = %v, out = %v", err, out)
		}
	})
}

func TestMisconfiguredAgainstMemlake(t *testing.T) {
	e := newEnv(t, sanitytest.Options{}, func(c *sanity.Config) { c.Token = "wrong" })
	for name, err := range map[string]error{
		"Ping":        e.client.Ping(t.Context()),
		"DryRunWrite": e.client.DryRunWrite(t.Context()),
	} {
		var ae *sanity.APIError
		if stock.ErrorCode(err) != stock.Misconfigured || !errors.As(err, &ae) || ae.ErrorCode != "SIO-401-ANF" {
			t.Errorf("%s: %v", name, err)
		}
	}
	wrongDataset := newEnv(t, sanitytest.Options{}, func(c *sanity.Config) { c.Dataset = "staging" })
	if err := wrongDataset.client.Ping(t.Context()); stock.ErrorCode(err) != stock.Misconfigured {
		t.Errorf("wrong dataset: %v", err)
	}
}

func TestPingAndDryRunWrite(t *testing.T) {
	e := newEnv(t, sanitytest.Options{})
	if err := e.client.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DryRunWrite(t.Context()); err != nil {
		t.Fatal(err)
	}
	if txs := e.lake.Transactions(); len(txs) != 0 {
		t.Errorf("the dry run wrote: %+v", txs)
	}
	if _, ok := e.lake.Get("soldout-check"); ok {
		t.Error("the dry run created its document")
	}
}

func TestRetriedUntilSuccess(t *testing.T) {
	tests := []struct {
		name  string
		fault sanitytest.Fault
	}{
		{"500", sanitytest.Error500},
		{"503", sanitytest.Error503},
		{"commit, then the connection drops", sanitytest.CommitThenDrop},
		{"commit, then a proxy answers 502", sanitytest.CommitThen502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sanitytest.Options{Sequence: []sanitytest.Fault{tt.fault}})
			rev := putArtwork(e.lake, "X", map[string]any{"isAvailable": true})
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if err := e.client.SetAvailable(ctx, "tx-1", false, []stock.Variant{{ID: "X", Rev: rev}}); err != nil {
				t.Fatal(err)
			}
			doc, _ := e.lake.Get("X")
			if doc["isAvailable"] != false || doc["_rev"] != "tx-1" || e.lake.Writes("X") != 1 || e.faults.Seen() != 2 {
				t.Errorf("doc %v, %d writes, %d requests", doc, e.lake.Writes("X"), e.faults.Seen())
			}
		})
	}

	for name, body := range map[string]string{
		"transactionConflictError":                    `{"error":{"type":"transactionConflictError","description":"Transaction conflict"}}`,
		"transactionConflictError in a mutationError": `{"error":{"type":"mutationError","description":"Mutation failed: Transaction conflict","items":[{"index":0,"error":{"type":"transactionConflictError","description":"Transaction conflict"}}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			lake := memlake.New("production", token)
			rev := putArtwork(lake, "X", nil)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					w.WriteHeader(409)
					_, _ = io.WriteString(w, body)
					return
				}
				lake.ServeHTTP(w, r)
			}))
			defer srv.Close()
			c := newClient(t, srv.URL)
			if err := c.SetAvailable(t.Context(), "tx-1", false, []stock.Variant{{ID: "X", Rev: rev}}); err != nil || calls.Load() != 2 {
				t.Errorf("err %v after %d requests", err, calls.Load())
			}
		})
	}

	t.Run("reads are retried too", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{
			Sequence: []sanitytest.Fault{sanitytest.Error503, sanitytest.Error500},
			Match:    func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/data/doc/") },
		})
		putArtwork(e.lake, "X", nil)
		if art, err := e.client.Artwork(t.Context(), "X"); err != nil || art.Published == nil {
			t.Errorf("art %+v err %v", art, err)
		}
	})

	t.Run("Mutate with its own transaction id survives a lost answer", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{Sequence: []sanitytest.Fault{sanitytest.CommitThenDrop}})
		res, err := e.client.Mutate(t.Context(), sanity.MutateRequest{Mutations: []sanity.Mutation{
			{Create: map[string]any{"_id": "new", "_type": "artwork"}},
		}})
		doc, _ := e.lake.Get("new")
		if err != nil || res.TransactionID == "" || doc["_rev"] != res.TransactionID || e.lake.Writes("new") != 1 {
			t.Errorf("res %+v err %v doc %v", res, err, doc)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t, sanitytest.Options{Sequence: []sanitytest.Fault{sanitytest.RateLimited}, RetryAfter: time.Second})
	rev := putArtwork(e.lake, "X", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.client.SetAvailable(ctx, "tx-1", false, []stock.Variant{{ID: "X", Rev: rev}}); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, before retry-after", waited)
	}
	if e.faults.Seen() != 2 || e.lake.Writes("X") != 1 {
		t.Errorf("%d requests, %d writes", e.faults.Seen(), e.lake.Writes("X"))
	}
}

// TestGivesUpBeforeTheDeadline: when retrying cannot finish in time the
// client answers Unavailable while the caller still has time to answer.
//
// It checks the client's own decisions, not how soon a loaded machine let
// it run afterwards. The caller's context reports its deadline but ends only
// lateBy after it (lateContext), so a client that ignored the deadline is
// not cut off there but runs on, far past answerSlack. The requests show,
// without any timing slack, that every attempt ran under a deadline that
// keeps the client's answer margin back, and that every retry was scheduled
// with time left for its sleep and for an attempt (minAttemptBudget, or as
// long as the last attempt took), counted from when the last attempt ended,
// which is before the client decided.
func TestGivesUpBeforeTheDeadline(t *testing.T) {
	const (
		// The client's documented bounds (client.go), stated here so that a
		// change to them in the client shows: it keeps back for its answer a
		// twentieth of the time left, at most 50 ms (answerMargin), and
		// starts no retry that leaves less than 20 ms for its attempt
		// (minAttemptBudget).
		marginShare, maxMargin = 20, 50 * time.Millisecond
		minAttemptBudget       = 20 * time.Millisecond

		lateBy = time.Second
		// answerSlack is how long after the deadline the answer may come:
		// the client returns before it, by the margin it keeps back, but a
		// loaded machine (-race, parallel packages) may run it late.
		answerSlack = 250 * time.Millisecond
	)
	tests := []struct {
		name        string
		opts        sanitytest.Options
		timeout     time.Duration
		maxRequests int
	}{
		{"always 503", sanitytest.Options{Rate: 1, Fault: sanitytest.Error503}, 400 * time.Millisecond, 6},
		{"retry-after beyond the deadline", sanitytest.Options{Rate: 1, Fault: sanitytest.RateLimited, RetryAfter: 5 * time.Second}, 2 * time.Second, 1},
		{"slow and failing", sanitytest.Options{Rate: 1, Fault: sanitytest.Error500, Latency: 80 * time.Millisecond}, 500 * time.Millisecond, 6},
		{"hanging", sanitytest.Options{Latency: time.Minute}, 300 * time.Millisecond, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := &attemptLog{}
			e := newEnv(t, tt.opts, calls.configure)
			rev := putArtwork(e.lake, "X", nil)
			deadline := time.Now().Add(tt.timeout)
			ends, cancel := context.WithDeadline(t.Context(), deadline.Add(lateBy))
			defer cancel()
			ctx := lateContext{ends, deadline}
			err := e.client.SetAvailable(ctx, "tx-1", false, []stock.Variant{{ID: "X", Rev: rev}})
			if late := time.Since(deadline); late > answerSlack {
				t.Errorf("answered %v after the deadline", late)
			}
			if stock.ErrorCode(err) != stock.Unavailable || ctx.Err() != nil {
				t.Errorf("err = %v (ctx %v)", err, ctx.Err())
			}
			if n := e.faults.Seen(); n < 1 || n > tt.maxRequests {
				t.Errorf("%d requests", n)
			}
			if e.lake.Writes("X") != 0 {
				t.Error("a failed request wrote")
			}

			calls.mu.Lock()
			defer calls.mu.Unlock()
			// A retry follows each attempt but the last; one more was
			// scheduled if a sleep was cut short, which its check below finds.
			if n := len(calls.attempts); n < 1 || len(calls.retries) < n-1 || len(calls.retries) > n {
				t.Fatalf("%d attempts sent, %d retries observed", n, len(calls.retries))
			}
			for i, a := range calls.attempts {
				// The client took its margin from the time left when it
				// prepared the attempt, no less than at the start.
				left := deadline.Sub(a.start)
				want := min(left/marginShare, maxMargin)
				if !a.hasDeadline || deadline.Sub(a.deadline) < want {
					t.Errorf("attempt %d, started %v before the deadline, may run until %v before it (has one: %v), want %v or more kept back",
						i+1, left, deadline.Sub(a.deadline), a.hasDeadline, want)
				}
			}
			for i, r := range calls.retries {
				need := r.delay + max(r.elapsed, minAttemptBudget)
				if left := deadline.Sub(calls.attempts[i].end); left < need {
					t.Errorf("attempt %d ended %v before the deadline, and a retry was scheduled after %v that needs %v (the attempt took %v)",
						i+1, left, r.delay, need, r.elapsed)
				}
			}
		})
	}

	t.Run("attempts are capped without a deadline", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{Rate: 1, Fault: sanitytest.Error500, Match: func(*http.Request) bool { return true }})
		err := e.client.Ping(t.Context())
		var ae *sanity.APIError
		if stock.ErrorCode(err) != stock.Unavailable || !errors.As(err, &ae) || ae.Status != 500 {
			t.Errorf("err = %v", err)
		}
		if n := e.faults.Seen(); n != 6 {
			t.Errorf("%d attempts", n)
		}
	})

	t.Run("a cancelled caller stops at once", func(t *testing.T) {
		e := newEnv(t, sanitytest.Options{Rate: 1, Fault: sanitytest.Error503})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := e.client.SetAvailable(ctx, "tx-1", false, []stock.Variant{{ID: "X", Rev: "r"}})
		if stock.ErrorCode(err) != stock.Unavailable || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	})
}

// lateContext reports deadline as its deadline but ends only when its
// Context does, later: what a client does by the deadline is then its own
// doing.
type lateContext struct {
	context.Context
	deadline time.Time
}

func (c lateContext) Deadline() (time.Time, bool) { return c.deadline, true }

// attemptLog records each HTTP attempt as its transport saw it, and each
// retry the client scheduled, as Config.Observe reports them.
type attemptLog struct {
	mu       sync.Mutex
	attempts []sentAttempt
	retries  []scheduledRetry // retries[i] follows attempts[i]
	elapsed  time.Duration    // of the last attempt, as the client measured it
}

type sentAttempt struct {
	start, end  time.Time // when the transport got it and gave back its answer
	deadline    time.Time // of the attempt's context
	hasDeadline bool
}

type scheduledRetry struct {
	delay   time.Duration // the sleep before it
	elapsed time.Duration // what the attempt before it took, by the client's clock
}

func (l *attemptLog) configure(cfg *sanity.Config) {
	cfg.HTTPClient = &http.Client{Transport: loggingTransport{http.DefaultTransport, l}}
	cfg.Observe = func(_, result string, d time.Duration) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if result == "retry" {
			l.retries = append(l.retries, scheduledRetry{delay: d, elapsed: l.elapsed})
		} else {
			l.elapsed = d
		}
	}
}

type loggingTransport struct {
	next http.RoundTripper
	log  *attemptLog
}

func (t loggingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	a := sentAttempt{start: time.Now()}
	a.deadline, a.hasDeadline = r.Context().Deadline()
	resp, err := t.next.RoundTrip(r)
	a.end = time.Now()
	t.log.mu.Lock()
	t.log.attempts = append(t.log.attempts, a)
	t.log.mu.Unlock()
	return resp, err
}

func TestObserve(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	observe := func(endpoint, result string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if d < 0 {
			result += "(negative)"
		}
		seen = append(seen, endpoint+":"+result)
	}
	e := newEnv(t, sanitytest.Options{Sequence: []sanitytest.Fault{sanitytest.Error503}},
		func(c *sanity.Config) { c.Observe = observe })
	rev := putArtwork(e.lake, "X", nil)
	if err := e.client.SetAvailable(t.Context(), "tx-1", false, []stock.Variant{{ID: "X", Rev: rev}}); err != nil {
		t.Fatal(err)
	}
	if err := e.client.SetAvailable(t.Context(), "tx-2", false, []stock.Variant{{ID: "X", Rev: rev}}); !errors.Is(err, stock.ErrRevisionMismatch) {
		t.Fatal(err)
	}
	if _, err := e.client.Draft(t.Context(), "X"); err != nil {
		t.Fatal(err)
	}
	want := []string{"mutate:5xx", "mutate:retry", "mutate:ok", "mutate:409", "doc:ok"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("observed %v, want %v", seen, want)
	}
}

func TestDocumentsDecodesEverything(t *testing.T) {
	e := newEnv(t, sanitytest.Options{})
	putArtwork(e.lake, "X", map[string]any{"price": 1200, "tags": []string{"oil"}})
	docs, err := e.client.Documents(t.Context(), "X", "missing")
	if err != nil || len(docs) != 1 {
		t.Fatalf("docs %v err %v", docs, err)
	}
	var tags []string
	if err := json.Unmarshal(docs[0]["tags"], &tags); err != nil || tags[0] != "oil" || string(docs[0]["price"]) != "1200" {
		t.Errorf("doc %v", docs[0])
	}
}

// TestErrorBodiesDoNotCarryTheToken: an error body quoting the request (a
// proxy's page, a gateway's message) reaches logs and the journal without
// the token.
func TestErrorBodiesDoNotCarryTheToken(t *testing.T) {
	for _, h := range []*canned{
		{status: http.StatusUnauthorized, body: `{"statusCode":401,"error":"Unauthorized","message":"Session not found for Bearer ` + token + `"}`},
		{status: http.StatusBadRequest, body: "<html>400 Bad Request: Authorization: Bearer " + token + "</html>"},
		{status: http.StatusForbidden, body: `{"error":{"type":"mutationError","description":"token ` + token + ` may not write","items":[{"index":0,"error":{"type":"insufficientPermissionsError","description":"` + token + `"}}]}}`},
	} {
		err := cannedClient(t, h).SetAvailable(context.Background(), "tx1", false, []stock.Variant{{ID: "a1", Rev: "r1"}})
		if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "[SANITY_API_TOKEN]") {
			t.Errorf("%d: error %v, want it without the token, which shows as [SANITY_API_TOKEN]", h.status, err)
		}
		var ae *sanity.APIError
		if errors.As(err, &ae) {
			for _, it := range ae.Items {
				if strings.Contains(it.Description, token) {
					t.Errorf("%d: item %+v quotes the token", h.status, it)
				}
			}
		}
	}
}
