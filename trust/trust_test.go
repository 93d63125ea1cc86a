package trust_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tokengate/tokengate/internal/keytest"
	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/trust"
)

// fakeIssuer is another authorization server: discovery, a JWK Set it can
// rotate, and an introspection endpoint, each counting its requests.
type fakeIssuer struct {
	*httptest.Server
	mu       sync.Mutex
	key      jwk.Key
	jwks     []byte
	active   map[string]map[string]any // opaque token → introspection answer
	down     atomic.Bool
	keyLoads atomic.Int64
	intros   atomic.Int64
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	f := &fakeIssuer{active: map[string]map[string]any{}}
	f.key, f.jwks = keytest.ES256(t, "k1")
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"introspection_endpoint":%q}`, f.URL, f.URL+"/jwks", f.URL+"/introspect")
		case "/jwks":
			f.keyLoads.Add(1)
			w.Header().Set("Cache-Control", "max-age=3600")
			w.Write(f.jwks)
		case "/introspect":
			f.intros.Add(1)
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

// rotate replaces the issuer's key.
func (f *fakeIssuer) rotate(t *testing.T, kid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key, f.jwks = keytest.ES256(t, kid)
}

// token is a JWT of the issuer's, typed typ, with claims over the defaults.
func (f *fakeIssuer) token(t *testing.T, typ string, claims map[string]any) string {
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

func newIssuer(t *testing.T, f *fakeIssuer, intro bool) *trust.Issuer {
	t.Helper()
	cfg := trust.Config{Issuer: f.URL, Audience: []string{"https://api.example.com"}}
	if intro {
		cfg.Introspection = &trust.IntrospectionConfig{ClientID: "gateway", ClientSecret: "gw-secret", CacheTTL: 300 * time.Millisecond}
	}
	i, err := trust.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func reasonOf(err error) introspect.Reason {
	if te, ok := err.(*introspect.TokenError); ok {
		return te.Reason
	}
	return ""
}

// JWTs of another issuer: keys discovered and fetched once, typ and
// audience checked, and a key rotation followed by one refetch, however
// many tokens name keys it does not know.
func TestRemoteJWT(t *testing.T) {
	f := newFakeIssuer(t)
	i := newIssuer(t, f, false)
	for _, typ := range []string{"at+jwt", "JWT"} {
		if c, err := i.Check(t.Context(), f.token(t, typ, nil)); err != nil || c.Subject != "u-1" || c.Scope != "read" {
			t.Fatalf("a good %s token: %+v %v", typ, c, err)
		}
	}
	if n := f.keyLoads.Load(); n != 1 {
		t.Fatalf("the key set was fetched %d times", n)
	}
	for name, tc := range map[string]struct {
		token string
		want  introspect.Reason
	}{
		"another audience": {f.token(t, "JWT", map[string]any{"aud": "https://other.example.com"}), introspect.ReasonAudience},
		"an ID token":      {f.token(t, "id+jwt", nil), introspect.ReasonType},
		"expired":          {f.token(t, "JWT", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), introspect.ReasonExpired},
		"another issuer":   {f.token(t, "JWT", map[string]any{"iss": "https://evil.example.com"}), introspect.ReasonIssuer},
	} {
		if _, err := i.Check(t.Context(), tc.token); reasonOf(err) != tc.want {
			t.Errorf("%s: %v, want %s", name, err, tc.want)
		}
	}
	// The issuer rotates: a token under the new key makes one refetch
	// (once the limit since the last fetch is over); a burst of tokens
	// naming unknown keys makes none more.
	defer trust.SetRefetchEvery(time.Second)()
	time.Sleep(1100 * time.Millisecond)
	f.rotate(t, "k2")
	if _, err := i.Check(t.Context(), f.token(t, "JWT", nil)); err != nil {
		t.Fatalf("after the issuer rotated: %v", err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			f.rotate(t, "random")
			_, _ = i.Check(t.Context(), f.token(t, "JWT", nil))
		})
	}
	wg.Wait()
	if n := f.keyLoads.Load(); n != 2 {
		t.Fatalf("the key set was fetched %d times, want 2 (once at first, once for the rotation)", n)
	}
}

// An issuer that cannot be reached makes its tokens unavailable, never
// valid; one whose discovery names another issuer is not believed.
func TestRemoteIssuerDown(t *testing.T) {
	f := newFakeIssuer(t)
	tok := f.token(t, "JWT", nil)
	f.down.Store(true)
	i := newIssuer(t, f, false)
	if _, err := i.Check(t.Context(), tok); reasonOf(err) != introspect.ReasonUnavailable {
		t.Fatalf("issuer down: %v", err)
	}
	route, _ := trust.NewRoute(nil, nil, []*trust.Issuer{i})
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if _, fl := route.Authorize(req, nil); fl == nil || fl.Status != http.StatusServiceUnavailable {
		t.Fatalf("the route's answer with the issuer down: %+v", fl)
	}

	impostor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":"https://someone.else","jwks_uri":%q}`, f.URL+"/jwks")
	}))
	defer impostor.Close()
	j, _ := trust.New(trust.Config{Issuer: impostor.URL, Audience: []string{"https://api.example.com"}})
	if _, err := j.Check(t.Context(), tok); reasonOf(err) != introspect.ReasonUnavailable || !strings.Contains(err.Error(), "names the issuer") {
		t.Fatalf("a discovery document naming another issuer: %v", err)
	}
}

