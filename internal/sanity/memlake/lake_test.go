package memlake_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"soldout/internal/sanity/memlake"
)

const (
	docPath    = "/v2025-02-19/data/doc/production/"
	queryPath  = "/v2025-02-19/data/query/production"
	mutatePath = "/v2025-02-19/data/mutate/production?returnIds=true&visibility=sync"
)

func newServer(t *testing.T, token string) (*memlake.Lake, *httptest.Server) {
	t.Helper()
	lake := memlake.New("production", token)
	srv := httptest.NewServer(lake)
	t.Cleanup(srv.Close)
	return lake, srv
}

// call sends a request with "Bearer secret" and returns the status and the
// decoded JSON body.
func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	return callAs(t, srv, "secret", method, path, body)
}

func callAs(t *testing.T, srv *httptest.Server, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	return resp.StatusCode, out
}

func mutate(t *testing.T, srv *httptest.Server, txID string, mutations ...string) (int, map[string]any) {
	t.Helper()
	body := `{"mutations":[` + strings.Join(mutations, ",") + `]`
	if txID != "" {
		body += `,"transactionId":"` + txID + `"`
	}
	return call(t, srv, http.MethodPost, mutatePath, body+"}")
}

func patch(id, ifRev string, available bool) string {
	guard := ""
	if ifRev != "" {
		guard = fmt.Sprintf(`,"ifRevisionID":%q`, ifRev)
	}
	return fmt.Sprintf(`{"patch":{"id":%q%s,"set":{"isAvailable":%v}}}`, id, guard, available)
}

func artwork(id string) map[string]any {
	return map[string]any{"_id": id, "_type": "artwork", "title": "T " + id, "isAvailable": true}
}

// errorType digs out error.type and, for mutation errors, items[0].
func errorType(body map[string]any) (string, map[string]any) {
	e, _ := body["error"].(map[string]any)
	typ, _ := e["type"].(string)
	items, _ := e["items"].([]any)
	if len(items) == 0 {
		return typ, nil
	}
	item, _ := items[0].(map[string]any)
	return typ, item
}

func TestAuthDatasetAndPaths(t *testing.T) {
	_, srv := newServer(t, "secret")
	unauthorized := map[string]any{"statusCode": 401.0, "error": "Unauthorized", "message": "Session not found", "errorCode": "SIO-401-ANF"}
	tests := []struct {
		name, token, path string
		status            int
		want              map[string]any // nil: only the status is checked
	}{
		{"good", "secret", docPath + "X", 200, nil},
		{"wrong token", "other", docPath + "X", 401, unauthorized},
		{"no token", "", docPath + "X", 401, unauthorized},
		{"wrong token on query", "other", queryPath + "?query=count(*)", 401, unauthorized},
		{"wrong dataset", "secret", "/v2025-02-19/data/doc/staging/X", 404, nil},
		{"unknown endpoint", "secret", "/v2025-02-19/data/history/production", 404, nil},
		{"not an API path", "secret", "/favicon.ico", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := callAs(t, srv, tt.token, http.MethodGet, tt.path, "")
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, body)
			}
			if tt.want != nil && !reflect.DeepEqual(body, tt.want) {
				t.Errorf("body %v, want %v", body, tt.want)
			}
		})
	}

	t.Run("empty token accepts any", func(t *testing.T) {
		_, open := newServer(t, "")
		if status, body := callAs(t, open, "", http.MethodGet, docPath+"X", ""); status != 200 {
			t.Errorf("status %d: %v", status, body)
		}
	})
}

func TestDocEndpoint(t *testing.T) {
	lake, srv := newServer(t, "secret")
	lake.Put(artwork("X"))
	lake.Put(artwork("drafts.X"))

	status, body := call(t, srv, http.MethodGet, docPath+"X,drafts.X,missing", "")
	if status != 200 {
		t.Fatalf("status %d: %v", status, body)
	}
	docs := body["documents"].([]any)
	if len(docs) != 2 || docs[0].(map[string]any)["_id"] != "X" || docs[1].(map[string]any)["_id"] != "drafts.X" {
		t.Errorf("documents = %v", docs)
	}
	for _, f := range []string{"_id", "_type", "_rev", "_createdAt", "_updatedAt"} {
		if _, ok := docs[0].(map[string]any)[f]; !ok {
			t.Errorf("document lacks %s", f)
		}
	}
	wantOmitted := []any{map[string]any{"id": "missing", "reason": "existence"}}
	if !reflect.DeepEqual(body["omitted"], wantOmitted) {
		t.Errorf("omitted = %v", body["omitted"])
	}

	for _, bad := range []string{"a%20b", "-x", "a..b", "..", "x,"} {
		if status, body := call(t, srv, http.MethodGet, docPath+bad, ""); status != 400 {
			t.Errorf("%q: status %d: %v", bad, status, body)
		}
	}
	if status, _ := call(t, srv, http.MethodPost, docPath+"X", "{}"); status != 405 {
		t.Errorf("POST doc: status %d", status)
	}
}

