package introspect

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/tokengate/tokengate/jose"
)

// Outcome names the result of a bearer check, for metrics and logs.
type Outcome string

const (
	OutcomeOK                Outcome = "ok"
	OutcomeMissing           Outcome = "missing"
	OutcomeMalformed         Outcome = "malformed"
	OutcomeInvalid           Outcome = "invalid"
	OutcomeExpired           Outcome = "expired"
	OutcomeRevoked           Outcome = "revoked"
	OutcomeInsufficientScope Outcome = "insufficient_scope"
	OutcomeUnavailable       Outcome = "unavailable"
)

// Failure is a refused bearer request (RFC 6750 §3).
type Failure struct {
	// DPoP says the failure is the DPoP proof's (RFC 9449 §7.1): the
	// challenge is the DPoP scheme's.
	DPoP    bool
	Outcome Outcome
	Status  int
	// Code is the RFC 6750 error code; empty when the request carried no
	// token at all (§3.1: then no error code is given).
	Code        string
	Description string
	// Scope lists the scopes the resource requires, for insufficient_scope.
	Scope string
	// Nonce, when set, goes in a DPoP-Nonce header (RFC 9449 §9).
	Nonce string
	// Err is why the token could not be checked (unavailable), for the
	// log only: it may name the issuer's internal URLs.
	Err error
}

func fail(o Outcome, status int, code, desc string) *Failure {
	return &Failure{Outcome: o, Status: status, Code: code, Description: desc}
}

// BearerToken extracts the token from the Authorization header, the only
// place tokengate accepts one (RFC 6750 §2.1; never the query or body),
// with the Bearer scheme or RFC 9449's DPoP (CheckBinding then checks the
// scheme against the token).
func BearerToken(r *http.Request) (string, *Failure) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return "", fail(OutcomeMissing, http.StatusUnauthorized, "", "this resource requires a bearer token in the Authorization header")
	}
	if len(vals) > 1 {
		return "", fail(OutcomeMalformed, http.StatusBadRequest, "invalid_request", "send exactly one Authorization header")
	}
	h := vals[0]
	if len(h) > MaxTokenLen+len("Bearer ") {
		return "", fail(OutcomeMalformed, http.StatusBadRequest, "invalid_request", "the Authorization header is too large")
	}
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "DPoP") {
		// Another scheme (Basic, ...) is no bearer token at all: §3.1 says
		// to answer without an error code.
		return "", fail(OutcomeMissing, http.StatusUnauthorized, "", "this resource requires a bearer token; the Authorization header uses another scheme")
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", fail(OutcomeMalformed, http.StatusBadRequest, "invalid_request", "the Authorization header names the Bearer scheme but carries no token")
	}
	if !isB64Token(token) {
		return "", fail(OutcomeMalformed, http.StatusBadRequest, "invalid_request", "the Authorization header must be \"Bearer <token>\" with a single token")
	}
	return token, nil
}

// isB64Token checks RFC 6750 §2.1's b64token: 1*( ALPHA / DIGIT /
// "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && b64TokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64TokenChar marks b64token's characters; a table, as every gateway
// request scans a token of half a kilobyte.
var b64TokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// Authorize checks the request's bearer token and that it carries every
// scope in scopes (and is meant for one of audiences, when given).
func (v *Validator) Authorize(r *http.Request, scopes []string, audiences ...string) (*Claims, *Failure) {
	token, f := BearerToken(r)
	if f != nil {
		return nil, f
	}
	c, err := v.Validate(token, audiences...)
	return Verdict(c, err, scopes)
}

