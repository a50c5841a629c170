// Package memlake is NOT Sanity. It is an in-memory stand-in for one Sanity
// dataset that implements only the subset of the Content Lake HTTP API that
// soldout uses — the doc, query and mutate endpoints — with Sanity's paths,
// wire format and error bodies, for `soldout demo`, tests and benchmarks.
//
// What it models: documents with _id, _type, _rev, _createdAt and
// _updatedAt; drafts ("drafts.<id>") and release versions
// ("versions.<release>.<id>") as ordinary documents; atomic transactions
// whose every written document gets _rev = the transaction id; a committed
// transaction id refused when sent again; ifRevisionID guards; dryRun.
//
// What it does not: GROQ beyond the queries soldout sends (anything else
// is a queryParseError), perspectives (every query behaves as raw), the lag
// of Sanity's search store behind its documents (every query here is
// strongly consistent, so no test may rely on a query seeing a fresh write),
// patch operations other than set on top-level fields, patches and deletes
// by query, roles
// (one bearer token may do everything), history, listeners, rate limits,
// latency or faults (see package sanitytest for those).
package memlake

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// logLimit bounds the transaction log so a long `soldout demo` run does not
// grow without end; Writes keeps counting past it.
const logLimit = 1 << 14

// Lake is one in-memory dataset served over HTTP. It is safe for concurrent
// use.
type Lake struct {
	dataset string
	token   string // "" accepts any request

	mu       sync.RWMutex
	docs     map[string]*entry
	versions map[string]map[string]struct{} // published id → its versions.* ids
	txIDs    map[string]struct{}            // committed transaction ids
	log      []transaction                  // oldest first, at most 2*logLimit
	writes   map[string]int                 // committed transactions per document id
}

// entry is a stored document. Neither field changes once stored: writes
// replace entries, so readers may use them after unlocking.
type entry struct {
	doc map[string]any
	raw []byte // doc as JSON, served as is
}

type transaction struct {
	id      string
	at      time.Time
	ops     []op
	effects []string // per op: what Mutation.Operation reports
	changes []change
}

type change struct {
	id            string
	before, after *entry // nil when absent
}

// Transaction is a committed mutate request.
type Transaction struct {
	ID        string
	Time      time.Time
	Mutations []Mutation // as sent, in order
	Changes   []Change   // per document written, in first-written order
}

// Mutation is one mutation of a committed transaction.
type Mutation struct {
	Type         string // create, createOrReplace, createIfNotExists, delete or patch
	ID           string
	IfRevisionID string         // a patch's guard, if any
	Set          map[string]any // a patch's fields
	Document     map[string]any // a create's document
	Operation    string         // its effect: create, update, delete or none
}

// Change is what one transaction did to one document.
type Change struct {
	ID        string
	Operation string         // "create", "update" or "delete"
	Before    map[string]any // nil for a create
	After     map[string]any // nil for a delete
}

// New returns an empty dataset named dataset that accepts requests bearing
// token ("Authorization: Bearer <token>"); an empty token accepts any.
func New(dataset, token string) *Lake {
	return &Lake{
		dataset:  dataset,
		token:    token,
		docs:     make(map[string]*entry),
		versions: make(map[string]map[string]struct{}),
		txIDs:    make(map[string]struct{}),
		writes:   make(map[string]int),
	}
}

// Put stores doc (which must have a valid string _id) as if an editor had
// written it: it creates or replaces the document with a fresh random _rev
// and returns that _rev. It is a setup helper: it records no transaction.
// It panics on a document that cannot be stored.
func (l *Lake) Put(doc map[string]any) string {
	raw, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("memlake: Put: %v", err))
	}
	var d map[string]any
	if err := json.Unmarshal(raw, &d); err != nil {
		panic(fmt.Sprintf("memlake: Put: %v", err))
	}
	id, _ := d["_id"].(string)
	if !validID(id) {
		panic(fmt.Sprintf("memlake: Put: invalid _id %q", id))
	}
	rev := rand.Text()
	now := timestamp(time.Now())
	l.mu.Lock()
	defer l.mu.Unlock()
	d["_rev"], d["_updatedAt"], d["_createdAt"] = rev, now, now
	if old := l.docs[id]; old != nil {
		d["_createdAt"] = old.doc["_createdAt"]
	}
	l.store(id, newEntry(d))
	return rev
}

