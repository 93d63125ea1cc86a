package trust_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/internal/issuertest"
	"github.com/tokengate/tokengate/internal/keytest"
	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/trust"
)

func newIssuer(t *testing.T, f *issuertest.Issuer, intro bool) *trust.Issuer {
	t.Helper()
	cfg := trust.Config{Issuer: f.URL, Audience: []string{"https://api.example.com"}, RefetchEvery: time.Second}
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
	f := issuertest.New(t)
	i := newIssuer(t, f, false)
	for _, typ := range []string{"at+jwt", "JWT"} {
		if c, err := i.Check(t.Context(), f.Token(t, typ, nil)); err != nil || c.Subject != "u-1" || c.Scope != "read" {
			t.Fatalf("a good %s token: %+v %v", typ, c, err)
		}
	}
	if n := f.KeyLoads.Load(); n != 1 {
		t.Fatalf("the key set was fetched %d times", n)
	}
	for name, tc := range map[string]struct {
		token string
		want  introspect.Reason
	}{
		"another audience": {f.Token(t, "JWT", map[string]any{"aud": "https://other.example.com"}), introspect.ReasonAudience},
		"an ID token":      {f.Token(t, "id+jwt", nil), introspect.ReasonType},
		"expired":          {f.Token(t, "JWT", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), introspect.ReasonExpired},
		"another issuer":   {f.Token(t, "JWT", map[string]any{"iss": "https://evil.example.com"}), introspect.ReasonIssuer},
	} {
		if _, err := i.Check(t.Context(), tc.token); reasonOf(err) != tc.want {
			t.Errorf("%s: %v, want %s", name, err, tc.want)
		}
	}
	// The issuer rotates: a token under the new key makes one refetch
	// (once the limit since the last fetch, a second here, is over); a
	// burst of tokens naming unknown keys makes none more.
	time.Sleep(1100 * time.Millisecond)
	f.Rotate(t, "k2")
	if _, err := i.Check(t.Context(), f.Token(t, "JWT", nil)); err != nil {
		t.Fatalf("after the issuer rotated: %v", err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			f.Rotate(t, "random")
			_, _ = i.Check(t.Context(), f.Token(t, "JWT", nil))
		})
	}
	wg.Wait()
	if n := f.KeyLoads.Load(); n != 2 {
		t.Fatalf("the key set was fetched %d times, want 2 (once at first, once for the rotation)", n)
	}
}

// An issuer that cannot be reached makes its tokens unavailable, never
// valid; one whose discovery names another issuer is not believed.
func TestRemoteIssuerDown(t *testing.T) {
	f := issuertest.New(t)
	tok := f.Token(t, "JWT", nil)
	f.Down.Store(true)
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
	_, err := j.Check(t.Context(), tok)
	if reasonOf(err) != introspect.ReasonUnavailable || !strings.Contains(errors.Unwrap(err).Error(), "names the issuer") {
		t.Fatalf("a discovery document naming another issuer: %v (cause %v)", err, errors.Unwrap(err))
	}
	// What the API's caller reads names the issuer, never its URLs.
	if strings.Contains(err.Error(), "/.well-known") || strings.Contains(err.Error(), "/jwks") {
		t.Fatalf("the refusal shows an internal URL: %v", err)
	}
}

