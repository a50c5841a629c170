package sanity

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"soldout/internal/stock"
)

var _ stock.Catalog = (*Client)(nil)

// versionsQuery lists the ids of every stored version of a published id
// (their contents are read from the doc endpoint). Studio uses
// the same function; in the raw perspective it includes release versions.
const versionsQuery = `*[sanity::versionOf($id)]{_id}`

// variantDoc is the part of an artwork document soldout reads; everything
// else in the body is skipped by the decoder.
type variantDoc struct {
	ID          string          `json:"_id"`
	Rev         string          `json:"_rev"`
	IsAvailable json.RawMessage `json:"isAvailable"`
}

var (
	jsonTrue  = []byte("true")
	jsonFalse = []byte("false")
	jsonNull  = []byte("null")
)

func (d variantDoc) variant() (stock.Variant, error) {
	v := stock.Variant{ID: d.ID, Rev: d.Rev}
	switch {
	case len(d.IsAvailable) == 0 || bytes.Equal(d.IsAvailable, jsonNull):
	case bytes.Equal(d.IsAvailable, jsonTrue), bytes.Equal(d.IsAvailable, jsonFalse):
		b := d.IsAvailable[0] == 't'
		v.Available = &b
	default:
		return v, stock.Errorf(stock.Misconfigured, "sanity document %s: isAvailable is %s, not a boolean; fix it in the Studio", d.ID, d.IsAvailable)
	}
	return v, nil
}

// Artwork reads the published document and its draft with one doc-endpoint
// request (strongly consistent) and, concurrently, lists the release
// versions with a raw-perspective query; versions it lists are then read
// from the doc endpoint too.
func (c *Client) Artwork(ctx context.Context, id string) (stock.Artwork, error) {
	if !validBaseID(id) {
		return stock.Artwork{}, invalidID(id)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type versions struct {
		docs []variantDoc
		err  error
	}
	ch := make(chan versions, 1)
	go func() {
		var vs versions
		// id passed validBaseID, so quoting it is its exact JSON encoding.
		vs.err = c.query(ctx, versionsQuery, []queryParam{{"id", `"` + id + `"`}}, "raw", &vs.docs)
		ch <- vs
	}()

	draftID := draftPrefix + id
	docs, err := getDocuments[variantDoc](ctx, c, []string{id, draftID})
	if err != nil {
		cancel()
		<-ch
		return stock.Artwork{}, err
	}
	vs := <-ch
	if vs.err != nil {
		return stock.Artwork{}, vs.err
	}

	art := stock.Artwork{ID: id}
	var draft *stock.Variant
	for _, d := range docs {
		v, err := d.variant()
		if err != nil {
			return stock.Artwork{}, err
		}
		switch d.ID {
		case id:
			art.Published = &v
		case draftID:
			draft = &v
		default:
			return stock.Artwork{}, stock.Errorf(stock.Internal, "sanity doc endpoint returned %q when asked for %s", d.ID, id)
		}
	}
	if draft != nil {
		art.Others = append(art.Others, *draft)
	}
	// The query answers from Sanity's search store, which lags the
	// documents: it only says which release versions exist. Their revisions
	// are read from the doc endpoint, one request more when there are any,
	// so that the write's guards are current and a version deleted
	// meanwhile is not written.
	var versionIDs []string
	for _, d := range vs.docs {
		if base, ok := versionBase(d.ID); ok && base == id && validDocID(d.ID) {
			versionIDs = append(versionIDs, d.ID)
		}
	}
	fresh, err := getDocuments[variantDoc](ctx, c, versionIDs)
	if err != nil {
		return stock.Artwork{}, err
	}
	first := len(art.Others)
	for _, d := range fresh {
		if !slices.Contains(versionIDs, d.ID) {
			return stock.Artwork{}, stock.Errorf(stock.Internal, "sanity doc endpoint returned %q when asked for the versions of %s", d.ID, id)
		}
		v, err := d.variant()
		if err != nil {
			return stock.Artwork{}, err
		}
		art.Others = append(art.Others, v)
	}
	slices.SortFunc(art.Others[first:], func(a, b stock.Variant) int { return strings.Compare(a.ID, b.ID) })
	return art, nil
}

// Draft reads only drafts.<id>, from the strongly consistent doc endpoint;
// nil when there is none.
func (c *Client) Draft(ctx context.Context, id string) (*stock.Variant, error) {
	if !validBaseID(id) {
		return nil, invalidID(id)
	}
	docs, err := getDocuments[variantDoc](ctx, c, []string{draftPrefix + id})
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		if d.ID == draftPrefix+id {
			v, err := d.variant()
			if err != nil {
				return nil, err
			}
			return &v, nil
		}
	}
	return nil, nil
}

// SetAvailable patches isAvailable on every variant in one transaction,
// each guarded by the revision it was read at. It writes no other field.
func (c *Client) SetAvailable(ctx context.Context, txID string, available bool, variants []stock.Variant) error {
	if len(variants) == 0 {
		return nil
	}
	if txID == "" {
		return stock.Errorf(stock.Internal, "sanity: SetAvailable needs a deterministic transaction id")
	}
	set := map[string]any{"isAvailable": available}
	muts := make([]Mutation, len(variants))
	for i, v := range variants {
		if v.Rev == "" {
			return stock.Errorf(stock.Internal, "sanity: variant %s has no revision to guard the write", v.ID)
		}
		muts[i] = Mutation{Patch: &Patch{ID: v.ID, IfRevisionID: v.Rev, Set: set}}
	}
	_, err := c.Mutate(ctx, MutateRequest{Mutations: muts, TransactionID: txID})
	if alreadyCommitted(err) || writtenBy(err, txID) {
		return nil // an earlier attempt under this id committed
	}
	return err
}

// pingID names no real document; counting it proves host, dataset and token.
const pingID = "soldout-ping"

// Ping runs a trivial query to prove that the host, the dataset and the
// token work.
func (c *Client) Ping(ctx context.Context) error {
	var n int
	return c.query(ctx, "count(*[_id == $id])", []queryParam{{"id", `"` + pingID + `"`}}, "raw", &n)
}

// DryRunWrite asks Sanity to validate a write without applying it, proving
// that the token may write to the dataset.
func (c *Client) DryRunWrite(ctx context.Context) error {
	_, err := c.Mutate(ctx, MutateRequest{
		DryRun: true,
		Mutations: []Mutation{{CreateIfNotExists: map[string]any{
			"_id":   "soldout-check",
			"_type": "soldout.check",
		}}},
	})
	return err
}
