package stock

import (
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
