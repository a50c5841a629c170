package stock

import "context"

// Variant is one stored version of an artwork document: the published
// document, its draft, or a release version.
type Variant struct {
	ID  string
	Rev string
	// Available is the document's isAvailable; nil when the field is absent,
	// which soldout reads as "for sale" (the shop's schema defaults to true).
	Available *bool
}

// IsAvailable reports whether the variant offers the artwork for sale.
func (v Variant) IsAvailable() bool { return v.Available == nil || *v.Available }

// Artwork is everything the catalog stores for one published id.
type Artwork struct {
	ID        string
	Published *Variant  // nil when the published document does not exist
	Others    []Variant // the draft and release versions that exist
}

// Variants returns the published document (if any) followed by the others.
func (a Artwork) Variants() []Variant {
	vs := make([]Variant, 0, 1+len(a.Others))
	if a.Published != nil {
		vs = append(vs, *a.Published)
	}
	return append(vs, a.Others...)
}

// Catalog is the shop's content store (Sanity) as the rules need it.
type Catalog interface {
	// Artwork reads the published document, its draft (strongly consistent)
	// and its release versions.
	Artwork(ctx context.Context, id string) (Artwork, error)
	// Draft reads only the draft of id (strongly consistent); nil when there
	// is none.
	Draft(ctx context.Context, id string) (*Variant, error)
	// SetAvailable writes one atomic transaction, identified by txID, that
	// sets isAvailable on each variant, each guarded by its Rev. A
	// transaction that was already committed under txID is a success.
	// A failed guard or a vanished variant is ErrRevisionMismatch.
	SetAvailable(ctx context.Context, txID string, available bool, variants []Variant) error
}
