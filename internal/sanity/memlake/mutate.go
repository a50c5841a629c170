package memlake

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"
)

// maxMutateBody is Sanity's documented limit on a mutation request body.
const maxMutateBody = 4 << 20

// op is one parsed mutation.
type op struct {
	kind  string         // create, createOrReplace, createIfNotExists, delete, patch
	id    string         // every kind
	doc   map[string]any // the creates
	ifRev string         // patch
	set   map[string]any // patch
}

type result struct {
	ID        string `json:"id"`
	Operation string `json:"operation"`
}

// itemError is one failed mutation, as Sanity reports it inside a
// mutationError: {"index":i,"error":{"type","description","id",…}}.
type itemError struct {
	index  int
	fields map[string]any
}

func (l *Lake) serveMutate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Mutations     []map[string]json.RawMessage `json:"mutations"`
		TransactionID string                       `json:"transactionId"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMutateBody)).Decode(&body); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, "httpPayloadTooLarge", "Request body is larger than 4 MB")
			return
		}
		writeError(w, http.StatusBadRequest, "httpBadRequest", "Unable to parse request body: "+err.Error())
		return
	}
	q := r.URL.Query()
	txID := body.TransactionID
	if txID == "" {
		txID = q.Get("transactionId")
	}
	if txID == "" {
		txID = rand.Text()
	} else if !validTransactionID(txID) {
		writeError(w, http.StatusBadRequest, "validationError", fmt.Sprintf("Invalid transaction ID %q", txID))
		return
	}
	if len(body.Mutations) == 0 {
		writeError(w, http.StatusBadRequest, "validationError", "No mutations given")
		return
	}
	ops := make([]op, len(body.Mutations))
	for i, m := range body.Mutations {
		o, err := parseMutation(m)
		if err != nil {
			writeError(w, http.StatusBadRequest, "validationError", fmt.Sprintf("Mutation %d: %v", i, err))
			return
		}
		ops[i] = o
	}

	status, resp := l.apply(txID, ops, q.Get("dryRun") == "true")
	writeJSON(w, status, resp)
}

func parseMutation(m map[string]json.RawMessage) (op, error) {
	if len(m) != 1 {
		return op{}, errors.New("a mutation must have exactly one of create, createOrReplace, createIfNotExists, delete, patch")
	}
	var o op
	var raw json.RawMessage
	for k, v := range m { // the only entry
		o.kind, raw = k, v
	}
	switch o.kind {
	case "create", "createOrReplace", "createIfNotExists":
		if err := json.Unmarshal(raw, &o.doc); err != nil || o.doc == nil {
			return op{}, fmt.Errorf("%s needs a document object", o.kind)
		}
		switch id := o.doc["_id"].(type) {
		case string:
			o.id = id
		case nil:
			if o.kind != "create" {
				return op{}, fmt.Errorf("%s needs an _id", o.kind)
			}
			o.id = rand.Text()
			o.doc["_id"] = o.id
		default:
			return op{}, errors.New("_id must be a string")
		}
		if t, _ := o.doc["_type"].(string); t == "" {
			return op{}, errors.New("document is missing _type")
		}
	case "delete":
		var d map[string]json.RawMessage
		if err := json.Unmarshal(raw, &d); err != nil {
			return op{}, errors.New("delete needs an object")
		}
		if _, ok := d["query"]; ok {
			return op{}, errors.New("memlake does not support delete by query")
		}
		if err := json.Unmarshal(d["id"], &o.id); err != nil || len(d) != 1 {
			return op{}, errors.New(`delete needs exactly {"id": "<document id>"}`)
		}
	case "patch":
		var p map[string]json.RawMessage
		if err := json.Unmarshal(raw, &p); err != nil {
			return op{}, errors.New("patch needs an object")
		}
		for k, v := range p {
			var err error
			switch k {
			case "id":
				err = json.Unmarshal(v, &o.id)
			case "ifRevisionID":
				err = json.Unmarshal(v, &o.ifRev)
			case "set":
				err = json.Unmarshal(v, &o.set)
			default:
				return op{}, fmt.Errorf("memlake supports only id, ifRevisionID and set in a patch, not %q", k)
			}
			if err != nil {
				return op{}, fmt.Errorf("patch %s: %v", k, err)
			}
		}
		if len(o.set) == 0 {
			return op{}, errors.New("patch has nothing to set")
		}
		for k := range o.set {
			if !plainField(k) {
				return op{}, fmt.Errorf("memlake supports only top-level, non-system field names in set, not %q", k)
			}
		}
	default:
		return op{}, fmt.Errorf("unknown mutation type %q", o.kind)
	}
	if !validID(o.id) {
		return op{}, fmt.Errorf("malformed document ID %q", o.id)
	}
	return o, nil
}

func plainField(k string) bool {
	switch k {
	case "", "_id", "_rev", "_type", "_createdAt", "_updatedAt":
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validTransactionID(id string) bool {
	if len(id) > 200 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// apply runs the transaction against a private overlay and commits the
// overlay only if every mutation succeeded, so a transaction is all or
// nothing. It returns the status and body to answer.
func (l *Lake) apply(txID string, ops []op, dryRun bool) (int, any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.txIDs[txID]; dup {
		return http.StatusConflict, map[string]any{"error": map[string]any{
			"description": fmt.Sprintf("Transaction with ID %q already exists", txID),
			"type":        "transactionAlreadyExistsError",
		}}
	}

	overlay := make(map[string]map[string]any, len(ops)) // nil value: deleted
	var order []string                                   // ids in first-touched order
	current := func(id string) map[string]any {
		if d, ok := overlay[id]; ok {
			return d
		}
		if e := l.docs[id]; e != nil {
			return e.doc
		}
		return nil
	}
	put := func(id string, d map[string]any) {
		if _, ok := overlay[id]; !ok {
			order = append(order, id)
		}
		overlay[id] = d
	}

	var results []result
	effects := make([]string, len(ops))
	for i, o := range ops {
		old := current(o.id)
		operation := "update"
		switch o.kind {
		case "create":
			if old != nil {
				return mutationError(itemError{i, map[string]any{
					"type": "documentAlreadyExistsError", "id": o.id,
					"description": fmt.Sprintf("Document by ID %q already exists", o.id),
				}})
			}
			put(o.id, maps.Clone(o.doc))
			operation = "create"
		case "createOrReplace":
			d := maps.Clone(o.doc)
			if old == nil {
				operation = "create"
			} else {
				d["_createdAt"] = old["_createdAt"]
			}
			put(o.id, d)
		case "createIfNotExists":
			if old != nil {
				operation = "none"
				break
			}
			put(o.id, maps.Clone(o.doc))
			operation = "create"
		case "delete":
			if old == nil {
				operation = "none"
				break
			}
			put(o.id, nil)
			operation = "delete"
		case "patch":
			if old == nil {
				return mutationError(itemError{i, map[string]any{
					"type": "documentNotFoundError", "id": o.id,
					"description": fmt.Sprintf("The document with the ID %q was not found", o.id),
				}})
			}
			// Revisions change only at commit, so a guard compares with the
			// revision the document had before this transaction.
			if cur, _ := old["_rev"].(string); o.ifRev != "" && cur != o.ifRev {
				return mutationError(itemError{i, map[string]any{
					"type": "documentRevisionIDDoesNotMatchError", "id": o.id,
					"currentRevisionID": cur, "expectedRevisionID": o.ifRev,
					"description": fmt.Sprintf("Document %q has unexpected revision ID (%q), expected %q", o.id, cur, o.ifRev),
				}})
			}
			d := maps.Clone(old)
			maps.Copy(d, o.set)
			put(o.id, d)
		}
		results = append(results, result{ID: o.id, Operation: operation})
		effects[i] = operation
	}

	if results == nil {
		results = []result{}
	}
	resp := map[string]any{"transactionId": txID, "results": results}
	if dryRun {
		return http.StatusOK, resp
	}

	now := time.Now()
	stamp := timestamp(now)
	tx := transaction{id: txID, at: now, ops: ops, effects: effects}
	for _, id := range order {
		before, d := l.docs[id], overlay[id]
		if before == nil && d == nil {
			continue // created and deleted within the transaction
		}
		var after *entry
		if d != nil {
			// Sanity sets _rev of every document a transaction writes to the
			// transaction's id; soldout relies on it.
			d["_id"], d["_rev"], d["_updatedAt"] = id, txID, stamp
			if before == nil || d["_createdAt"] == nil {
				d["_createdAt"] = stamp
			}
			after = newEntry(d)
		}
		l.store(id, after)
		l.writes[id]++
		tx.changes = append(tx.changes, change{id: id, before: before, after: after})
	}
	l.txIDs[txID] = struct{}{}
	l.log = append(l.log, tx)
	if len(l.log) >= 2*logLimit {
		// Trim in halves so appending stays cheap.
		l.log = append(l.log[:0], l.log[len(l.log)-logLimit:]...)
	}
	return http.StatusOK, resp
}

func mutationError(it itemError) (int, any) {
	return http.StatusConflict, map[string]any{"error": map[string]any{
		"type":        "mutationError",
		"description": fmt.Sprintf("Mutation failed: %s", it.fields["description"]),
		"items":       []any{map[string]any{"index": it.index, "error": it.fields}},
	}}
}
