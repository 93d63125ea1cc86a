package oauth

// RFC 6749 §3.1 and §3.2: reading an endpoint's form body.

import (
	"bytes"
	"mime"
	"net/http"
	"net/url"
	"sync"
)

// MaxFormBytes bounds a form body: far more than any request needs.
const MaxFormBytes = 64 << 10

// buffers are the pool ReadForm reads bodies into and EncodeJSON encodes
// in: the token endpoint's every request would allocate them.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// formType is the media type of endpoints' request bodies.
const formType = "application/x-www-form-urlencoded"

// ReadForm parses an endpoint's application/x-www-form-urlencoded body the
// way RFC 6749 asks: POST only, parameters in the body and never in the URL
// query (where they would land in logs), each at most once (§3.1, §3.2).
func ReadForm(w http.ResponseWriter, r *http.Request) (url.Values, *Error) {
	if r.Method != http.MethodPost {
		return nil, MethodNotAllowed(w, http.MethodPost)
	}
	if r.URL.RawQuery != "" {
		return nil, ErrInvalidRequest("send parameters (and any client_secret) in the application/x-www-form-urlencoded request body, not in the URL query")
	}
	// The exact type is what clients send; anything else (parameters,
	// another case) is parsed.
	if ct := r.Header.Get("Content-Type"); ct != formType {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != formType {
			return nil, ErrInvalidRequest("send parameters as an application/x-www-form-urlencoded body (Content-Type was %q)", ct)
		}
	}
	buf := buffers.Get().(*bytes.Buffer)
	defer buffers.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxFormBytes)); err != nil {
		return nil, ErrInvalidRequest("the request body is unreadable or larger than %d bytes", MaxFormBytes)
	}
	form, err := url.ParseQuery(buf.String())
	if err != nil {
		return nil, ErrInvalidRequest("the request body is not valid application/x-www-form-urlencoded: %v", err)
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, ErrInvalidRequest("parameter %q is given more than once", k)
		}
	}
	return form, nil
}
