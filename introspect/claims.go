// Package introspect validates tokengate's access tokens. bearer_auth and
// /oauth/introspect share it so that both reach the same verdict: signature
// with the issuer's own keys (alg pinned to the key), RFC 9068 header and
// claims, revocation state held in memory, and scopes. It also writes the
// RFC 6750 challenges.
package introspect

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
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
		return json.Marshal(a[0])
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
