package sanity_test

import (
	"testing"

	"soldout/internal/sanity"
	"soldout/internal/sanity/sanitytest"
	"soldout/internal/stock"
)

var plainFields = sanity.ProductFields{Type: "artwork", Title: "title", Price: "price", Currency: "currency", Image: "imageUrl"}

func TestProduct(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]any
		names  sanity.ProductFields
		want   stock.Product
	}{
		{"plain schema", map[string]any{"title": " Blue Heron ", "price": 1250.5, "currency": "EUR", "imageUrl": "https://cdn.example/heron.jpg", "isAvailable": true},
			plainFields, stock.Product{Title: "Blue Heron", Price: "1250.5", Currency: "eur", ImageURL: "https://cdn.example/heron.jpg", Available: true}},
		{"no currency, no image, isAvailable absent", map[string]any{"title": "Dune", "price": 900},
			plainFields, stock.Product{Title: "Dune", Price: "900", Available: true}},
		{"sold", map[string]any{"title": "Dune", "price": 900, "isAvailable": false},
			plainFields, stock.Product{Title: "Dune", Price: "900"}},
		{"no price", map[string]any{"title": "Dune", "price": nil},
			plainFields, stock.Product{Title: "Dune", Available: true}},
		{"price kept exactly as stored", map[string]any{"title": "Dune", "price": 19.99},
			plainFields, stock.Product{Title: "Dune", Price: "19.99", Available: true}},
		{"other field names, a Sanity image field", map[string]any{
			"name": "Salt Marsh", "amount": 70000, "ccy": "jpy",
			"image": map[string]any{"_type": "image", "asset": map[string]any{"_ref": "image-Tb9Ew8CXIwaY6R1kjMvI0uRR-2000x3000-jpg", "_type": "reference"}},
		}, sanity.ProductFields{Type: "artwork", Title: "name", Price: "amount", Currency: "ccy", Image: "image"},
			stock.Product{Title: "Salt Marsh", Price: "70000", Currency: "jpy", Available: true,
				ImageURL: "https://cdn.sanity.io/images/p1/production/Tb9Ew8CXIwaY6R1kjMvI0uRR-2000x3000.jpg"}},
		{"unusable images are left out", map[string]any{"title": "Dune", "price": 1, "imageUrl": "http://insecure.example/a.jpg"},
			plainFields, stock.Product{Title: "Dune", Price: "1", Available: true}},
		{"image object without an asset", map[string]any{"title": "Dune", "price": 1, "imageUrl": map[string]any{"alt": "x"}},
			plainFields, stock.Product{Title: "Dune", Price: "1", Available: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sanitytest.Options{})
			putArtwork(e.lake, "art-1", tt.fields)
			got, err := e.client.Products(tt.names).Product(t.Context(), "art-1")
			if err != nil {
				t.Fatal(err)
			}
			tt.want.ID = "art-1"
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestProductRefused(t *testing.T) {
	tests := []struct {
		name   string
		id     string
		fields map[string]any
		code   stock.Code
	}{
		{"unknown artwork", "missing", nil, stock.NotFound},
		{"a document of another type", "print-1", nil, stock.NotFound},
		{"a system document", "_.groups.public", nil, stock.NotFound},
		{"a draft id", "drafts.art-1", nil, stock.Invalid},
		{"a hostile id", "art-1,drafts.art-1", nil, stock.Invalid},
		{"price is a string", "art-1", map[string]any{"price": "1250"}, stock.Misconfigured},
		{"title is a number", "art-1", map[string]any{"title": 7, "price": 1}, stock.Misconfigured},
		{"currency is an object", "art-1", map[string]any{"price": 1, "currency": map[string]any{"code": "eur"}}, stock.Misconfigured},
		{"isAvailable is not a boolean", "art-1", map[string]any{"price": 1, "isAvailable": "yes"}, stock.Misconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sanitytest.Options{})
			putArtwork(e.lake, "art-1", tt.fields)
			putArtwork(e.lake, "drafts.art-1", nil)
			e.lake.Put(map[string]any{"_id": "print-1", "_type": "print", "title": "Heron, A4 print", "price": 35, "isAvailable": true})
			e.lake.Put(map[string]any{"_id": "_.groups.public", "_type": "system.group", "title": "Public", "price": 1})
			_, err := e.client.Product(t.Context(), tt.id, plainFields)
			if stock.ErrorCode(err) != tt.code {
				t.Errorf("err = %v, want code %s", err, tt.code)
			}
		})
	}
}
