package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store/boltstore"
	"github.com/tokengate/tokengate/dpop"
	"github.com/tokengate/tokengate/internal/dpoptest"
	"github.com/tokengate/tokengate/introspect"
)

// benchServer is an issuer on a fresh embedded store with one client, svc
// (secret s), for client credentials with scope read.
func benchServer(b *testing.B) *authserver.Server {
	b.Helper()
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "tg.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	srv, err := authserver.New(b.Context(), authserver.Config{Issuer: "https://auth.example.com", Store: st, TokenCacheSize: 1000,
		Clients: []*client.Client{{ID: "svc", SecretHash: client.HashSecretSHA256("s"), GrantTypes: []string{client.GrantClientCredentials}, Scopes: []string{"read"}}}})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

// BenchmarkBearerAuth is the bearer_auth handler around a no-op next, with
// a token the cache has seen: the gateway's cost per API request.
//
//	go test ./caddymodule -run XXX -bench BearerAuth -benchmem
func BenchmarkBearerAuth(b *testing.B) {
	srv := benchServer(b)
	// token mints an access token through the token endpoint.
	token := func(form url.Values) string {
		req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("svc", "s")
		w := httptest.NewRecorder()
		srv.Handler("/oauth/token").ServeHTTP(w, req)
		tok := w.Body.String()
		tok = tok[strings.Index(tok, `"access_token":"`)+16:]
		return tok[:strings.IndexByte(tok, '"')]
	}
	tok := token(url.Values{"grant_type": {"client_credentials"}})
	w := httptest.NewRecorder()

	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	// A route that is an RFC 9728 protected resource, and a token for it.
	const resource = "https://api.example.com/mcp"
	if err := srv.AddResource(resource, "", []string{"read"}); err != nil {
		b.Fatal(err)
	}
	pr := &introspect.ProtectedResource{Resource: resource, Scopes: []string{"read"}, Issuer: "https://auth.example.com"}
	if err := pr.Prepare(); err != nil {
		b.Fatal(err)
	}
	rtok := token(url.Values{"grant_type": {"client_credentials"}, "resource": {resource}})

	// With the Prometheus counter bearer_auth keeps, and without (the cost
	// of metrics on the gateway path); and on a protected-resource route.
	for _, m := range []struct {
		name     string
		checks   map[introspect.Outcome]prometheus.Counter
		resource *introspect.ProtectedResource
	}{{"metrics", bearerOutcomes, nil}, {"no-metrics", nil, nil}, {"resource", bearerOutcomes, pr}} {
		b.Run(m.name, func(b *testing.B) {
			h := &BearerAuth{Scope: "read", required: []string{"read"}, app: &App{server: srv, recent: newRecent()}, checks: m.checks}
			tok := tok
			if m.resource != nil {
				h.resource, h.audiences, tok = m.resource, []string{resource}, rtok
			}
			base := httptest.NewRequest("GET", "/things", nil)
			base.Header.Set("Authorization", "Bearer "+tok)
			serveEach(b, h, w, next, 1024, func() *http.Request { return base })
		})
	}
}

// BenchmarkBearerAuthDPoP is a DPoP-protected route's check: the token
// cached, a fresh ES256 proof each request (made outside the timer). Its
// cost beyond BenchmarkBearerAuth is the proof's: one signature
// verification and a few microseconds.
//
//	go test ./caddymodule -run XXX -bench BearerAuthDPoP -benchmem
func BenchmarkBearerAuthDPoP(b *testing.B) {
	srv := benchServer(b)
	k := dpoptest.New(b, jwa.ES256())
	req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", "s")
	req.Header.Set("DPoP", k.Proof(b, "POST", "https://auth.example.com/oauth/token", ""))
	w := httptest.NewRecorder()
	srv.Handler("/oauth/token").ServeHTTP(w, req)
	tok := w.Body.String()
	tok = tok[strings.Index(tok, `"access_token":"`)+16:]
	tok = tok[:strings.IndexByte(tok, '"')]

	h := &BearerAuth{Scope: "read", required: []string{"read"}, app: &App{server: srv, recent: newRecent()}, dpop: &introspect.DPoPPolicy{Replay: &dpop.Replay{}, Proofs: &dpop.Verifier{}}}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(200); return nil })
	const api = "http://api.example.com/things"
	rec := httptest.NewRecorder()
	serveEach(b, h, rec, next, 256, func() *http.Request {
		r := httptest.NewRequest("GET", api, nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", k.Proof(b, "GET", api, tok))
		return r
	})
	if rec.Code != 200 {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// serveEach runs h on b.N requests as Caddy hands them over, each with its
// own replacer. The requests are made by req in batches of batch, outside
// the timed part: only the handler's own work is measured.
func serveEach(b *testing.B, h *BearerAuth, w http.ResponseWriter, next caddyhttp.Handler, batch int, req func() *http.Request) {
	reqs := make([]*http.Request, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%batch == 0 {
			b.StopTimer()
			for j := range reqs {
				reqs[j] = req().WithContext(context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
			}
			b.StartTimer()
		}
		if err := h.ServeHTTP(w, reqs[i%batch], next); err != nil {
			b.Fatal(err)
		}
	}
}