// A key of the issuer's set that tokengate cannot use is left out, and
// logged once, while the good keys beside it verify: the issuer's new key
// among them, when it rotates with the bad key still published.
func TestUnusableKeysAreDropped(t *testing.T) {
	f := issuertest.New(t)
	bad := keytest.Unusable(t)
	for _, k := range bad {
		f.Publish(t, k)
	}
	core, logs := observer.New(zap.WarnLevel)
	i, err := trust.New(trust.Config{Issuer: f.URL, Audience: []string{"https://api.example.com"}, Logger: zap.New(core), RefetchEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := i.Check(t.Context(), f.Token(t, "JWT", nil)); err != nil || c.Subject != "u-1" {
		t.Fatalf("a token under the good key beside %d unusable ones: %v", len(bad), err)
	}
	time.Sleep(5 * time.Millisecond)
	f.Rotate(t, "k2")
	for _, k := range bad {
		f.Publish(t, k)
	}
	if _, err := i.Check(t.Context(), f.Token(t, "JWT", nil)); err != nil {
		t.Fatalf("a token under the issuer's new key, the unusable ones still published: %v", err)
	}
	for kid := range bad {
		if n := logs.FilterMessageSnippet("cannot be used").FilterFieldKey("error").Filter(func(e observer.LoggedEntry) bool {
			return strings.Contains(e.ContextMap()["error"].(string), `"`+kid+`"`)
		}).Len(); n != 1 {
			t.Errorf("key %s was logged %d times over two fetches, want once", kid, n)
		}
	}
	// A set of nothing but unusable keys gives no key to check with.
	var only []json.RawMessage
	for _, k := range bad {
		only = append(only, k)
	}
	body, _ := json.Marshal(map[string]any{"keys": only})
	set, err := trust.ReadKeySet(body)
	if err != nil || set.Set.Len() != 0 || len(set.Dropped) != len(bad) {
		t.Fatalf("a set of unusable keys: %d kept, %d dropped, %v", set.Set.Len(), len(set.Dropped), err)
	}
}

// Opaque tokens through introspection: one call for many requests with
// the same token, the audience and scopes checked on every cache hit, a
// revocation at the issuer seen once the TTL is over, and an outage a 503.
func TestRemoteIntrospection(t *testing.T) {
	f := issuertest.New(t)
	f.SetActive("opaque-1", map[string]any{"active": true, "scope": "read", "client_id": "portal", "sub": "u-1", "aud": "https://api.example.com",
		"exp": time.Now().Add(time.Hour).Unix(), "email": "mark@example.com"})
	f.SetActive("opaque-other", map[string]any{"active": true, "scope": "read", "sub": "u-1", "aud": "https://other.example.com", "exp": time.Now().Add(time.Hour).Unix()})
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
	if n := f.Intros.Load(); n != 1 {
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
	f.SetActive("opaque-1", nil)
	if _, fl := call("opaque-1"); fl != nil {
		t.Fatalf("within the cache TTL: %+v", fl)
	}
	time.Sleep(350 * time.Millisecond)
	if _, fl := call("opaque-1"); fl == nil || fl.Status != http.StatusUnauthorized {
		t.Fatalf("revoked at the issuer, after the TTL: %+v", fl)
	}
	f.Down.Store(true)
	if _, fl := call("opaque-new"); fl == nil || fl.Status != http.StatusServiceUnavailable {
		t.Fatalf("introspection down: %+v", fl)
	}
}

// A route takes tokengate's own tokens and trusted issuers' by their iss,
// and no issuer it was not told to trust.
func TestRouteDispatch(t *testing.T) {
	a, b := issuertest.New(t), issuertest.New(t)
	ia, ib := newIssuer(t, a, true), newIssuer(t, b, false)
	route, err := trust.NewRoute(nil, nil, []*trust.Issuer{ia, ib})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{a.Token(t, "JWT", nil), b.Token(t, "JWT", nil)} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if _, fl := route.Authorize(req, []string{"read"}); fl != nil {
			t.Fatalf("a trusted issuer's token: %+v", fl)
		}
	}
	stranger := issuertest.New(t)
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+stranger.Token(t, "JWT", nil))
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

// BenchmarkCheck is a trusted issuer's token on a cache hit: a JWT whose
// verification is cached, and an opaque token whose introspection is.
//
//	go test ./trust -run XXX -bench Check -benchmem
func BenchmarkCheck(b *testing.B) {
	f := issuertest.New(b)
	f.SetActive("opaque-1", map[string]any{"active": true, "scope": "read", "sub": "u-1", "aud": "https://api.example.com",
		"exp": time.Now().Add(time.Hour).Unix()})
	i, err := trust.New(trust.Config{Issuer: f.URL, Audience: []string{"https://api.example.com"},
		Introspection: &trust.IntrospectionConfig{ClientID: "gateway", ClientSecret: "gw-secret", CacheTTL: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	for name, tok := range map[string]string{"jwt": f.Token(b, "JWT", nil), "introspected": "opaque-1"} {
		b.Run(name, func(b *testing.B) {
			if _, err := i.Check(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := i.Check(b.Context(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