// Verdict is a bearer request's answer once its token was checked: err
// (a *TokenError) as RFC 6750 puts it, or the claims if they carry every
// scope in scopes.
func Verdict(c *Claims, err error, scopes []string) (*Claims, *Failure) {
	if err != nil {
		te, ok := err.(*TokenError)
		if !ok {
			te = &TokenError{Reason: ReasonUnavailable, Description: "the token cannot be checked right now", Err: err}
		}
		o := OutcomeInvalid
		switch te.Reason {
		case ReasonStale, ReasonUnavailable:
			// Fail closed, but say it is the server's problem, not the token's.
			return nil, &Failure{Outcome: OutcomeUnavailable, Status: http.StatusServiceUnavailable,
				Code: "temporarily_unavailable", Description: te.Description, Err: te.Err}
		case ReasonExpired:
			o = OutcomeExpired
		case ReasonRevoked:
			o = OutcomeRevoked
		}
		return nil, fail(o, http.StatusUnauthorized, "invalid_token", te.Description)
	}
	if !c.HasScopes(scopes) {
		return c, InsufficientScope(scopes)
	}
	return c, nil
}

// InsufficientScope is RFC 6750 §3.1's 403 for a token that lacks one of
// scopes, naming them all so that the client asks for what it needs.
func InsufficientScope(scopes []string) *Failure {
	f := fail(OutcomeInsufficientScope, http.StatusForbidden, "insufficient_scope",
		"the token lacks a required scope: this resource needs "+strings.Join(scopes, " "))
	f.Scope = strings.Join(scopes, " ")
	return f
}

// WriteChallenge answers a refused request: the RFC 6750 WWW-Authenticate
// challenge, and the same error as a JSON body.
func WriteChallenge(w http.ResponseWriter, realm string, f *Failure) {
	writeChallenge(w, realm, f, "", "")
}

// WriteChallenge answers a refused request to the resource: as the
// package's WriteChallenge, with resource_metadata pointing at its RFC 9728
// document (§5.1) and, on a 401, the scopes it needs, so that a client can
// discover where and what to ask for.
func (p *ProtectedResource) WriteChallenge(w http.ResponseWriter, realm string, f *Failure) {
	scope := ""
	if f.Status == http.StatusUnauthorized {
		scope = strings.Join(p.Scopes, " ")
	}
	writeChallenge(w, realm, f, p.url, scope)
}

func writeChallenge(w http.ResponseWriter, realm string, f *Failure, resourceMetadata, scope string) {
	var b strings.Builder
	if f.DPoP {
		b.WriteString("DPoP algs=" + dpopAlgs + ", error=")
		b.WriteString(quote(f.Code))
		b.WriteString(", error_description=")
		b.WriteString(quote(f.Description))
		w.Header().Set("WWW-Authenticate", b.String())
		if f.Nonce != "" {
			w.Header().Set("DPoP-Nonce", f.Nonce)
		}
		writeFailureBody(w, f)
		return
	}
	b.WriteString("Bearer realm=")
	b.WriteString(quote(realm))
	if f.Code != "" {
		b.WriteString(", error=")
		b.WriteString(quote(f.Code))
		b.WriteString(", error_description=")
		b.WriteString(quote(f.Description))
	}
	if f.Scope != "" {
		scope = f.Scope
	}
	if scope != "" {
		b.WriteString(", scope=")
		b.WriteString(quote(scope))
	}
	if resourceMetadata != "" {
		b.WriteString(", resource_metadata=")
		b.WriteString(quote(resourceMetadata))
	}
	h := w.Header()
	if f.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1") // not the token's fault: no challenge
	} else {
		h.Set("WWW-Authenticate", b.String())
		if f.Status == http.StatusUnauthorized {
			// Both schemes are taken: say so (RFC 9449 §7.1).
			h.Add("WWW-Authenticate", "DPoP algs="+dpopAlgs)
		}
	}
	writeFailureBody(w, f)
}

// dpopAlgs is the DPoP challenge's algs parameter, quoted.
var dpopAlgs = quote(strings.Join(jose.Asymmetric, " "))

// writeFailureBody writes the failure as the JSON body of its status.
func writeFailureBody(w http.ResponseWriter, f *Failure) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(f.Status)
	code := f.Code
	if code == "" {
		code = "unauthorized"
	}
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Scope       string `json:"scope,omitempty"`
	}{code, f.Description, f.Scope})
}

// quote makes an RFC 7230 quoted-string; RFC 6750 §3 limits the values to
// printable ASCII without '"' and '\', so anything else is dropped.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
