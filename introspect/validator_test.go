package introspect_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
)

const iss = "https://auth.example.com"

type keySource map[string]struct {
	alg jwa.SignatureAlgorithm
	pub any
}

func (k keySource) PublicKey(kid string) (jwa.SignatureAlgorithm, any, bool) {
	e, ok := k[kid]
	return e.alg, e.pub, ok
}

type fixture struct {
	key  *ecdsa.PrivateKey
	keys keySource
	v    *introspect.Validator
}

func newFixture(t *testing.T) *fixture {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := keySource{"k1": {jwa.ES256(), &key.PublicKey}}
	return &fixture{key: key, keys: keys,
		v: &introspect.Validator{Keys: keys, Issuer: iss, Leeway: 30 * time.Second, Revoked: introspect.NewRevocations()}}
}

func claims(mod ...func(c map[string]any)) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{"iss": iss, "sub": "mark", "aud": "https://api.example.com", "exp": now + 3600,
		"iat": now, "jti": "jti-1", "client_id": "app", "scope": "read write", "gid": "grant-1"}
	for _, m := range mod {
		m(c)
	}
	return c
}

func sign(t *testing.T, alg jwa.SignatureAlgorithm, key any, hdr map[string]any, c map[string]any) string {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range hdr {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	payload, _ := json.Marshal(c)
	tok, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

var stdHeader = map[string]any{"kid": "k1", "typ": "at+jwt"}

func TestValidate(t *testing.T) {
	f := newFixture(t)
	good := sign(t, jwa.ES256(), f.key, stdHeader, claims())
	c, err := f.v.Validate(good, "https://api.example.com")
	if err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	if c.Subject != "mark" || c.ClientID != "app" || !c.HasScopes([]string{"read", "write"}) || c.HasScopes([]string{"admin"}) {
		t.Fatalf("claims %+v", c)
	}

	pubDER, _ := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	parts := strings.Split(good, ".")

	tests := []struct {
		name   string
		token  string
		aud    string
		reason introspect.Reason
	}{
		{"alg none", b64(map[string]any{"alg": "none", "kid": "k1", "typ": "at+jwt"}) + "." + b64(claims()) + ".", "", introspect.ReasonSignature},
		{"HS256 signed with the public key", sign(t, jwa.HS256(), pubDER, stdHeader, claims()), "", introspect.ReasonSignature},
		{"RS256 under our kid", sign(t, jwa.RS256(), rsaKey, stdHeader, claims()), "", introspect.ReasonSignature},
		{"signed by another key", sign(t, jwa.ES256(), otherKey, stdHeader, claims()), "", introspect.ReasonSignature},
		{"unknown kid", sign(t, jwa.ES256(), f.key, map[string]any{"kid": "k9", "typ": "at+jwt"}, claims()), "", introspect.ReasonUnknownKey},
		{"no kid", sign(t, jwa.ES256(), f.key, map[string]any{"typ": "at+jwt"}, claims()), "", introspect.ReasonUnknownKey},
		{"wrong typ", sign(t, jwa.ES256(), f.key, map[string]any{"kid": "k1", "typ": "JWT"}, claims()), "", introspect.ReasonType},
		{"no typ", sign(t, jwa.ES256(), f.key, map[string]any{"kid": "k1"}, claims()), "", introspect.ReasonType},
		{"wrong iss", sign(t, jwa.ES256(), f.key, stdHeader, claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), "", introspect.ReasonIssuer},
		{"expired", sign(t, jwa.ES256(), f.key, stdHeader, claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), "", introspect.ReasonExpired},
		{"not yet valid", sign(t, jwa.ES256(), f.key, stdHeader, claims(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), "", introspect.ReasonNotYetValid},
		{"issued in the future", sign(t, jwa.ES256(), f.key, stdHeader, claims(func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() })), "", introspect.ReasonNotYetValid},
		{"missing sub", sign(t, jwa.ES256(), f.key, stdHeader, claims(func(c map[string]any) { delete(c, "sub") })), "", introspect.ReasonMissingClaims},
		{"missing exp", sign(t, jwa.ES256(), f.key, stdHeader, claims(func(c map[string]any) { delete(c, "exp") })), "", introspect.ReasonMissingClaims},
		{"wrong audience", good, "https://other.example.com", introspect.ReasonAudience},
		{"crit header", sign(t, jwa.ES256(), f.key, map[string]any{"kid": "k1", "typ": "at+jwt", "crit": []string{"exp"}}, claims()), "", introspect.ReasonMalformed},
		{"garbage base64", "@@@.###.$$$", "", introspect.ReasonMalformed},
		{"two parts", parts[0] + "." + parts[1], "", introspect.ReasonMalformed},
		{"tampered payload", parts[0] + "." + b64(claims(func(c map[string]any) { c["scope"] = "admin" })) + "." + parts[2], "", introspect.ReasonSignature},
		{"garbage signature", parts[0] + "." + parts[1] + ".!!!!", "", introspect.ReasonSignature},
		{"claims not JSON", signRaw(t, f.key, "not json"), "", introspect.ReasonMalformed},
		{"empty", "", "", introspect.ReasonMalformed},
		{"huge", strings.Repeat("a", 100<<10), "", introspect.ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Validate(tc.token, tc.aud)
			te, ok := err.(*introspect.TokenError)
			if !ok {
				t.Fatalf("got %v, want a TokenError %s", err, tc.reason)
			}
			if te.Reason != tc.reason {
				t.Fatalf("reason %s (%s), want %s", te.Reason, te.Description, tc.reason)
			}
		})
	}
}

func signRaw(t *testing.T, key *ecdsa.PrivateKey, payload string) string {
	h := jws.NewHeaders()
	_ = h.Set("kid", "k1")
	_ = h.Set("typ", "at+jwt")
	tok, err := jws.Sign([]byte(payload), jws.WithKey(jwa.ES256(), key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func TestLeeway(t *testing.T) {
	f := newFixture(t)
	justExpired := sign(t, jwa.ES256(), f.key, stdHeader, claims(func(c map[string]any) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() }))
	if _, err := f.v.Validate(justExpired, ""); err != nil {
		t.Fatalf("token 10s past exp refused despite 30s leeway: %v", err)
	}
}

func TestUnknownKeyReload(t *testing.T) {
	f := newFixture(t)
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok := sign(t, jwa.ES256(), newKey, map[string]any{"kid": "k2", "typ": "at+jwt"}, claims())
	calls := 0
	f.v.UnknownKey = func(kid string) (bool, error) {
		calls++
		f.keys["k2"] = struct {
			alg jwa.SignatureAlgorithm
			pub any
		}{jwa.ES256(), &newKey.PublicKey}
		return true, nil
	}
	if _, err := f.v.Validate(tok, ""); err != nil {
		t.Fatalf("token with a newly rotated key refused after reload: %v", err)
	}
	if calls != 1 {
		t.Fatalf("reload called %d times", calls)
	}
	// Keys that cannot be had: unavailable, not invalid.
	f.v.UnknownKey = func(string) (bool, error) { return false, errors.New("connection refused") }
	other := sign(t, jwa.ES256(), newKey, map[string]any{"kid": "k3", "typ": "at+jwt"}, claims())
	if _, err := f.v.Validate(other, ""); err == nil || err.(*introspect.TokenError).Reason != introspect.ReasonUnavailable {
		t.Fatalf("keys unreachable: %v", err)
	}
}

// Another issuer's profile: typ JWT accepted when configured (and then
// only sub and exp are required), the client from azp, scopes from a
// dotted path or a list, and every claim readable for placeholders.
func TestRemoteProfile(t *testing.T) {
	f := newFixture(t)
	f.v.Types = []string{"at+jwt", "JWT"}
	f.v.ScopeClaim = "realm_access.roles"
	tok := sign(t, jwa.ES256(), f.key, map[string]any{"kid": "k1", "typ": "JWT"}, map[string]any{
		"iss": iss, "sub": "u-1", "aud": "api", "exp": time.Now().Add(time.Hour).Unix(), "azp": "portal",
		"realm_access": map[string]any{"roles": []string{"read", "write"}}, "email": "mark@example.com",
		"groups": []string{"eng", "ops"}, "age": 42, "admin": false, "nested": map[string]any{"x": 1}})
	c, err := f.v.Validate(tok, "api")
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientID != "portal" || !c.HasScopes([]string{"read", "write"}) {
		t.Fatalf("claims %+v", c)
	}
	for name, want := range map[string]string{"email": "mark@example.com", "groups": "eng ops", "age": "42", "admin": "false"} {
		if got, ok := c.Claim(name); !ok || got != want {
			t.Errorf("claim %s = %q %v, want %q", name, got, ok, want)
		}
	}
	if _, ok := c.Claim("nested"); ok {
		t.Error("a nested object was shown")
	}
	// A typ JWT token is refused where only at+jwt is accepted.
	strict := &introspect.Validator{Keys: f.v.Keys, Issuer: iss}
	if _, err := strict.Validate(tok, "api"); err == nil || err.(*introspect.TokenError).Reason != introspect.ReasonType {
		t.Fatalf("typ JWT with the default types: %v", err)
	}
	// An at+jwt token still needs RFC 9068's claims.
	short := sign(t, jwa.ES256(), f.key, stdHeader, map[string]any{"iss": iss, "sub": "u-1", "aud": "api", "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := f.v.Validate(short, "api"); err == nil || err.(*introspect.TokenError).Reason != introspect.ReasonMissingClaims {
		t.Fatalf("at+jwt without client_id, jti, iat: %v", err)
	}
	// A scope sent as a list reads as the space-separated string.
	f.v.ScopeClaim = ""
	list := sign(t, jwa.ES256(), f.key, map[string]any{"kid": "k1", "typ": "JWT"}, map[string]any{
		"iss": iss, "sub": "u-1", "aud": "api", "exp": time.Now().Add(time.Hour).Unix(), "scope": []string{"a", "b"}})
	if c, err := f.v.Validate(list, "api"); err != nil || c.Scope != "a b" {
		t.Fatalf("scope as a list: %+v %v", c, err)
	}
}

func TestRevocation(t *testing.T) {
	f := newFixture(t)
	tok := sign(t, jwa.ES256(), f.key, stdHeader, claims())
	iat := time.Now()
	until := iat.Add(time.Hour)
	for _, rv := range []store.Revocation{
		{Kind: store.RevokeToken, Value: "jti-1", At: iat, ExpiresAt: until},
		{Kind: store.RevokeGrant, Value: "grant-1", At: iat, ExpiresAt: until},
		{Kind: store.RevokeClient, Value: "app", At: iat, ExpiresAt: until},
		{Kind: store.RevokeSubject, Value: "mark", At: iat, ExpiresAt: until},
	} {
		t.Run(string(rv.Kind), func(t *testing.T) {
			f.v.Revoked.Replace(nil)
			if _, err := f.v.Validate(tok, ""); err != nil {
				t.Fatal(err)
			}
			f.v.Revoked.Apply(rv)
			_, err := f.v.Validate(tok, "")
			if te, ok := err.(*introspect.TokenError); !ok || te.Reason != introspect.ReasonRevoked {
				t.Fatalf("revoked token: %v", err)
			}
		})
	}
	// Pruning forgets entries whose tokens have all expired, and only those.
	f.v.Revoked.Replace([]store.Revocation{{Kind: store.RevokeToken, Value: "jti-1", At: iat, ExpiresAt: iat.Add(-time.Second)},
		{Kind: store.RevokeSubject, Value: "mark", At: iat, ExpiresAt: iat.Add(-time.Second)},
		{Kind: store.RevokeGrant, Value: "other", At: iat, ExpiresAt: until}})
	f.v.Revoked.Prune(time.Now())
	if n := f.v.Revoked.Len(); n != 1 {
		t.Fatalf("%d entries left after pruning, want 1", n)
	}
	// A stale state fails closed.
	f.v.Revoked.Replace([]store.Revocation{{Kind: store.RevokeToken, Value: "jti-1", At: iat, ExpiresAt: until}})
	f.v.Revoked.SetMaxStaleness(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if _, err := f.v.Validate(tok, ""); err == nil || err.(*introspect.TokenError).Reason != introspect.ReasonStale {
		t.Fatalf("stale state: %v", err)
	}
	f.v.Revoked.SetMaxStaleness(0)
	// A client cut-off does not touch tokens issued after it.
	f.v.Revoked.Replace([]store.Revocation{{Kind: store.RevokeClient, Value: "app", At: iat.Add(-time.Hour), ExpiresAt: until}})
	if _, err := f.v.Validate(tok, ""); err != nil {
		t.Fatalf("token issued after the client's cut-off refused: %v", err)
	}
}