func TestMutateSetsRevToTransactionID(t *testing.T) {
	lake, srv := newServer(t, "secret")
	rev := lake.Put(artwork("X"))
	before, _ := lake.Get("X")

	status, body := mutate(t, srv, "tx-1", patch("X", rev, false))
	want := map[string]any{"transactionId": "tx-1", "results": []any{map[string]any{"id": "X", "operation": "update"}}}
	if status != 200 || !reflect.DeepEqual(body, want) {
		t.Fatalf("status %d body %v, want %v", status, body, want)
	}
	doc, _ := lake.Get("X")
	if doc["_rev"] != "tx-1" || doc["isAvailable"] != false || doc["title"] != "T X" {
		t.Errorf("doc = %v", doc)
	}
	if doc["_createdAt"] != before["_createdAt"] || doc["_updatedAt"] == nil {
		t.Errorf("timestamps: before %v after %v", before, doc)
	}

	// Without a transactionId the lake picks one, and it is the new _rev.
	status, body = mutate(t, srv, "", patch("X", "tx-1", true))
	doc, _ = lake.Get("X")
	if status != 200 || body["transactionId"] == "" || doc["_rev"] != body["transactionId"] {
		t.Errorf("status %d body %v doc %v", status, body, doc)
	}
}

func TestTransactionAlreadyExists(t *testing.T) {
	lake, srv := newServer(t, "secret")
	rev := lake.Put(artwork("X"))
	if status, body := mutate(t, srv, "tx-1", patch("X", rev, false)); status != 200 {
		t.Fatalf("status %d: %v", status, body)
	}
	status, body := mutate(t, srv, "tx-1", patch("X", "tx-1", true))
	if typ, _ := errorType(body); status != 409 || typ != "transactionAlreadyExistsError" {
		t.Fatalf("status %d body %v", status, body)
	}
	if doc, _ := lake.Get("X"); doc["isAvailable"] != false {
		t.Errorf("the refused transaction changed the doc: %v", doc)
	}
	if n := lake.Writes("X"); n != 1 {
		t.Errorf("Writes = %d", n)
	}
}

func TestTransactionsAreAtomic(t *testing.T) {
	lake, srv := newServer(t, "secret")
	revX := lake.Put(artwork("X"))
	lake.Put(artwork("drafts.X"))

	status, body := mutate(t, srv, "tx-1", patch("X", revX, false), patch("drafts.X", "stale", false))
	typ, item := errorType(body)
	if status != 409 || typ != "mutationError" || item["index"] != 1.0 {
		t.Fatalf("status %d body %v", status, body)
	}
	if doc, _ := lake.Get("X"); doc["isAvailable"] != true || doc["_rev"] != revX {
		t.Errorf("first mutation applied: %v", doc)
	}
	if len(lake.Transactions()) != 0 || lake.Writes("X") != 0 {
		t.Error("a failed transaction was recorded")
	}
	// A rejected transaction does not consume its id.
	d, _ := lake.Get("drafts.X")
	if status, body := mutate(t, srv, "tx-1", patch("X", revX, false), patch("drafts.X", d["_rev"].(string), false)); status != 200 {
		t.Errorf("retry with the same id: status %d: %v", status, body)
	}
}

