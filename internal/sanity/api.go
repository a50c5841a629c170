package sanity

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"soldout/internal/stock"
)

// Mutation is one entry of a transaction. Exactly one field is set.
type Mutation struct {
	Create            map[string]any `json:"create,omitempty"`
	CreateOrReplace   map[string]any `json:"createOrReplace,omitempty"`
	CreateIfNotExists map[string]any `json:"createIfNotExists,omitempty"`
	Delete            *Delete        `json:"delete,omitempty"`
	Patch             *Patch         `json:"patch,omitempty"`
}

// Delete removes a document.
type Delete struct {
	ID string `json:"id"`
}

// Patch sets top-level fields of an existing document. With IfRevisionID it
// applies only if the document's _rev is still that one. (Sanity can also
// patch the documents a query matches, but that query runs on the eventually
// consistent search store, so soldout names every document it writes.)
type Patch struct {
	ID           string         `json:"id"`
	IfRevisionID string         `json:"ifRevisionID,omitempty"`
	Set          map[string]any `json:"set"`
}

// MutateRequest is one atomic transaction.
type MutateRequest struct {
	Mutations []Mutation
	// TransactionID makes a retried request safe: Sanity refuses an id that
	// already committed. Empty means a random one, chosen once per call so
	// that the call's own retries stay safe.
	TransactionID string
	// DryRun asks Sanity to validate and answer without writing.
	DryRun bool
}

// MutateResult is Sanity's answer to a committed (or dry-run) transaction.
type MutateResult struct {
	TransactionID string       `json:"transactionId"`
	Results       []MutateItem `json:"results"`
}

func (r *MutateResult) missing() string {
	if r.TransactionID == "" {
		return "transactionId"
	}
	return ""
}

// MutateItem is the effect on one document: operation is "create",
// "update", "delete" or "none".
type MutateItem struct {
	ID        string `json:"id"`
	Operation string `json:"operation"`
}

type docResponse[T any] struct {
	Documents []T `json:"documents"`
	Omitted   []struct {
		ID     string `json:"id"`
		Reason string `json:"reason"`
	} `json:"omitted"`
}

func (r *docResponse[T]) missing() string {
	if r.Documents == nil { // "documents": [] decodes to an empty slice
		return "documents"
	}
	return ""
}

// Documents reads documents by id from the strongly consistent doc
// endpoint, in one request. Missing ids are absent from the result. Every
// id must be a plain, "drafts." or "versions.<release>." Sanity id; other
// ids are refused with stock.Invalid before anything is sent.
func (c *Client) Documents(ctx context.Context, ids ...string) ([]map[string]json.RawMessage, error) {
	return getDocuments[map[string]json.RawMessage](ctx, c, ids)
}

func getDocuments[T any](ctx context.Context, c *Client, ids []string) ([]T, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	for _, id := range ids {
		if !validDocID(id) {
			return nil, invalidID(id)
		}
	}
	var resp docResponse[T]
	attempts, err := c.do(ctx, endpointDoc, http.MethodGet, c.docURL+strings.Join(ids, ","), nil, &resp)
	if err != nil {
		return nil, c.classify(endpointDoc, attempts, err, nil)
	}
	for _, o := range resp.Omitted {
		if o.Reason == "permission" {
			// Treating an unreadable draft as absent would let its stale
			// isAvailable be published over a sold artwork.
			return nil, stock.Errorf(stock.Misconfigured,
				"the sanity token may not read %s in dataset %s: it needs the Editor role (sanity.io/manage → API → Tokens), which can read drafts and release versions",
				o.ID, c.dataset)
		}
	}
	return resp.Documents, nil
}

var paramNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

type queryParam struct {
	name string
	json string // the value as JSON
}

// Query runs a GROQ query with parameters, which are sent as JSON values
// ($name=<JSON>) and never spliced into the query text, and decodes the
// result into out (nil discards it). perspective may be empty (Sanity's
// default, published) or e.g. "raw". Long queries are sent by POST.
func (c *Client) Query(ctx context.Context, groq string, params map[string]any, perspective string, out any) error {
	ps := make([]queryParam, 0, len(params))
	for name, v := range params {
		if !paramNamePattern.MatchString(name) {
			return stock.Errorf(stock.Invalid, "sanity query: %q is not a GROQ parameter name", name)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return stock.Wrap(stock.Invalid, err, "sanity query: parameter $%s", name)
		}
		ps = append(ps, queryParam{name, string(b)})
	}
	// A stable order gives stable URLs, for logs and caches.
	slices.SortFunc(ps, func(a, b queryParam) int { return strings.Compare(a.name, b.name) })
	return c.query(ctx, groq, ps, perspective, out)
}

