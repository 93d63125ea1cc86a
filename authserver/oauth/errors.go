// Package oauth is the OAuth 2.0 vocabulary every part of the authorization
// server speaks: RFC 6749 §5.2 errors and their writing, form bodies read
// as §3.1 and §3.2 ask, RFC 7636 PKCE, scope tokens, and the random and
// hashed tokens codes and refresh tokens are made of. It imports nothing
// of tokengate's.
package oauth

// RFC 6749 §5.2: error responses.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Error is an OAuth 2.0 error response (RFC 6749 §5.2, RFC 8628 §3.5).
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Status is the HTTP status; 400 unless set.
	Status int `json:"-"`
	// Err is the cause of an error the client cannot fix (a store or
	// server failure), for the log; it is never sent.
	Err error `json:"-"`
	// BasicChallenge asks for WWW-Authenticate: Basic on a 401, because
	// the client tried HTTP Basic authentication (RFC 6749 §5.2).
	BasicChallenge bool `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }
func (e *Error) Unwrap() error { return e.Err }

// ErrInvalidDPoPProof is RFC 9449 §5's error: the DPoP proof is missing
// where one is required, or does not hold.
func ErrInvalidDPoPProof(format string, args ...any) *Error {
	return NewError("invalid_dpop_proof", http.StatusBadRequest, format, args...)
}

// ErrUseDPoPNonce is RFC 9449 §8's error: make the proof again with the
// nonce of the DPoP-Nonce header.
func ErrUseDPoPNonce() *Error {
	return NewError("use_dpop_nonce", http.StatusBadRequest, "make the DPoP proof again with the nonce in the DPoP-Nonce header")
}

// NewError is an error response with a code of its own (RFC 7591's
// invalid_client_metadata, say) and its HTTP status.
func NewError(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...), Status: status}
}

// Constructors for the error codes, each with a description a person can act on.
func ErrInvalidRequest(format string, args ...any) *Error {
	return NewError("invalid_request", http.StatusBadRequest, format, args...)
}
func ErrInvalidClient(format string, args ...any) *Error {
	return NewError("invalid_client", http.StatusUnauthorized, format, args...)
}
func ErrInvalidGrant(format string, args ...any) *Error {
	return NewError("invalid_grant", http.StatusBadRequest, format, args...)
}
func ErrUnauthorizedClient(format string, args ...any) *Error {
	return NewError("unauthorized_client", http.StatusBadRequest, format, args...)
}
func ErrUnsupportedGrantType(format string, args ...any) *Error {
	return NewError("unsupported_grant_type", http.StatusBadRequest, format, args...)
}
func ErrInvalidScope(format string, args ...any) *Error {
	return NewError("invalid_scope", http.StatusBadRequest, format, args...)
}
func ErrTemporarilyUnavailable(format string, args ...any) *Error {
	return NewError("temporarily_unavailable", http.StatusServiceUnavailable, format, args...)
}

// WriteJSON writes v with the headers every token-endpoint-style response
// carries: tokens and errors must never be cached (RFC 6749 §5.1).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	// Assigned, not Set: the keys are canonical and the values shared
	// (whoever changes one replaces or appends to it), so that the token
	// endpoint's every answer does not allocate them anew.
	h["Content-Type"], h["Cache-Control"], h["Pragma"] = jsonType, noStore, noCache
	err := EncodeJSON(v, func(body []byte) error {
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return nil
	})
	if err != nil {
		// Only values of tokengate's own making are written; one that
		// cannot be is a bug, answered as the server's error it is.
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":"server_error","error_description":"the answer could not be encoded"}`))
	}
}

// EncodeJSON encodes v as JSON (ending in the newline json.Encoder adds)
// into a pooled buffer and hands use its bytes, valid during the call
// only: the token endpoint's answers and its tokens' claims are encoded
// per request, without a buffer of their own.
func EncodeJSON(v any, use func([]byte) error) error {
	buf := buffers.Get().(*bytes.Buffer)
	defer buffers.Put(buf)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return err
	}
	return use(buf.Bytes())
}

// The header values of WriteJSON's answers.
var (
	jsonType = []string{"application/json"}
	noStore  = []string{"no-store"}
	noCache  = []string{"no-cache"}
)

// MethodNotAllowed sets Allow to the methods an endpoint takes and returns
// the 405 to answer with (as JSON or as a page, as the endpoint speaks).
func MethodNotAllowed(w http.ResponseWriter, allow ...string) *Error {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	return &Error{Code: "invalid_request", Description: "use " + strings.Join(allow, " or ") + " for this endpoint", Status: http.StatusMethodNotAllowed}
}

// WriteError answers with e as RFC 6749 §5.2 JSON, with the headers its
// status asks for.
func WriteError(w http.ResponseWriter, e *Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if status == http.StatusUnauthorized {
		if e.BasicChallenge {
			w.Header().Set("WWW-Authenticate", `Basic realm="oauth", charset="UTF-8"`)
		}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	WriteJSON(w, status, e)
}

// ErrInvalidTarget is RFC 8707 §2's error: an unknown, malformed or
// unacceptable resource.
func ErrInvalidTarget(format string, args ...any) *Error {
	return NewError("invalid_target", http.StatusBadRequest, format, args...)
}

// ServeDocument answers GET and HEAD with a public, cacheable document.
func ServeDocument(w http.ResponseWriter, r *http.Request, contentType, cacheControl string, doc []byte) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		WriteError(w, MethodNotAllowed(w, http.MethodGet, http.MethodHead))
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", cacheControl)
	_, _ = w.Write(doc)
}
