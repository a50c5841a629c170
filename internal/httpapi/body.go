package httpapi

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"

	"soldout/internal/stock"
)

// readField reads the string field name from a storefront request's body,
// sent as JSON ({"<name>":"…"}), as a form or as a multipart form, and
// reports whether it was a form. A body over limit is TooLarge; a field that
// is absent or not a string reads as "".
func readField(w http.ResponseWriter, r *http.Request, name string, limit int64) (value string, form bool, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		var body map[string]any
		err = json.NewDecoder(r.Body).Decode(&body)
		value, _ = body[name].(string)
	case "application/x-www-form-urlencoded":
		form, err = true, r.ParseForm()
		value = r.PostForm.Get(name)
	case "multipart/form-data":
		form, err = true, r.ParseMultipartForm(limit)
		value = r.PostFormValue(name)
	default:
		return "", false, stock.Errorf(stock.Invalid, `send {"%s":"…"} as application/json, or a form with a %s field`, name, name)
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return "", form, stock.Errorf(stock.TooLarge, "body larger than %d bytes", limit)
	case err != nil:
		return "", form, stock.Wrap(stock.Invalid, err, `reading the request: send {"%s":"…"} or a form with a %s field`, name, name)
	}
	return value, form, nil
}