func TestMutationErrors(t *testing.T) {
	tests := []struct {
		name     string
		mutation string
		status   int
		typ      string // top-level error type
		itemType string
	}{
		{"revision mismatch", patch("X", "old", false), 409, "mutationError", "documentRevisionIDDoesNotMatchError"},
		{"patch of a missing doc", patch("nope", "", false), 409, "mutationError", "documentNotFoundError"},
		{"guarded patch of a missing doc", patch("nope", "r", false), 409, "mutationError", "documentNotFoundError"},
		{"create of an existing id", `{"create":{"_id":"X","_type":"artwork"}}`, 409, "mutationError", "documentAlreadyExistsError"},
		{"unsupported patch operation", `{"patch":{"id":"X","unset":["title"]}}`, 400, "validationError", ""},
		{"set of a path", `{"patch":{"id":"X","set":{"a.b":1}}}`, 400, "validationError", ""},
		{"set of _rev", `{"patch":{"id":"X","set":{"_rev":"mine"}}}`, 400, "validationError", ""},
		{"create without _type", `{"create":{"_id":"Y"}}`, 400, "validationError", ""},
		{"createOrReplace without _id", `{"createOrReplace":{"_type":"artwork"}}`, 400, "validationError", ""},
		{"malformed id", patch("a/b", "", false), 400, "validationError", ""},
		{"two kinds in one mutation", `{"delete":{"id":"X"},"patch":{"id":"X","set":{"a":1}}}`, 400, "validationError", ""},
		{"delete by query", `{"delete":{"query":"*"}}`, 400, "validationError", ""},
		{"patch by query", `{"patch":{"query":"*[_id == 'X']","set":{"a":1}}}`, 400, "validationError", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lake, srv := newServer(t, "secret")
			rev := lake.Put(artwork("X"))
			status, body := mutate(t, srv, "tx-1", tt.mutation)
			typ, item := errorType(body)
			if status != tt.status || typ != tt.typ {
				t.Fatalf("status %d type %q, want %d %q: %v", status, typ, tt.status, tt.typ, body)
			}
			if tt.itemType != "" {
				ie, _ := item["error"].(map[string]any)
				if ie["type"] != tt.itemType || ie["description"] == "" || item["index"] != 0.0 {
					t.Errorf("item %v", item)
				}
				if tt.itemType == "documentRevisionIDDoesNotMatchError" &&
					(ie["currentRevisionID"] != rev || ie["expectedRevisionID"] != "old") {
					t.Errorf("revisions in %v, current is %s", ie, rev)
				}
			}
			if doc, _ := lake.Get("X"); doc["_rev"] != rev {
				t.Errorf("doc changed: %v", doc)
			}
		})
	}

	t.Run("bad bodies", func(t *testing.T) {
		_, srv := newServer(t, "secret")
		for _, body := range []string{`not json`, `{"mutations":[]}`, `{"mutations":[{}]}`, `{"mutations":[{"patch":{"id":"X","set":{"a":1}}}],"transactionId":"a b"}`} {
			if status, resp := call(t, srv, http.MethodPost, mutatePath, body); status != 400 {
				t.Errorf("%s: status %d: %v", body, status, resp)
			}
		}
		if status, _ := call(t, srv, http.MethodGet, mutatePath, ""); status != 405 {
			t.Errorf("GET mutate: status %d", status)
		}
	})
}

