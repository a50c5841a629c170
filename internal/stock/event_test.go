package stock

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestValidArtworkID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"artwork-42", true},
		{"a1b2c3d4-e5f6-7890-abcd-ef0123456789", true},
		{"imported.artwork_7", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"drafts.artwork-42", false},
		{"versions.rSpring.artwork-42", false},
		{"a,b", false},
		{"a/b", false},
		{"../a", false},
		{"a..b", false},
		{".a", false},
		{"a.", false},
		{"-a", false},
		{"a.-b", false},
		{`a"`, false},
		{"a b", false},
		{"a%2Cb", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := ValidArtworkID(tt.id); got != tt.ok {
			t.Errorf("ValidArtworkID(%.20q) = %v, want %v", tt.id, got, tt.ok)
		}
	}
}

// A session naming no artwork keeps its metadata's keys, for the log line
// that says what the checkout route sent instead.
func TestReadMetadata(t *testing.T) {
	var s Session
	s.ReadMetadata(map[string]string{"productId": "p1", "note": "x"})
	if s.ArtworkIDs != nil || !slices.Equal(s.MetadataKeys, []string{"note", "productId"}) {
		t.Errorf("no artwork: ids %q, keys %q", s.ArtworkIDs, s.MetadataKeys)
	}
	s.ReadMetadata(map[string]string{"artworkId": "a1", "note": "x"})
	if !slices.Equal(s.ArtworkIDs, []string{"a1"}) || s.MetadataKeys != nil {
		t.Errorf("an artwork: ids %q, keys %q", s.ArtworkIDs, s.MetadataKeys)
	}
	long := map[string]string{}
	for i := range 30 {
		long[fmt.Sprintf("%050d", i)] = ""
	}
	s.ReadMetadata(long)
	if len(s.MetadataKeys) != 20 || len(s.MetadataKeys[0]) > 40+len("…") {
		t.Errorf("keys a session's creator chose are not bounded: %d, %q", len(s.MetadataKeys), s.MetadataKeys[0])
	}
}

func TestArtworkIDsFromMetadata(t *testing.T) {
	tests := []struct {
		md   map[string]string
		want []string
	}{
		{map[string]string{"artworkId": " a1 "}, []string{"a1"}},
		{map[string]string{"artworkId": "a1", "artworkIds": "a2,a3"}, []string{"a1"}},
		{map[string]string{"artworkIds": "a2, a3,,"}, []string{"a2", "a3"}},
		{map[string]string{"other": "x"}, nil},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := ArtworkIDsFromMetadata(tt.md); !slices.Equal(got, tt.want) {
			t.Errorf("%v → %v, want %v", tt.md, got, tt.want)
		}
	}
}
