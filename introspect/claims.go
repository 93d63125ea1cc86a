// Package introspect validates tokengate's access tokens. bearer_auth and
// /oauth/introspect share it so that both reach the same verdict: signature
// with the issuer's own keys (alg pinned to the key), RFC 9068 header and
// claims, revocation state held in memory, and scopes. It also writes the
// RFC 6750 challenges.
package introspect

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
)

// Claims are the claims of a JWT access token (RFC 9068 §2.2).
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	ExpiresAt int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf,omitempty"`
	ID        string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	// GrantID names the authorization the token descends from, so that
	// revoking a grant (refresh token reuse, code replay) revokes it too.
	GrantID string `json:"gid,omitempty"`
	// AuthorizedParty (azp) names the client where client_id is absent,
	// as in Keycloak's and OpenID Connect's tokens.
	AuthorizedParty string `json:"azp,omitempty"`
	// Confirmation binds the token to a key (RFC 9449 §6: cnf.jkt, the
	// thumbprint of the client's DPoP key); nil for a bearer token.
	Confirmation *Confirmation `json:"cnf,omitempty"`
	// Act names who acts for the subject (RFC 8693 §4.1), the earlier
	// actors nested; nil for a token of the subject itself.
	Act *Actor `json:"act,omitempty"`

	// raw is the token's claims as JSON, for Claim; profile9068 says the
	// token is typed at+jwt, so RFC 9068's claims are required.
	raw         []byte
	profile9068 bool
	decoded     atomic.Pointer[map[string]any]
}

// UnmarshalJSON reads the claims, taking a scope that is a list of
// strings (some issuers send one) as the space-separated string.
func (c *Claims) UnmarshalJSON(b []byte) error {
	type plain Claims
	// Tokengate's own tokens, and most others, carry a string: one
	// decoding, with no second pass for the rare list.
	if json.Unmarshal(b, (*plain)(c)) == nil {
		return nil
	}
	*c = Claims{}
	aux := struct {
		*plain
		Scope json.RawMessage `json:"scope"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if len(aux.Scope) == 0 || string(aux.Scope) == "null" {
		return nil
	}
	if err := json.Unmarshal(aux.Scope, &c.Scope); err == nil {
		return nil
	}
	var list []string
	if err := json.Unmarshal(aux.Scope, &list); err != nil {
		return errors.New("scope is neither a string nor a list of strings")
	}
	c.Scope = strings.Join(list, " ")
	return nil
}

// Actor is an act claim (RFC 8693 §4.1): the acting party, and who acted
// before it.
type Actor struct {
	Subject string `json:"sub"`
	Act     *Actor `json:"act,omitempty"`
}

// Confirmation is the cnf claim (RFC 7800).
type Confirmation struct {
	JKT string `json:"jkt,omitempty"`
}

// NewClaims makes Claims from an issuer's JSON claims (an introspection
// answer), keeping them for Claim.
func NewClaims(raw []byte) (*Claims, error) {
	c := new(Claims)
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, err
	}
	c.raw = raw
	return c, nil
}

// Claim is the named claim as a placeholder shows it: strings as they
// are, numbers and booleans in JSON's form, arrays of those joined with
// spaces; objects, and arrays holding them, are not shown.
// Decode reads the token's claims into v (a struct of the claims it
// wants), from the payload Validate already decoded; an error for claims
// that came from an introspection answer, which carry none.
func (c *Claims) Decode(v any) error {
	if c.raw == nil {
		return errors.New("the claims have no token payload")
	}
	return json.Unmarshal(c.raw, v)
}

func (c *Claims) Claim(name string) (string, bool) {
	m := c.decoded.Load()
	if m == nil {
		var v map[string]any
		dec := json.NewDecoder(bytes.NewReader(c.raw))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return "", false
		}
		m = &v
		c.decoded.Store(m)
	}
	return claimText((*m)[name])
}

// claimText is a claim value as text, when it has a flat one.
func claimText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := claimText(e)
			if _, nested := e.([]any); !ok || nested {
				return "", false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " "), true
	}
	return "", false
}

// lookup is the value at a dotted path of the claims (realm_access.roles).
func (c *Claims) lookup(path string) (any, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(c.raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil, false
	}
	for _, part := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[part]; !ok {
			return nil, false
		}
	}
	return v, true
}

// Scopes returns the space-separated scope claim as a list.
func (c *Claims) Scopes() []string { return strings.Fields(c.Scope) }

// HasScopes reports whether the token carries every scope in want. It
// scans the scope claim in place: it runs on every gateway request.
func (c *Claims) HasScopes(want []string) bool {
	for _, w := range want {
		if !hasField(c.Scope, w) {
			return false
		}
	}
	return true
}

// hasField reports whether w is one of the space-separated fields of s.
func hasField(s, w string) bool {
	for len(s) > 0 {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			return s == w
		}
		if s[:i] == w {
			return true
		}
		s = s[i+1:]
	}
	return false
}

// Audience is the aud claim: a string or an array of strings in JSON.
type Audience []string

// MarshalJSON writes a single audience as a plain string, as most
// resource servers expect.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(&a[0]) // a pointer boxes without allocating
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON accepts both forms.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// DecodeHeader returns a JWT's protected header without verifying anything,
// for diagnostics and tests.
func DecodeHeader(token string) (map[string]any, error) {
	h, _, ok := strings.Cut(token, ".")
	if !ok {
		return nil, errors.New("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(raw, &m)
}

// UnverifiedIssuer is a JWT's iss, read to pick the issuer whose keys will
// verify it (nothing else is trusted before that); "" for anything else.
func UnverifiedIssuer(token string) string {
	parts := strings.SplitN(token, ".", 3)
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	_ = json.Unmarshal(raw, &c)
	return c.Issuer
}
