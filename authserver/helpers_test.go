package authserver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/store/boltstore"
	"github.com/tokengate/tokengate/authserver/store/redisstore"
	"github.com/tokengate/tokengate/authserver/web"
	"github.com/tokengate/tokengate/internal/persontest"
	"github.com/tokengate/tokengate/internal/redistest"
	"github.com/tokengate/tokengate/introspect"
)

const issuer = "https://auth.example.com"

// env is an authorization server on a fresh embedded store.
type env struct {
	t         testing.TB
	store     store.Store
	keys      *keys.Ring
	validator *introspect.Validator
	srv       *authserver.Server
	http      *httptest.Server
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// eachStore runs fn on the embedded store and on Redis: for the rules
// whose state lives in the store (registrations, single-use assertions,
// rate limits).
func eachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("file", func(t *testing.T) { fn(t, openStore(t)) })
	t.Run("redis", func(t *testing.T) { fn(t, openRedisStore(t)) })
}

// openRedisStore is a Redis store on a redis-server of the test's own.
func openRedisStore(t testing.TB) store.Store {
	t.Helper()
	srv := redistest.Start(t)
	st, err := redisstore.New(redisstore.Options{Addresses: []string{srv.URL}, Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func bcryptHash(t testing.TB, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// testClients: a bcrypt client, a plain-secret client whose ID and secret
// need form-encoding inside Basic, a public device client, and a
// confidential client without client_credentials.
func testClients(t testing.TB) []*client.Client {
	return []*client.Client{
		{ID: "svc", Name: "Service", SecretHash: bcryptHash(t, "s3cret"), GrantTypes: []string{client.GrantClientCredentials},
			Scopes: []string{"read", "write"}, Audience: []string{"https://api.example.com"}},
		{ID: "odd:id", Name: "Odd", SecretHash: client.HashSecretSHA256("p@ss:w+rd %"), GrantTypes: []string{client.GrantClientCredentials},
			Scopes: []string{"read"}},
		{ID: "tv", Name: "TV", Public: true, GrantTypes: []string{client.GrantDeviceCode}, Scopes: []string{"read"}},
		{ID: "web", Name: "Web", SecretHash: client.HashSecretSHA256("websecret"), GrantTypes: []string{client.GrantDeviceCode, client.GrantRefreshToken},
			RedirectURIs: []string{"https://web.example.com/cb"}, Scopes: []string{"read"}},
		{ID: "webapp", Name: "The Droplet Book", Website: "https://dropletbook.com", SecretHash: client.HashSecretSHA256("appsecret"),
			GrantTypes:   []string{client.GrantAuthorizationCode, client.GrantRefreshToken},
			RedirectURIs: []string{"https://app.example.com/cb", "https://app.example.com/other"}, Scopes: []string{"read", "write"}},
		{ID: "native", Name: "Native", Public: true, GrantTypes: []string{client.GrantAuthorizationCode, client.GrantRefreshToken},
			RedirectURIs: []string{"http://127.0.0.1/callback"}, Scopes: []string{"read", "write"}},
		{ID: "firstparty", Name: "First", SecretHash: client.HashSecretSHA256("fpsecret"), SkipConsent: true,
			GrantTypes: []string{client.GrantAuthorizationCode}, RedirectURIs: []string{"https://first.example.com/cb"}, Scopes: []string{"read"}},
	}
}

const markPassword = "mark-password"

func testUsers(t testing.TB) []*web.User {
	return []*web.User{{Username: "mark", PasswordHash: bcryptHash(t, markPassword), Name: "Mark E. Mark", Email: "mark@example.com"}}
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, openStore(t), "ES256")
}

// newEnvWith builds an env on st signing with alg; opts adjust the config.
func newEnvWith(t testing.TB, st store.Store, alg string, opts ...func(*authserver.Config)) *env {
	t.Helper()
	cfg := authserver.Config{Issuer: issuer, Clients: testClients(t), Users: testUsers(t), Store: st, SigningAlg: alg, TokenCacheSize: -1,
		UpstreamUser: func(r *http.Request) string { return r.Header.Get("X-Test-Upstream-User") },
		ClientIP:     func(r *http.Request) string { return r.Header.Get("X-Test-Client-IP") }}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := authserver.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys, v := srv.Keys(), srv.Validator()
	e := &env{t: t, store: st, keys: keys, validator: v, srv: srv}
	e.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := srv.Handler(r.URL.Path); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(e.http.Close)
	return e
}

// post sends a form to path; basic, if not nil, is [id, secret] sent
// form-urlencoded inside HTTP Basic as RFC 6749 §2.3.1 says.
func (e *env) post(path string, form url.Values, basic []string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) *http.Response {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// postFrom posts a page's form as person p from client IP ip (as the
// embedding server would report it) and returns the status.
func postFrom(t *testing.T, p *persontest.Person, action string, fields url.Values, ip string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", action, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Test-Client-IP", ip)
	resp, err := p.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func decode(t testing.TB, resp *http.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decoding response (status %d): %v", resp.StatusCode, err)
	}
	return m
}

// wantOAuthError checks an RFC 6749 §5.2 error response.
func wantOAuthError(t *testing.T, resp *http.Response, status int, code string) map[string]any {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	m := decode(t, resp)
	if m["error"] != code {
		t.Fatalf("error %v (%v), want %s", m["error"], m["error_description"], code)
	}
	if d, _ := m["error_description"].(string); len(d) < 10 {
		t.Errorf("error_description %q does not tell the user what to fix", d)
	}
	return m
}