func TestOperations(t *testing.T) {
	lake, srv := newServer(t, "secret")
	rev := lake.Put(artwork("X"))

	status, body := mutate(t, srv, "tx-1",
		`{"createIfNotExists":{"_id":"X","_type":"artwork","title":"other"}}`,
		`{"createIfNotExists":{"_id":"Y","_type":"artwork"}}`,
		`{"createOrReplace":{"_id":"Z","_type":"artwork"}}`,
		`{"create":{"_type":"note"}}`,
		`{"delete":{"id":"gone"}}`,
	)
	if status != 200 {
		t.Fatalf("status %d: %v", status, body)
	}
	results := body["results"].([]any)
	ops := make([]string, len(results))
	for i, r := range results {
		ops[i] = r.(map[string]any)["operation"].(string)
	}
	if want := []string{"none", "create", "create", "create", "none"}; !reflect.DeepEqual(ops, want) {
		t.Errorf("operations %v, want %v", ops, want)
	}
	if doc, _ := lake.Get("X"); doc["_rev"] != rev || doc["title"] != "T X" {
		t.Errorf("createIfNotExists changed an existing doc: %v", doc)
	}
	generated := results[3].(map[string]any)["id"].(string)
	for _, id := range []string{"Y", "Z", generated} {
		if doc, ok := lake.Get(id); !ok || doc["_rev"] != "tx-1" || doc["_createdAt"] == nil {
			t.Errorf("%s: %v", id, doc)
		}
	}

	status, body = mutate(t, srv, "tx-2",
		`{"createOrReplace":{"_id":"Z","_type":"artwork","title":"new"}}`,
		`{"delete":{"id":"Y"}}`,
	)
	results = body["results"].([]any)
	if status != 200 || results[0].(map[string]any)["operation"] != "update" || results[1].(map[string]any)["operation"] != "delete" {
		t.Errorf("status %d: %v", status, body)
	}
	if _, ok := lake.Get("Y"); ok {
		t.Error("Y was not deleted")
	}
	if doc, _ := lake.Get("Z"); doc["title"] != "new" || doc["_rev"] != "tx-2" {
		t.Errorf("Z = %v", doc)
	}

	txs := lake.Transactions()
	if len(txs) != 2 || txs[1].ID != "tx-2" {
		t.Fatalf("transactions %+v", txs)
	}
	var changes []string
	for _, c := range txs[1].Changes {
		changes = append(changes, c.ID+":"+c.Operation)
	}
	if want := []string{"Z:update", "Y:delete"}; !reflect.DeepEqual(changes, want) {
		t.Errorf("changes %v, want %v", changes, want)
	}
	if c := txs[1].Changes[0]; c.Before["title"] != nil || c.After["title"] != "new" {
		t.Errorf("Z change: %+v", c)
	}
	m := txs[0].Mutations
	if len(m) != 5 || m[0].Type != "createIfNotExists" || m[0].Operation != "none" || m[0].Document["title"] != "other" ||
		m[4].Type != "delete" || m[4].ID != "gone" {
		t.Errorf("mutations of tx-1: %+v", m)
	}
	rev2 := lake.Put(artwork("P"))
	if status, body := mutate(t, srv, "tx-3", patch("P", rev2, false)); status != 200 {
		t.Fatalf("patch: %d %v", status, body)
	}
	txs = lake.Transactions()
	if p := txs[2].Mutations[0]; p.Type != "patch" || p.ID != "P" || p.IfRevisionID != rev2 || p.Set["isAvailable"] != false || p.Operation != "update" {
		t.Errorf("patch mutation: %+v", p)
	}
}

func TestDryRun(t *testing.T) {
	lake, srv := newServer(t, "secret")
	rev := lake.Put(artwork("X"))
	body := `{"mutations":[` + patch("X", rev, false) + `,{"create":{"_id":"N","_type":"artwork"}}],"transactionId":"tx-1"}`

	status, resp := call(t, srv, http.MethodPost, mutatePath+"&dryRun=true", body)
	if status != 200 || resp["transactionId"] != "tx-1" || len(resp["results"].([]any)) != 2 {
		t.Fatalf("status %d: %v", status, resp)
	}
	if doc, _ := lake.Get("X"); doc["_rev"] != rev || doc["isAvailable"] != true {
		t.Errorf("dry run changed X: %v", doc)
	}
	if _, ok := lake.Get("N"); ok {
		t.Error("dry run created N")
	}
	if len(lake.Transactions()) != 0 {
		t.Error("dry run recorded a transaction")
	}
	// A dry run validates: a failing guard fails it too.
	status, resp = call(t, srv, http.MethodPost, mutatePath+"&dryRun=true", `{"mutations":[`+patch("X", "old", false)+`]}`)
	if typ, _ := errorType(resp); status != 409 || typ != "mutationError" {
		t.Errorf("dry run with a bad guard: %d %v", status, resp)
	}
	// The dry run did not consume the id.
	if status, resp := call(t, srv, http.MethodPost, mutatePath, body); status != 200 {
		t.Errorf("real run: %d %v", status, resp)
	}
}

