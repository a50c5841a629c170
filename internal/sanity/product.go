package sanity

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"

	"soldout/internal/stock"
)

// ProductFields names the artwork document type (SOLDOUT_ARTWORK_TYPE) and
// the fields the checkout reads (SOLDOUT_FIELD_TITLE, _PRICE, _CURRENCY,
// _IMAGE). Only top-level fields.
type ProductFields struct {
	// Type is the artworks' _type. An id from a browser may name any
	// document the token can read (another type with a price, a system
	// document): only artworks can be checked out.
	Type     string
	Title    string // a string
	Price    string // a number, in major units
	Currency string // a string such as "eur"; optional
	Image    string // an https URL, or a Sanity image field; optional
}

// Product reads the published artwork id from the doc endpoint, which is
// strongly consistent: a piece sold a moment ago is never offered again from
// a stale read. A missing artwork is a NotFound error; a field of the wrong
// type is Misconfigured, naming the field.
func (c *Client) Product(ctx context.Context, id string, f ProductFields) (stock.Product, error) {
	if !validBaseID(id) {
		return stock.Product{}, invalidID(id)
	}
	docs, err := getDocuments[map[string]json.RawMessage](ctx, c, []string{id})
	if err != nil {
		return stock.Product{}, err
	}
	if len(docs) == 0 {
		return stock.Product{}, stock.Errorf(stock.NotFound, "no artwork %s in dataset %s", id, c.dataset)
	}
	doc := docs[0]
	if t := docType(doc); t != f.Type {
		// Answered like a missing artwork, so that the route does not tell
		// which other documents exist; logged, because it is also what a
		// schema whose artworks have another type looks like.
		c.log.WarnContext(ctx, "checkout of a document that is not an artwork refused (answered 404): if this is one of the shop's artworks, set SOLDOUT_ARTWORK_TYPE to its type",
			"artwork_id", id, "type", t, "artwork_type", f.Type)
		return stock.Product{}, stock.Errorf(stock.NotFound, "no artwork %s of type %q in dataset %s (the document is of type %q)", id, f.Type, c.dataset, t)
	}
	v, err := variantDoc{ID: id, IsAvailable: doc["isAvailable"]}.variant()
	if err != nil {
		return stock.Product{}, err
	}
	p := stock.Product{ID: id, Available: v.IsAvailable(), ImageURL: c.imageURL(doc[f.Image])}
	if p.Title, err = stringField(id, f.Title, doc[f.Title]); err != nil {
		return stock.Product{}, err
	}
	if p.Currency, err = stringField(id, f.Currency, doc[f.Currency]); err != nil {
		return stock.Product{}, err
	}
	p.Currency = strings.ToLower(p.Currency)
	switch raw := doc[f.Price]; {
	case isNull(raw):
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		// The literal as stored, so that the conversion to minor units is
		// exact (19.99 stays 19.99, not 19.989999…).
		p.Price = string(raw)
	default:
		return stock.Product{}, wrongType(id, f.Price, "a number", raw)
	}
	return p, nil
}

// Products binds field names to the client: the stock.Products that the
// checkout reads.
func (c *Client) Products(f ProductFields) stock.Products { return products{c, f} }

type products struct {
	c *Client
	f ProductFields
}

func (p products) Product(ctx context.Context, id string) (stock.Product, error) {
	return p.c.Product(ctx, id, p.f)
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// stringField reads an optional string field; "" when absent.
func stringField(id, field string, raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", wrongType(id, field, "a string", raw)
	}
	return strings.TrimSpace(s), nil
}

func wrongType(id, field, want string, raw json.RawMessage) error {
	return stock.Errorf(stock.Misconfigured, "artwork %s: field %q is %s, not %s; fix the document in the Studio, or name another field in soldout's settings",
		id, field, snippet(raw), want)
}

// imageRefPattern matches a Sanity image asset id: image-<hash>-<w>x<h>-<ext>.
var imageRefPattern = regexp.MustCompile(`^image-([A-Za-z0-9]+-[0-9]+x[0-9]+)-([a-z0-9]+)$`)

// imageURL turns the image field into a URL Stripe can show: an https URL
// as is, or a Sanity image field ({"asset":{"_ref":…}}) as its CDN URL. The
// picture is optional, so anything else gives none rather than an error.
func (c *Client) imageURL(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if u, err := url.Parse(s); err == nil && u.Scheme == "https" && u.Host != "" {
			return s
		}
		return ""
	}
	var img struct {
		Asset struct {
			Ref string `json:"_ref"`
		} `json:"asset"`
	}
	if json.Unmarshal(raw, &img) != nil {
		return ""
	}
	m := imageRefPattern.FindStringSubmatch(img.Asset.Ref)
	if m == nil {
		return ""
	}
	return "https://cdn.sanity.io/images/" + c.project + "/" + c.dataset + "/" + m[1] + "." + m[2]
}

// docType is doc's _type, "" when it has none.
func docType(doc map[string]json.RawMessage) string {
	var t string
	_ = json.Unmarshal(doc["_type"], &t) // anything but a string reads as none
	return t
}
