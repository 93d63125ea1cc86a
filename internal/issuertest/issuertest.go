// Package issuertest is another authorization server for tests of
// trusted issuers: the fake whose keys, answers and outages a test
// controls (the negative cases a real provider will not produce).
package issuertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tokengate/tokengate/internal/keytest"
)

// Issuer is another authorization server (or an identity provider, a
// workload issuer): discovery, a JWK Set it can
// rotate, and an introspection endpoint (client gateway / gw-secret),
// each counting its requests; Down makes it answer 502 to everything.
type Issuer struct {
	*httptest.Server
	mu       sync.Mutex
	key      jwk.Key
	jwks     []byte
	active   map[string]map[string]any // opaque token → introspection answer
	Down     atomic.Bool
	KeyLoads atomic.Int64
	Intros   atomic.Int64
}

func New(t testing.TB) *Issuer {
	f := &Issuer{active: map[string]map[string]any{}}
	f.key, f.jwks = keytest.ES256(t, "k1")
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.Down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"introspection_endpoint":%q,"authorization_endpoint":%q,"token_endpoint":%q}`,
				f.URL, f.URL+"/jwks", f.URL+"/introspect", f.URL+"/authorize", f.URL+"/token")
		case "/jwks":
			f.KeyLoads.Add(1)
			w.Header().Set("Cache-Control", "max-age=3600")
			w.Write(f.jwks)
		case "/introspect":
			f.Intros.Add(1)
			if id, secret, _ := r.BasicAuth(); id != "gateway" || secret != "gw-secret" {
				http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
				return
			}
			_ = r.ParseForm()
			answer, ok := f.active[r.PostForm.Get("token")]
			if !ok {
				answer = map[string]any{"active": false}
			}
			json.NewEncoder(w).Encode(answer)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// Publish adds keys to the issuer's JWK Set beside its signing key (keys
// a verifier cannot use, say), until the next Rotate.
func (f *Issuer) Publish(t testing.TB, keys ...json.RawMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jwks = keytest.WithKeys(t, f.jwks, keys...)
}

// Rotate replaces the issuer's key.
func (f *Issuer) Rotate(t testing.TB, kid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key, f.jwks = keytest.ES256(t, kid)
}

// Token is a JWT of the issuer's, typed typ, for https://api.example.com
// with scope read, with claims over those defaults.
func (f *Issuer) Token(t testing.TB, typ string, claims map[string]any) string {
	t.Helper()
	f.mu.Lock()
	key := f.key
	f.mu.Unlock()
	b := jwt.NewBuilder().Issuer(f.URL).Subject("u-1").Audience([]string{"https://api.example.com"}).
		Expiration(time.Now().Add(time.Hour)).IssuedAt(time.Now()).JwtID("j-1").Claim("client_id", "portal").Claim("scope", "read")
	tok, _ := b.Build()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set("typ", typ)
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// SetActive makes token an active opaque token with the given
// introspection answer (nil: inactive again).
func (f *Issuer) SetActive(token string, answer map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if answer == nil {
		delete(f.active, token)
		return
	}
	f.active[token] = answer
}