// Get returns a copy of the document id, and whether it exists. Values have
// the types encoding/json decodes to (float64, string, bool, []any, …).
func (l *Lake) Get(id string) (map[string]any, bool) {
	l.mu.RLock()
	e := l.docs[id]
	l.mu.RUnlock()
	if e == nil {
		return nil, false
	}
	return e.copy(), true
}

// Delete removes the document id, if any, without recording a transaction.
func (l *Lake) Delete(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.store(id, nil)
}

// Transactions returns copies of the most recent committed transactions
// (up to 16384), oldest first. Dry runs and refused requests are not in it.
func (l *Lake) Transactions() []Transaction {
	l.mu.RLock()
	log := l.log[max(0, len(l.log)-logLimit):]
	log = slices.Clone(log)
	l.mu.RUnlock()
	out := make([]Transaction, len(log))
	for i, tx := range log {
		out[i] = Transaction{ID: tx.id, Time: tx.at, Mutations: make([]Mutation, len(tx.ops)), Changes: make([]Change, len(tx.changes))}
		for j, o := range tx.ops {
			out[i].Mutations[j] = Mutation{
				Type: o.kind, ID: o.id, IfRevisionID: o.ifRev,
				Set: cloneJSON(o.set), Document: cloneJSON(o.doc), Operation: tx.effects[j],
			}
		}
		for j, c := range tx.changes {
			ch := Change{ID: c.id, Before: c.before.copy(), After: c.after.copy()}
			switch {
			case c.before == nil:
				ch.Operation = "create"
			case c.after == nil:
				ch.Operation = "delete"
			default:
				ch.Operation = "update"
			}
			out[i].Changes[j] = ch
		}
	}
	return out
}

// Writes returns how many committed transactions wrote the document id
// (never truncated, unlike Transactions).
func (l *Lake) Writes(id string) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.writes[id]
}

func newEntry(doc map[string]any) *entry {
	raw, err := json.Marshal(doc)
	if err != nil {
		// Every value came from encoding/json, so it encodes again.
		panic(fmt.Sprintf("memlake: encoding document: %v", err))
	}
	return &entry{doc: doc, raw: raw}
}

func (e *entry) copy() map[string]any {
	if e == nil {
		return nil
	}
	var d map[string]any
	_ = json.Unmarshal(e.raw, &d) // raw was produced by json.Marshal
	return d
}

// cloneJSON deep-copies a map of JSON-decoded values.
func cloneJSON(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return newEntry(m).copy()
}

// store puts e at id (nil deletes) and keeps the versions index current.
// The caller holds l.mu for writing.
func (l *Lake) store(id string, e *entry) {
	if e == nil {
		delete(l.docs, id)
	} else {
		l.docs[id] = e
	}
	base, ok := versionBase(id)
	if !ok {
		return
	}
	set := l.versions[base]
	switch {
	case e != nil && set == nil:
		l.versions[base] = map[string]struct{}{id: {}}
	case e != nil:
		set[id] = struct{}{}
	case set != nil:
		delete(set, id)
		if len(set) == 0 {
			delete(l.versions, base)
		}
	}
}

