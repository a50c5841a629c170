package sanity

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"soldout/internal/stock"
)

// Sanity error type names this package branches on. Types are the stable
// part of Sanity's error bodies; descriptions are prose and may change.
const (
	typeRevisionMismatch         = "documentRevisionIDDoesNotMatchError"
	typeDocumentNotFound         = "documentNotFoundError"
	typeTransactionAlreadyExists = "transactionAlreadyExistsError"
	typeTransactionConflict      = "transactionConflictError"
)

const (
	maxRetryAfter        = 5 * time.Minute
	defaultRateLimitWait = time.Second
	maxSnippet           = 200 // bytes of a non-JSON error body kept
)

// APIError is a non-2xx answer from Sanity, parsed from any of its body
// shapes: {"error":{"type","description","items"}} for API errors and
// {"statusCode","error","message","errorCode"} from the gateway (401, 429).
type APIError struct {
	Status int
	// Type is Sanity's error type, such as mutationError or
	// transactionAlreadyExistsError; empty for the gateway shape.
	Type        string
	Description string
	Items       []ItemError // per-mutation errors of a mutationError
	ErrorCode   string      // e.g. SIO-401-ANF
	// RetryAfter is what retry-after or ratelimit-reset asked for; 0 if neither.
	RetryAfter time.Duration
}

// ItemError is the error of one mutation in a failed transaction.
type ItemError struct {
	Index       int // position of the mutation in the request
	Type        string
	Description string
	ID          string // the document concerned, when Sanity says
	// Set for documentRevisionIDDoesNotMatchError.
	CurrentRevisionID  string
	ExpectedRevisionID string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sanity answered %d", e.Status)
	if e.Type != "" {
		b.WriteString(" " + e.Type)
	} else if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" " + t)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.ErrorCode != "" {
		b.WriteString(" (" + e.ErrorCode + ")")
	}
	for i, it := range e.Items {
		if i == 3 {
			fmt.Fprintf(&b, " [and %d more]", len(e.Items)-i)
			break
		}
		fmt.Fprintf(&b, " [mutation %d: %s]", it.Index, it.Type)
	}
	return b.String()
}

// transient reports whether sending the same request again may succeed: a
// rate limit, a server error, or a transaction rolled back by a concurrent
// one (at the top level or as an item of a mutationError).
func (e *APIError) transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.hasType(typeTransactionConflict)
}

// hasType reports whether the error or one of its items has type t.
func (e *APIError) hasType(t string) bool {
	if e.Type == t {
		return true
	}
	for _, it := range e.Items {
		if it.Type == t {
			return true
		}
	}
	return false
}

func parseAPIError(status int, h http.Header, body []byte) *APIError {
	ae := &APIError{Status: status}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		ae.RetryAfter = retryAfter(h)
	}
	var top struct {
		Error     json.RawMessage `json:"error"`
		Message   string          `json:"message"`
		ErrorCode string          `json:"errorCode"`
	}
	if json.Unmarshal(body, &top) != nil {
		// A proxy's HTML page or plain text: keep a readable snippet.
		ae.Description = snippet(body)
		return ae
	}
	ae.Description, ae.ErrorCode = top.Message, top.ErrorCode
	if len(top.Error) == 0 || top.Error[0] != '{' {
		return ae // gateway shape: "error" is the status text
	}
	var inner struct {
		Type        string `json:"type"`
		Description string `json:"description"`
		Items       []struct {
			Index int `json:"index"`
			Error struct {
				Type               string `json:"type"`
				Description        string `json:"description"`
				ID                 string `json:"id"`
				CurrentRevisionID  string `json:"currentRevisionID"`
				ExpectedRevisionID string `json:"expectedRevisionID"`
			} `json:"error"`
		} `json:"items"`
	}
	if json.Unmarshal(top.Error, &inner) != nil {
		return ae
	}
	ae.Type = inner.Type
	if inner.Description != "" {
		ae.Description = inner.Description
	}
	for _, it := range inner.Items {
		ae.Items = append(ae.Items, ItemError{
			Index:              it.Index,
			Type:               it.Error.Type,
			Description:        it.Error.Description,
			ID:                 it.Error.ID,
			CurrentRevisionID:  it.Error.CurrentRevisionID,
			ExpectedRevisionID: it.Error.ExpectedRevisionID,
		})
	}
	return ae
}

func snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > maxSnippet {
		s = s[:maxSnippet]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// retryAfter reads retry-after (seconds or an HTTP date) and ratelimit-reset
// (seconds until the window resets, or a Unix time) and returns the longer.
func retryAfter(h http.Header) time.Duration {
	var d time.Duration
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			d = seconds(s)
		} else if t, err := http.ParseTime(v); err == nil {
			d = time.Until(t)
		}
	}
	if v := h.Get("Ratelimit-Reset"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			if s > 1e9 { // a Unix time, not a delay
				s -= float64(time.Now().UnixNano()) / 1e9
			}
			d = max(d, seconds(s))
		}
	}
	return min(max(d, 0), maxRetryAfter)
}

// seconds converts a wait read from a header, capped before the conversion,
// which would overflow into a negative wait, read as none.
func seconds(s float64) time.Duration {
	return time.Duration(min(max(s, 0), maxRetryAfter.Seconds()) * float64(time.Second))
}

// rateLimitWait is how long all mutations pause after a 429 or an exhausted
// ratelimit-remaining.
func rateLimitWait(h http.Header) time.Duration {
	if d := retryAfter(h); d > 0 {
		return d
	}
	return defaultRateLimitWait
}

// classify turns what do returned into soldout's vocabulary. muts are the
// mutations sent, if any: a documentNotFoundError means "changed since read"
// only for a patch that was guarded by a revision.
func (c *Client) classify(endpoint string, attempts int, err error, muts []Mutation) error {
	var se *stock.Error
	if errors.As(err, &se) {
		return err
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		return stock.Wrap(stock.Unavailable, err, "sanity %s: no usable answer after %d attempt(s)", endpoint, attempts)
	}
	switch {
	case ae.Status == http.StatusUnauthorized:
		return stock.Wrap(stock.Misconfigured, ae,
			"sanity refused the token for project %s: use a robot token created in sanity.io/manage → this project → API → Tokens, with the Editor role (which can write and read drafts); a token of another project, a revoked one or a personal session token gives this error",
			c.project)
	case ae.Status == http.StatusForbidden:
		return stock.Wrap(stock.Misconfigured, ae,
			"the sanity token may not do this in project %s, dataset %s: it needs the Editor role (create a robot token in sanity.io/manage → API → Tokens), which can write and read drafts; Viewer tokens cannot write",
			c.project, c.dataset)
	case ae.Status == http.StatusNotFound:
		return stock.Wrap(stock.Misconfigured, ae, "sanity %s: project %s has no dataset %s, or the host is wrong", endpoint, c.project, c.dataset)
	case ae.transient():
		return stock.Wrap(stock.Unavailable, ae, "sanity %s: still failing after %d attempt(s)", endpoint, attempts)
	case ae.Status == http.StatusConflict:
		if ae.hasType(typeRevisionMismatch) || guardedNotFound(ae, muts) {
			return stock.Wrap(stock.Conflict, fmt.Errorf("%w (%w)", stock.ErrRevisionMismatch, ae), "sanity %s", endpoint)
		}
		return stock.Wrap(stock.Conflict, ae, "sanity %s", endpoint)
	default:
		return stock.Wrap(stock.Internal, ae, "sanity %s: request refused, a bug in soldout", endpoint)
	}
}

func guardedNotFound(ae *APIError, muts []Mutation) bool {
	for _, it := range ae.Items {
		if it.Type == typeDocumentNotFound && it.Index >= 0 && it.Index < len(muts) &&
			muts[it.Index].Patch != nil && muts[it.Index].Patch.IfRevisionID != "" {
			return true
		}
	}
	return false
}

// alreadyCommitted reports whether err says the transaction id was used by
// a transaction that committed: Sanity's 409, not any answer whose body
// names the type (a proxy's, or a 5xx), which would record a write that
// never happened.
func alreadyCommitted(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusConflict && ae.Type == typeTransactionAlreadyExists
}

// writtenBy reports whether a failed guard found the document at revision
// txID. Sanity sets _rev to the id of the transaction that wrote it, so
// transaction txID (an earlier attempt of this one) committed, whichever
// check Sanity ran first.
func writtenBy(err error, txID string) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		return false
	}
	for _, it := range ae.Items {
		if it.Type == typeRevisionMismatch && it.CurrentRevisionID == txID {
			return true
		}
	}
	return false
}