func (c *Client) query(ctx context.Context, groq string, params []queryParam, perspective string, out any) error {
	if out == nil {
		// Still decoded, so that an answer without "result" is told from one.
		out = new(json.RawMessage)
	}
	target := &queryResponse{Result: result{into: out}}
	var b strings.Builder
	b.Grow(len(c.queryURL) + 2*len(groq) + 64)
	b.WriteString(c.queryURL)
	b.WriteString("?query=")
	b.WriteString(url.QueryEscape(groq))
	for _, p := range params {
		b.WriteString("&%24")
		b.WriteString(p.name)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.json))
	}
	if perspective != "" {
		b.WriteString("&perspective=")
		b.WriteString(url.QueryEscape(perspective))
	}

	var attempts int
	var err error
	if b.Len() <= maxGetURL {
		attempts, err = c.do(ctx, endpointQuery, http.MethodGet, b.String(), nil, target)
	} else {
		body := struct {
			Query  string                     `json:"query"`
			Params map[string]json.RawMessage `json:"params,omitempty"`
		}{Query: groq}
		if len(params) > 0 {
			body.Params = make(map[string]json.RawMessage, len(params))
			for _, p := range params {
				body.Params[p.name] = json.RawMessage(p.json)
			}
		}
		raw, merr := json.Marshal(body)
		if merr != nil {
			return stock.Wrap(stock.Invalid, merr, "sanity query: encoding the request")
		}
		postURL := c.queryURL
		if perspective != "" {
			postURL += "?perspective=" + url.QueryEscape(perspective)
		}
		attempts, err = c.do(ctx, endpointQuery, http.MethodPost, postURL, raw, target)
	}
	if err != nil {
		return c.classify(endpointQuery, attempts, err, nil)
	}
	return nil
}

// queryResponse decodes "result" straight into the caller's value.
type queryResponse struct {
	Result result `json:"result"`
}

func (r *queryResponse) missing() string {
	if !r.Result.seen {
		return "result"
	}
	return ""
}

// result decodes into into and notes that the key was there (a null
// result, of a query that matched nothing, included).
type result struct {
	into any
	seen bool
}

func (r *result) UnmarshalJSON(b []byte) error {
	r.seen = true
	return json.Unmarshal(b, r.into)
}

// Mutate commits one transaction. A transaction id that already committed is
// a *stock.Error wrapping an *APIError of type transactionAlreadyExistsError,
// except for an id Mutate chose itself: then the earlier attempt of this very
// call committed, and Mutate reports success without results. A failed
// ifRevisionID guard, or a guarded patch of a vanished document, wraps
// stock.ErrRevisionMismatch.
func (c *Client) Mutate(ctx context.Context, req MutateRequest) (MutateResult, error) {
	if len(req.Mutations) == 0 {
		return MutateResult{}, stock.Errorf(stock.Invalid, "sanity mutate: no mutations")
	}
	for _, m := range req.Mutations {
		if err := checkMutation(m); err != nil {
			return MutateResult{}, err
		}
	}
	txID, chosen := req.TransactionID, false
	if txID == "" {
		txID, chosen = rand.Text(), true
	} else if !validTransactionID(txID) {
		return MutateResult{}, stock.Errorf(stock.Invalid, "sanity mutate: transaction id %q must be 1 to 128 of [A-Za-z0-9_-]", txID)
	}
	body, err := json.Marshal(struct {
		Mutations     []Mutation `json:"mutations"`
		TransactionID string     `json:"transactionId"`
	}{req.Mutations, txID})
	if err != nil {
		return MutateResult{}, stock.Wrap(stock.Invalid, err, "sanity mutate: encoding the mutations")
	}
	target := c.mutateURL
	if req.DryRun {
		target += "&dryRun=true"
	}
	var res MutateResult
	attempts, err := c.do(ctx, endpointMutate, http.MethodPost, target, body, &res)
	if err != nil {
		if chosen && attempts > 1 && alreadyCommitted(err) {
			return MutateResult{TransactionID: txID}, nil
		}
		return MutateResult{}, c.classify(endpointMutate, attempts, err, req.Mutations)
	}
	if !req.DryRun && res.TransactionID != txID {
		// Sanity commits under the id it was sent: another one is not its
		// answer to this request, and taken for one it would record a sale
		// that Sanity never saw.
		return MutateResult{}, stock.Errorf(stock.Unavailable, "sanity mutate: answered for transaction %.64q, not %q: not Sanity's answer to this request (a proxy or cache in between?)", res.TransactionID, txID)
	}
	return res, nil
}

func checkMutation(m Mutation) error {
	n := 0
	for _, d := range []struct {
		doc        map[string]any
		idOptional bool // Sanity chooses an id for a create without one
	}{{m.Create, true}, {m.CreateOrReplace, false}, {m.CreateIfNotExists, false}} {
		if d.doc == nil {
			continue
		}
		n++
		switch id := d.doc["_id"].(type) {
		case string:
			if !validDocID(id) {
				return invalidID(id)
			}
		case nil:
			if !d.idOptional {
				return stock.Errorf(stock.Invalid, "sanity mutate: a document without _id")
			}
		default:
			return stock.Errorf(stock.Invalid, "sanity mutate: _id must be a string")
		}
	}
	if m.Delete != nil {
		n++
		if !validDocID(m.Delete.ID) {
			return invalidID(m.Delete.ID)
		}
	}
	if m.Patch != nil {
		n++
		if !validDocID(m.Patch.ID) {
			return invalidID(m.Patch.ID)
		}
		if len(m.Patch.Set) == 0 {
			return stock.Errorf(stock.Invalid, "sanity mutate: patch of %s sets nothing", m.Patch.ID)
		}
	}
	if n != 1 {
		return stock.Errorf(stock.Invalid, "sanity mutate: a mutation needs exactly one of create, createOrReplace, createIfNotExists, delete, patch; got %d", n)
	}
	return nil
}