// ServeHTTP serves /v<version>/data/doc/<dataset>/<ids>,
// /v<version>/data/query/<dataset> and /v<version>/data/mutate/<dataset>.
func (l *Lake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The path is split by hand: http.ServeMux would clean "." and ".."
	// segments, which Sanity does not.
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5)
	if len(parts) < 4 || len(parts[0]) < 2 || parts[0][0] != 'v' || parts[1] != "data" {
		writeGateway(w, http.StatusNotFound, "Not Found", "")
		return
	}
	if !l.authorized(r) {
		writeGateway(w, http.StatusUnauthorized, "Session not found", "SIO-401-ANF")
		return
	}
	endpoint, dataset := parts[2], parts[3]
	if dataset != l.dataset {
		writeError(w, http.StatusNotFound, "notFoundError", fmt.Sprintf("Dataset %q not found", dataset))
		return
	}
	switch {
	case endpoint == "doc" && len(parts) == 5:
		if r.Method != http.MethodGet {
			writeGateway(w, http.StatusMethodNotAllowed, "Method Not Allowed", "")
			return
		}
		l.serveDoc(w, parts[4])
	case endpoint == "query" && len(parts) == 4:
		l.serveQuery(w, r)
	case endpoint == "mutate" && len(parts) == 4:
		if r.Method != http.MethodPost {
			writeGateway(w, http.StatusMethodNotAllowed, "Method Not Allowed", "")
			return
		}
		l.serveMutate(w, r)
	default:
		writeGateway(w, http.StatusNotFound, "Not Found", "")
	}
}

func (l *Lake) authorized(r *http.Request) bool {
	if l.token == "" {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(l.token)) == 1
}

// serveDoc answers {"documents":[…],"omitted":[{"id","reason":"existence"}]}.
func (l *Lake) serveDoc(w http.ResponseWriter, idList string) {
	ids := strings.Split(idList, ",")
	for _, id := range ids {
		if !validID(id) {
			writeError(w, http.StatusBadRequest, "validationError", fmt.Sprintf("Malformed document ID: %q", id))
			return
		}
	}
	ids = uniq(ids)
	found := make([]*entry, len(ids))
	l.mu.RLock()
	for i, id := range ids {
		found[i] = l.docs[id]
	}
	l.mu.RUnlock()

	size := 64
	for _, e := range found {
		if e != nil {
			size += len(e.raw) + 1
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"documents":[`...)
	first := true
	for _, e := range found {
		if e != nil {
			if !first {
				b = append(b, ',')
			}
			b, first = append(b, e.raw...), false
		}
	}
	b = append(b, `],"omitted":[`...)
	first = true
	for i, e := range found {
		if e == nil {
			if !first {
				b = append(b, ',')
			}
			// Valid ids need no escaping.
			b, first = append(b, `{"id":"`+ids[i]+`","reason":"existence"}`...), false
		}
	}
	b = append(b, "]}"...)
	writeBody(w, http.StatusOK, b)
}

func uniq(ids []string) []string {
	if len(ids) < 2 {
		return ids
	}
	out := ids[:0:0]
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// validID follows Sanity's rules: letters, digits, '_', '-', '.', dot-separated
// segments that are not empty and do not start with '-'.
func validID(id string) bool {
	if id == "" || len(id) > 200 {
		return false
	}
	for seg := range strings.SplitSeq(id, ".") {
		if seg == "" || seg[0] == '-' {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// versionBase returns the published id of "versions.<release>.<id>".
func versionBase(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, "versions.")
	if !ok {
		return "", false
	}
	_, base, ok := strings.Cut(rest, ".")
	return base, ok && base != ""
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

var jsonContentType = []string{"application/json; charset=utf-8"}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internalServerError", err.Error())
		return
	}
	writeBody(w, status, b)
}

// writeError writes Sanity's API error shape {"error":{"description","type"}}.
func writeError(w http.ResponseWriter, status int, typ, description string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"description": description, "type": typ}})
}

// writeGateway writes the shape Sanity's gateway uses, as in
// {"statusCode":401,"error":"Unauthorized","message":"Session not found","errorCode":"SIO-401-ANF"}.
func writeGateway(w http.ResponseWriter, status int, message, errorCode string) {
	body := map[string]any{"statusCode": status, "error": http.StatusText(status), "message": message}
	if errorCode != "" {
		body["errorCode"] = errorCode
	}
	writeJSON(w, status, body)
}
