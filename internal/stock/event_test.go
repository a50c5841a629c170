package stock

import (
	"encoding/json"
	"fmt"
	"reflect"
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

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"cs_live_a1", "cs_live_a1"},
		{"Zoë, 東京", "Zoë, 東京"},
		{"a\x00b", "a\uFFFDb"},
		{"\xff", "\uFFFD"},
		// One U+FFFD per byte, as encoding/json decodes them.
		{"x\xe2\x82y", "x\uFFFD\uFFFDy"},
		{"\x00\x00", "\uFFFD\uFFFD"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestTextDecodesLikeJSON checks Text's promise: a body made Text decodes,
// with encoding/json, to the strings of the original.
func TestTextDecodesLikeJSON(t *testing.T) {
	for _, raw := range []string{"plain", "bad \xff byte", "cut \xe2\x82 rune", "\xc3\x28", "é\xed\xa0\x80"} {
		body := `{"s":"` + raw + `"}`
		var orig, cleaned struct{ S string }
		if err := json.Unmarshal([]byte(body), &orig); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(Text(body)), &cleaned); err != nil {
			t.Fatal(err)
		}
		if orig.S != cleaned.S {
			t.Errorf("%q: the original decodes to %q, made Text to %q", raw, orig.S, cleaned.S)
		}
	}
}

func TestEventClean(t *testing.T) {
	ids := []string{"art-1", "art\x00x"}
	ev := Event{ID: "evt\x00", Type: CheckoutCompleted, APIVersion: "\xff", Payload: []byte("{\"s\":\"\xff\"}"),
		Session: Session{ID: "cs\x00", Status: "complete", PaymentStatus: "paid\x00", Email: "b\xff@example.com", Currency: "eu\x00",
			ArtworkIDs: ids, MetadataKeys: []string{"k\x00"}}}
	got := ev.Clean()
	want := Event{ID: "evt\uFFFD", Type: CheckoutCompleted, APIVersion: "\uFFFD", Payload: []byte("{\"s\":\"\uFFFD\"}"),
		Session: Session{ID: "cs\uFFFD", Status: "complete", PaymentStatus: "paid\uFFFD", Email: "b\uFFFD@example.com", Currency: "eu\uFFFD",
			ArtworkIDs: []string{"art-1", "art\uFFFDx"}, MetadataKeys: []string{"k\uFFFD"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Clean:\n got %#v\nwant %#v", got, want)
	}
	if ids[1] != "art\x00x" {
		t.Errorf("Clean changed the caller's slice: %q", ids)
	}
	if ValidArtworkID(got.Session.ArtworkIDs[1]) {
		t.Errorf("a cleaned id %q passes ValidArtworkID", got.Session.ArtworkIDs[1])
	}
}
