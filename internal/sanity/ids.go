package sanity

import (
	"strings"

	"soldout/internal/stock"
)

const (
	draftPrefix   = "drafts."
	versionPrefix = "versions."
)

// validDocID reports whether id is safe to put in a URL path or a mutation:
// a published id, or "drafts."/"versions.<release>." followed by one. The
// doc endpoint separates ids with commas, so anything looser could address
// other documents.
func validDocID(id string) bool {
	switch {
	case strings.HasPrefix(id, draftPrefix):
		return validBaseID(id[len(draftPrefix):])
	case strings.HasPrefix(id, versionPrefix):
		release, base, ok := strings.Cut(id[len(versionPrefix):], ".")
		return ok && len(release) <= stock.MaxArtworkIDLength && validSegment(release) && validBaseID(base)
	}
	return validBaseID(id)
}

// validBaseID is stock.ValidArtworkID made stricter by Sanity's path rules:
// ids are dot-separated paths whose segments are not empty and do not start
// with '-'. That also keeps "." and ".." out of URL paths.
func validBaseID(id string) bool {
	if !stock.ValidArtworkID(id) {
		return false
	}
	for seg := range strings.SplitSeq(id, ".") {
		if !validSegment(seg) {
			return false
		}
	}
	return true
}

func validSegment(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isSegmentChar(s[i]) {
			return false
		}
	}
	return true
}

func isSegmentChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// validTransactionID keeps transaction ids to the characters the reference
// recommends ([A-Za-z0-9_-]) and to a modest length.
func validTransactionID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isSegmentChar(id[i]) {
			return false
		}
	}
	return true
}

// versionBase returns the published id of a "versions.<release>.<id>" id.
func versionBase(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, versionPrefix)
	if !ok {
		return "", false
	}
	_, base, ok := strings.Cut(rest, ".")
	return base, ok
}

func invalidID(id string) error {
	shown := id
	if len(shown) > 64 {
		shown = shown[:64] + "…"
	}
	return stock.Errorf(stock.Invalid, "sanity: %q is not a valid document id", shown)
}