func TestQuery(t *testing.T) {
	lake, srv := newServer(t, "secret")
	lake.Put(artwork("X"))
	lake.Put(map[string]any{"_id": "drafts.X", "_type": "artwork", "isAvailable": nil})
	lake.Put(artwork("versions.r2.X"))
	lake.Put(artwork("versions.r1.X"))
	lake.Put(artwork("XY"))
	lake.Put(artwork("drafts.XY"))
	lake.Put(artwork("versions.r1.XY"))

	versionOf := "*[sanity::versionOf($id)]{_id, isAvailable}"
	get := func(q string, params url.Values) (int, map[string]any) {
		v := url.Values{"query": {q}, "perspective": {"raw"}}
		for k, p := range params {
			v[k] = p
		}
		return call(t, srv, http.MethodGet, queryPath+"?"+v.Encode(), "")
	}
	wantVersions := []any{
		map[string]any{"_id": "X", "isAvailable": true},
		map[string]any{"_id": "drafts.X"}, // null fields are not projected
		map[string]any{"_id": "versions.r1.X", "isAvailable": true},
		map[string]any{"_id": "versions.r2.X", "isAvailable": true},
	}

	status, body := get(versionOf, url.Values{"$id": {`"X"`}})
	if status != 200 || !reflect.DeepEqual(body["result"], wantVersions) || body["query"] != versionOf || body["ms"] == nil {
		t.Errorf("versionOf: %d %v", status, body)
	}
	status, body = call(t, srv, http.MethodPost, queryPath+"?perspective=raw", `{"query":"`+versionOf+`","params":{"id":"X"}}`)
	if status != 200 || !reflect.DeepEqual(body["result"], wantVersions) {
		t.Errorf("versionOf by POST: %d %v", status, body)
	}
	if _, body := get(versionOf, url.Values{"$id": {`"nothing"`}}); !reflect.DeepEqual(body["result"], []any{}) {
		t.Errorf("versionOf of nothing: %v", body)
	}
	for id, want := range map[string]float64{`"X"`: 1, `"drafts.X"`: 1, `"nope"`: 0, `42`: 0} {
		if status, body := get("count(*[_id == $id])", url.Values{"$id": {id}}); status != 200 || body["result"] != want {
			t.Errorf("count %s: %d %v", id, status, body)
		}
	}

	bad := []struct {
		name, query string
		params      url.Values
		typ         string
	}{
		{"other GROQ", `*[_type == "artwork"]`, nil, "queryParseError"},
		{"projection of a path", `*[sanity::versionOf($id)]{a.b}`, url.Values{"$id": {`"X"`}}, "queryParseError"},
		{"missing parameter", versionOf, nil, "queryParseError"},
		{"unquoted parameter", versionOf, url.Values{"$id": {"X"}}, "httpBadRequest"},
	}
	for _, tt := range bad {
		status, body := get(tt.query, tt.params)
		if typ, _ := errorType(body); status != 400 || typ != tt.typ {
			t.Errorf("%s: %d %v", tt.name, status, body)
		}
	}
}

func TestHelpers(t *testing.T) {
	lake := memlake.New("production", "")
	rev := lake.Put(artwork("X"))
	doc, ok := lake.Get("X")
	if !ok || doc["_rev"] != rev || doc["_type"] != "artwork" {
		t.Fatalf("Get = %v, %v", doc, ok)
	}
	doc["title"] = "changed by the caller"
	if again, _ := lake.Get("X"); again["title"] != "T X" {
		t.Error("Get returned the stored map")
	}
	if rev2 := lake.Put(artwork("X")); rev2 == rev {
		t.Error("Put kept the _rev")
	}
	if lake.Writes("X") != 0 || len(lake.Transactions()) != 0 {
		t.Error("Put recorded a transaction")
	}
	lake.Delete("X")
	if _, ok := lake.Get("X"); ok {
		t.Error("Delete left the doc")
	}
	defer func() {
		if recover() == nil {
			t.Error("Put of a doc without _id did not panic")
		}
	}()
	lake.Put(map[string]any{"_type": "artwork"})
}

// TestConcurrentGuardedPatches: of many writers holding the same revision,
// exactly one wins.
func TestConcurrentGuardedPatches(t *testing.T) {
	lake, srv := newServer(t, "secret")
	rev := lake.Put(artwork("X"))
	const writers = 32
	var wg sync.WaitGroup
	statuses := make([]int, writers)
	for i := range writers {
		wg.Go(func() {
			statuses[i], _ = mutate(t, srv, fmt.Sprintf("tx-%d", i), patch("X", rev, false))
		})
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 409:
		default:
			t.Errorf("status %d", s)
		}
	}
	if ok != 1 || lake.Writes("X") != 1 {
		t.Errorf("%d writers won, %d writes", ok, lake.Writes("X"))
	}
}