// Opaque tokens through introspection: one call for many requests with
// the same token, the audience and scopes checked on every cache hit, a
// revocation at the issuer seen once the TTL is over, and an outage a 503.
func TestRemoteIntrospection(t *testing.T) {
	f := newFakeIssuer(t)
	f.active["opaque-1"] = map[string]any{"active": true, "scope": "read", "client_id": "portal", "sub": "u-1", "aud": "https://api.example.com",
		"exp": time.Now().Add(time.Hour).Unix(), "email": "mark@example.com"}
	f.active["opaque-other"] = map[string]any{"active": true, "scope": "read", "sub": "u-1", "aud": "https://other.example.com", "exp": time.Now().Add(time.Hour).Unix()}
	i := newIssuer(t, f, true)
	route, err := trust.NewRoute(nil, nil, []*trust.Issuer{i})
	if err != nil {
		t.Fatal(err)
	}
	call := func(token string, scopes ...string) (*introspect.Claims, *introspect.Failure) {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return route.Authorize(req, scopes)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, fl := call("opaque-1", "read"); fl != nil {
				t.Errorf("an active token: %+v", fl)
			}
		})
	}
	wg.Wait()
	if n := f.intros.Load(); n != 1 {
		t.Fatalf("%d introspections for 20 requests with one token", n)
	}
	// A cache hit still checks the route's scopes.
	if _, fl := call("opaque-1", "write"); fl == nil || fl.Status != http.StatusForbidden {
		t.Fatalf("a cached token without the scope: %+v", fl)
	}
	if c, _ := call("opaque-1"); c == nil {
		t.Fatal("no claims")
	} else if email, _ := c.Claim("email"); email != "mark@example.com" {
		t.Fatalf("claims of an introspected token: %q", email)
	}
	for token, want := range map[string]int{"opaque-other": http.StatusUnauthorized, "unknown": http.StatusUnauthorized} {
		if _, fl := call(token); fl == nil || fl.Status != want {
			t.Errorf("%s: %+v, want %d", token, fl, want)
		}
	}
	// Revoked at the issuer: honoured once the cached answer expires.
	f.mu.Lock()
	delete(f.active, "opaque-1")
	f.mu.Unlock()
	if _, fl := call("opaque-1"); fl != nil {
		t.Fatalf("within the cache TTL: %+v", fl)
	}
	time.Sleep(350 * time.Millisecond)
	if _, fl := call("opaque-1"); fl == nil || fl.Status != http.StatusUnauthorized {
		t.Fatalf("revoked at the issuer, after the TTL: %+v", fl)
	}
	f.down.Store(true)
	if _, fl := call("opaque-new"); fl == nil || fl.Status != http.StatusServiceUnavailable {
		t.Fatalf("introspection down: %+v", fl)
	}
}

// A route takes tokengate's own tokens and trusted issuers' by their iss,
// and no issuer it was not told to trust.
func TestRouteDispatch(t *testing.T) {
	a, b := newFakeIssuer(t), newFakeIssuer(t)
	ia, ib := newIssuer(t, a, true), newIssuer(t, b, false)
	route, err := trust.NewRoute(nil, nil, []*trust.Issuer{ia, ib})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{a.token(t, "JWT", nil), b.token(t, "JWT", nil)} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if _, fl := route.Authorize(req, []string{"read"}); fl != nil {
			t.Fatalf("a trusted issuer's token: %+v", fl)
		}
	}
	stranger := newFakeIssuer(t)
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+stranger.token(t, "JWT", nil))
	if _, fl := route.Authorize(req, nil); fl == nil || fl.Status != http.StatusUnauthorized || !strings.Contains(fl.Description, "does not trust") {
		t.Fatalf("an untrusted issuer's token: %+v", fl)
	}
	if _, err := trust.NewRoute(nil, nil, []*trust.Issuer{ia, newIssuer(t, b, true)}); err == nil {
		t.Fatal("two introspecting issuers on one route were accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]trust.Config{
		"no audience":        {Issuer: "https://sso.example.com"},
		"plain http":         {Issuer: "http://sso.example.com", Audience: []string{"a"}},
		"introspection bare": {Issuer: "https://sso.example.com", Audience: []string{"a"}, Introspection: &trust.IntrospectionConfig{}},
	} {
		if _, err := trust.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
