package memlake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// parsedQuery is one of the two GROQ forms memlake understands:
//
//	*[sanity::versionOf($param)]{field, …}
//	count(*[_id == $param])
type parsedQuery struct {
	count  bool
	param  string
	fields []string // the projection of a versionOf query
}

func parseQuery(q string) (parsedQuery, bool) {
	// Neither form contains a string literal, so whitespace can go entirely.
	s := strings.Join(strings.Fields(q), "")
	if rest, ok := strings.CutPrefix(s, "count(*[_id==$"); ok {
		name, ok := strings.CutSuffix(rest, "])")
		return parsedQuery{count: true, param: name}, ok && identifier(name)
	}
	rest, ok := strings.CutPrefix(s, "*[sanity::versionOf($")
	if !ok {
		return parsedQuery{}, false
	}
	name, proj, ok := strings.Cut(rest, ")]{")
	if !ok || !identifier(name) {
		return parsedQuery{}, false
	}
	proj, ok = strings.CutSuffix(proj, "}")
	if !ok {
		return parsedQuery{}, false
	}
	fields := strings.Split(proj, ",")
	for _, f := range fields {
		if !identifier(f) {
			return parsedQuery{}, false
		}
	}
	return parsedQuery{param: name, fields: fields}, true
}

func identifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// serveQuery answers GET ?query=…&$name=<JSON> and POST {"query","params"}
// with {"ms":0,"query":…,"result":…}. The perspective parameter is accepted
// and ignored: versionOf answers as in the raw perspective, and the count
// query compares exact ids, which perspectives do not change for soldout.
func (l *Lake) serveQuery(w http.ResponseWriter, r *http.Request) {
	var q string
	params := map[string]json.RawMessage{}
	switch r.Method {
	case http.MethodGet:
		vals := r.URL.Query()
		q = vals.Get("query")
		for k, v := range vals {
			name, ok := strings.CutPrefix(k, "$")
			if !ok {
				continue
			}
			if !json.Valid([]byte(v[0])) {
				writeError(w, http.StatusBadRequest, "httpBadRequest",
					fmt.Sprintf("Unable to parse value of %q. Please quote string values.", k+"="+v[0]))
				return
			}
			params[name] = json.RawMessage(v[0])
		}
	case http.MethodPost:
		var body struct {
			Query  string                     `json:"query"`
			Params map[string]json.RawMessage `json:"params"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMutateBody)).Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "httpBadRequest", "Unable to parse request body: "+err.Error())
			return
		}
		q = body.Query
		for k, v := range body.Params {
			params[k] = v
		}
	default:
		writeGateway(w, http.StatusMethodNotAllowed, "Method Not Allowed", "")
		return
	}

	pq, ok := parseQuery(q)
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
			"type":        "queryParseError",
			"description": "memlake (not Sanity) understands only *[sanity::versionOf($id)]{field,…} and count(*[_id == $id])",
			"query":       q, "start": 0, "end": len(q),
		}})
		return
	}
	raw, ok := params[pq.param]
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
			"type":        "queryParseError",
			"description": fmt.Sprintf("param $%s referenced, but not provided", pq.param),
			"query":       q, "start": 0, "end": len(q),
		}})
		return
	}
	var id string
	_ = json.Unmarshal(raw, &id) // a non-string matches no document

	var res any
	if pq.count {
		res = l.count(id)
	} else {
		res = l.versionsOf(id, pq.fields)
	}
	writeJSON(w, http.StatusOK, map[string]any{"ms": 0, "query": q, "result": res})
}

func (l *Lake) count(id string) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.docs[id] != nil {
		return 1
	}
	return 0
}

// versionsOf returns the projection of id, drafts.<id> and every
// versions.<release>.<id>, ordered by _id. Fields that are absent or null
// are left out, as GROQ projections do.
func (l *Lake) versionsOf(id string, fields []string) []map[string]any {
	out := []map[string]any{}
	if id == "" || strings.HasPrefix(id, "drafts.") || strings.HasPrefix(id, "versions.") {
		return out
	}
	var found []*entry
	l.mu.RLock()
	for _, vid := range []string{id, "drafts." + id} {
		if e := l.docs[vid]; e != nil {
			found = append(found, e)
		}
	}
	for vid := range l.versions[id] {
		found = append(found, l.docs[vid])
	}
	l.mu.RUnlock()

	slices.SortFunc(found, func(a, b *entry) int {
		x, _ := a.doc["_id"].(string)
		y, _ := b.doc["_id"].(string)
		return strings.Compare(x, y)
	})
	for _, e := range found {
		p := make(map[string]any, len(fields))
		for _, f := range fields {
			if v := e.doc[f]; v != nil {
				p[f] = v
			}
		}
		out = append(out, p)
	}
	return out
}
