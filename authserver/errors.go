package authserver

// RFC 6749 §5.2: error responses.

import (
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
	// basicChallenge asks for WWW-Authenticate: Basic on a 401, because the
	// client tried HTTP Basic authentication (RFC 6749 §5.2).
	basicChallenge bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }
func (e *Error) Unwrap() error { return e.Err }

// ErrInvalidDPoPProof is RFC 9449 §5's error: the DPoP proof is missing
// where one is required, or does not hold.
func ErrInvalidDPoPProof(format string, args ...any) *Error {
	return oauthError("invalid_dpop_proof", http.StatusBadRequest, format, args...)
}

// ErrUseDPoPNonce is RFC 9449 §8's error: make the proof again with the
// nonce of the DPoP-Nonce header.
func ErrUseDPoPNonce() *Error {
	return oauthError("use_dpop_nonce", http.StatusBadRequest, "make the DPoP proof again with the nonce in the DPoP-Nonce header")
}

func oauthError(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...), Status: status}
}

// Constructors for the error codes, each with a description a person can act on.
func ErrInvalidRequest(format string, args ...any) *Error {
	return oauthError("invalid_request", http.StatusBadRequest, format, args...)
}
func ErrInvalidClient(format string, args ...any) *Error {
	return oauthError("invalid_client", http.StatusUnauthorized, format, args...)
}
func ErrInvalidGrant(format string, args ...any) *Error {
	return oauthError("invalid_grant", http.StatusBadRequest, format, args...)
}
func ErrUnauthorizedClient(format string, args ...any) *Error {
	return oauthError("unauthorized_client", http.StatusBadRequest, format, args...)
}
func ErrUnsupportedGrantType(format string, args ...any) *Error {
	return oauthError("unsupported_grant_type", http.StatusBadRequest, format, args...)
}
func ErrInvalidScope(format string, args ...any) *Error {
	return oauthError("invalid_scope", http.StatusBadRequest, format, args...)
}
func ErrTemporarilyUnavailable(format string, args ...any) *Error {
	return oauthError("temporarily_unavailable", http.StatusServiceUnavailable, format, args...)
}

// writeJSON writes v with the headers every token-endpoint-style response
// carries: tokens and errors must never be cached (RFC 6749 §5.1).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// methodNotAllowed sets Allow to the methods an endpoint takes and returns
// the 405 to answer with (as JSON or as a page, as the endpoint speaks).
func methodNotAllowed(w http.ResponseWriter, allow ...string) *Error {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	return &Error{Code: "invalid_request", Description: "use " + strings.Join(allow, " or ") + " for this endpoint", Status: http.StatusMethodNotAllowed}
}

func writeError(w http.ResponseWriter, e *Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if status == http.StatusUnauthorized {
		if e.basicChallenge {
			w.Header().Set("WWW-Authenticate", `Basic realm="oauth", charset="UTF-8"`)
		}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, e)
}
