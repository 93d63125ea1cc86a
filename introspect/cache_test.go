package introspect_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
)

// The cache skips the signature on a hit, but expiry, audience and
// revocation are checked on every hit.
func TestTokenCache(t *testing.T) {
	f := newFixture(t)
	f.v.Cache = introspect.NewTokenCache(100)
	tok := sign(t, jwa.ES256(), f.key, stdHeader, claims())
	c1, err := f.v.Validate(tok, "")
	if err != nil {
		t.Fatal(err)
	}
	if f.v.Cache.Len() != 1 {
		t.Fatalf("cache holds %d tokens after one validation", f.v.Cache.Len())
	}
	// A hit needs no key: remove it and the token still validates, from
	// the cache (the same claims).
	delete(f.keys, "k1")
	c2, err := f.v.Validate(tok, "")
	if err != nil || c2 != c1 {
		t.Fatalf("cache hit: %v (same claims: %v)", err, c2 == c1)
	}
	if _, err := f.v.Validate(tok, "https://other.example"); err == nil {
		t.Fatal("audience not checked on a hit")
	}
	f.v.Revoked.Apply(store.Revocation{Kind: store.RevokeToken, Value: "jti-1", At: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	if _, err := f.v.Validate(tok, ""); err == nil || err.(*introspect.TokenError).Reason != introspect.ReasonRevoked {
		t.Fatalf("revocation not checked on a hit: %v", err)
	}
	f.v.Revoked.Replace(nil)
	f.v.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := f.v.Validate(tok, ""); err == nil || err.(*introspect.TokenError).Reason != introspect.ReasonExpired {
		t.Fatalf("an entry outlived its token: %v", err)
	}
	// A tampered token is another key: never a hit.
	if _, err := f.v.Validate(tok+"x", ""); err == nil {
		t.Fatal("a tampered token validated")
	}
}

// The cache stays bounded.
func TestTokenCacheBounded(t *testing.T) {
	f := newFixture(t)
	f.v.Cache = introspect.NewTokenCache(50)
	for i := range 200 {
		tok := sign(t, jwa.ES256(), f.key, stdHeader, claims(func(c map[string]any) { c["jti"] = fmt.Sprint("j", i) }))
		if _, err := f.v.Validate(tok, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.v.Cache.Len(); n > 50 || n < 40 {
		t.Fatalf("cache grew to %d entries, bound 50", n)
	}
}
