package authserver_test

import (
	"cmp"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"time"

	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/outbound"
)

// BenchmarkClientCredentials is one client_credentials token request through
// the token endpoint's handler (parse, authenticate, sign, respond), with a
// bcrypt secret_hash client and with a plain-secret client.
//
//	go test ./authserver -run XXX -bench ClientCredentials -benchmem
//
// Two more tell what is the handler's own: the same request to a handler
// that only answers 200 (the benchmark's own request and recorder), and
// the signature alone (keys.Ring.Sign of a token's claims). A token
// request's handler costs what secret-plain costs less those two.
func BenchmarkClientCredentials(b *testing.B) {
	b.Run("secret_hash-bcrypt", func(b *testing.B) { benchToken(b, "svc", "s3cret") })
	b.Run("secret-plain", func(b *testing.B) { benchToken(b, "odd:id", "p@ss:w+rd %") })
	b.Run("request-only", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
		body := url.Values{"grant_type": {"client_credentials"}}.Encode()
		b.ReportAllocs()
		for b.Loop() {
			serveToken(h, body, "odd:id", "p@ss:w+rd %")
		}
	})
	b.Run("signature-only", func(b *testing.B) {
		e := newEnv(b)
		claims := []byte(`{"iss":"https://auth.example.com","sub":"odd:id","aud":"https://auth.example.com","exp":1900000000,"iat":1800000000,` +
			`"jti":"0123456789abcdefghijkl","client_id":"odd:id","scope":"read"}`)
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.keys.Sign(claims, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchToken(b *testing.B, id, secret string) {
	e := newEnv(b)
	h := e.srv.Handler("/oauth/token")
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		if w := serveToken(h, body, id, secret); w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkCodeExchange is one authorization_code token request through the
// handler: redeem the code, check PKCE, store the refresh token, sign.
// Codes are created outside the timer.
//
//	go test ./authserver -run XXX -bench 'CodeExchange|Refresh' -benchmem
func BenchmarkCodeExchange(b *testing.B) { benchStores(b, benchCodeExchange) }

// BenchmarkRefresh is one refresh_token request through the handler: read
// the token, rotate it, sign. Each iteration uses the previous one's token.
func BenchmarkRefresh(b *testing.B) { benchStores(b, benchRefresh) }

// benchStores runs a benchmark on the embedded store and on Redis.
func benchStores(b *testing.B, fn func(b *testing.B, e *env)) {
	// Devices may poll back to back here: the benchmark measures a poll,
	// not the slow_down answer.
	fast := func(c *authserver.Config) { c.DeviceInterval = time.Nanosecond }
	b.Run("file", func(b *testing.B) { fn(b, newEnvWith(b, openStore(b), "ES256", fast)) })
	b.Run("redis", func(b *testing.B) { fn(b, newEnvWith(b, openRedisStore(b), "ES256", fast)) })
}

func benchCodeExchange(b *testing.B, e *env) {
	h := e.srv.Handler("/oauth/token")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		body := newBenchCode(b, e, fmt.Sprint("g", i))
		b.StartTimer()
		if w := serveToken(h, body, "webapp", "appsecret"); w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// newBenchCode stores an authorization code of grant for the webapp
// client and returns the token request's body that redeems it.
func newBenchCode(b *testing.B, e *env, grant string) string {
	secret := "bench-code-" + grant
	err := e.store.CreateCode(b.Context(), &store.AuthCode{Hash: challenge(secret), ClientID: "webapp", Subject: "mark",
		RedirectURI: "https://app.example.com/cb", RedirectURIGiven: true, Scope: "read", CodeChallenge: challenge(verifier),
		CodeChallengeMethod: "S256", GrantID: grant, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	return url.Values{"grant_type": {"authorization_code"}, "code": {grant + "." + secret}, "redirect_uri": {"https://app.example.com/cb"},
		"code_verifier": {verifier}}.Encode()
}

func benchRefresh(b *testing.B, e *env) {
	h := e.srv.Handler("/oauth/token")
	// A refresh token carries its generation under the server's MAC: the
	// first comes from redeeming a code, as a client's does.
	var m struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(serveToken(h, newBenchCode(b, e, "g"), "webapp", "appsecret").Body.Bytes(), &m); err != nil || m.RefreshToken == "" {
		b.Fatalf("no refresh token from the code (%v)", err)
	}
	rt := m.RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		w := serveToken(h, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode(), "webapp", "appsecret")
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		rt = m.RefreshToken
	}
}

func serveToken(h http.Handler, body, id, secret string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// BenchmarkDevicePoll is one device_code poll through the token endpoint
// while the person has not acted yet (authorization_pending): one store
// step (store.DevicePoll).
//
//	go test ./authserver -run XXX -bench DevicePoll -benchmem
func BenchmarkDevicePoll(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		m := decode(b, e.post("/oauth/device", url.Values{"client_id": {"tv"}}, nil))
		h := e.srv.Handler("/oauth/token")
		body := url.Values{"grant_type": {client.GrantDeviceCode}, "device_code": {m["device_code"].(string)}, "client_id": {"tv"}}.Encode()
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "authorization_pending") {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkAuthorizeClient is one authorization request up to the sign-in
// redirect, for a config client and for a client whose Client ID Metadata
// Document is cached: the difference is the cache hit's cost.
//
//	go test ./authserver -run XXX -bench AuthorizeClient -benchmem
func BenchmarkAuthorizeClient(b *testing.B) {
	var docs *httptest.Server
	docs = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		fmt.Fprintf(w, `{"client_id":%q,"client_name":"Doc Agent","redirect_uris":["http://127.0.0.1/callback"],"token_endpoint_auth_method":"none"}`, docs.URL+r.URL.Path)
	}))
	defer docs.Close()
	pool := x509.NewCertPool()
	pool.AddCert(docs.Certificate())
	e := newEnvWith(b, openStore(b), "ES256", func(c *authserver.Config) {
		c.Registration = &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}, ClientIDMetadataDocuments: true,
			Fetcher: outbound.New(outbound.Options{RootCAs: pool, AllowPrivateHosts: []string{"127.0.0.1"}})}
	})
	h := e.srv.Handler("/oauth/authorize")
	for _, c := range []struct{ name, id string }{{"config", "native"}, {"metadata-document-cached", docs.URL + "/client.json"}} {
		target := "/oauth/authorize?" + set("response_type", "code", "client_id", c.id, "redirect_uri", "http://127.0.0.1:5000/callback",
			"scope", "read", "state", "xyz", "code_challenge", challenge(verifier), "code_challenge_method", "S256").Encode()
		authorize := func(b *testing.B) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
			if w.Code != http.StatusSeeOther && w.Code != http.StatusFound {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
		b.Run(c.name, func(b *testing.B) {
			authorize(b) // the document's fetch happens here, not in the loop
			b.ReportAllocs()
			for b.Loop() {
				authorize(b)
			}
		})
	}
}

// BenchmarkAuthorizeConsented is an authorization request of a signed-in
// person who already allowed the application: whether to ask again (the
// person's live grants to it), then the code and its grant written. Each
// iteration leaves one more grant of the person's to the client (its code
// unredeemed), so a long run measures a person's index at its bound.
//
//	go test ./authserver -run XXX -bench AuthorizeConsented -benchmem
func BenchmarkAuthorizeConsented(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		p := e.person()
		back, err := p.Authorize(e.stdAuth())
		if err != nil {
			b.Fatal(err)
		}
		if resp := e.exchange(back.Query().Get("code")); resp.StatusCode != 200 {
			b.Fatalf("exchange: %d", resp.StatusCode)
		}
		u, _ := url.Parse(e.http.URL)
		var cookies []string
		for _, c := range p.HTTP.Jar.Cookies(u) {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		target := strings.TrimPrefix(e.stdAuth(), e.http.URL)
		h := e.srv.Handler("/oauth/authorize")
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", target, nil)
			r.Header.Set("Cookie", strings.Join(cookies, "; "))
			h.ServeHTTP(w, r)
			if loc := w.Header().Get("Location"); w.Code != http.StatusFound && w.Code != http.StatusSeeOther || !strings.Contains(loc, "code=") {
				b.Fatalf("status %d, to %s: the person was asked again", w.Code, loc)
			}
		}
	})
}

// BenchmarkRefreshOpenID is BenchmarkRefresh's request for a grant with
// openid, profile and email, whose answer has an ID token: none (the same
// grant without openid, the baseline), ES256 and RS256 (id_token_alg),
// on the embedded store. The difference is the ID token's cost.
//
//	go test ./authserver -run XXX -bench RefreshOpenID -benchmem
func BenchmarkRefreshOpenID(b *testing.B) {
	for _, alg := range []string{"", "ES256", "RS256"} {
		name := cmp.Or(alg, "without openid")
		b.Run(name, func(b *testing.B) {
			e := newEnvWith(b, openStore(b), "ES256", func(c *authserver.Config) {
				c.Clients = append(c.Clients, &client.Client{ID: "oidc", Name: "OIDC", SecretHash: client.HashSecretSHA256("oidcsecret"),
					GrantTypes: []string{client.GrantAuthorizationCode, client.GrantRefreshToken}, RedirectURIs: []string{"https://app.example.com/cb"},
					Scopes: []string{"read", "openid", "profile", "email"}, IDTokenAlg: alg})
			})
			scope, id := "read", (*store.OpenID)(nil)
			if alg != "" {
				scope, id = "read openid profile email", &store.OpenID{SID: "s1", Name: "Mark E. Mark", PreferredUsername: "mark", Email: "mark@example.com", EmailVerified: true}
			}
			secret := "bench-code-oidc"
			err := e.store.CreateCode(b.Context(), &store.AuthCode{Hash: challenge(secret), ClientID: "oidc", Subject: "mark",
				RedirectURI: "https://app.example.com/cb", RedirectURIGiven: true, Scope: scope, CodeChallenge: challenge(verifier),
				CodeChallengeMethod: "S256", GrantID: "g", AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Minute), OpenID: id, Nonce: "n"})
			if err != nil {
				b.Fatal(err)
			}
			h := e.srv.Handler("/oauth/token")
			var m struct {
				RefreshToken string `json:"refresh_token"`
				IDToken      string `json:"id_token"`
			}
			body := url.Values{"grant_type": {"authorization_code"}, "code": {"g." + secret}, "redirect_uri": {"https://app.example.com/cb"},
				"code_verifier": {verifier}}.Encode()
			if err := json.Unmarshal(serveToken(h, body, "oidc", "oidcsecret").Body.Bytes(), &m); err != nil || m.RefreshToken == "" || (m.IDToken != "") != (alg != "") {
				b.Fatalf("the code's answer: %+v %v", m, err)
			}
			rt := m.RefreshToken
			b.ReportAllocs()
			for b.Loop() {
				w := serveToken(h, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode(), "oidc", "oidcsecret")
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
				_ = json.Unmarshal(w.Body.Bytes(), &m)
				rt = m.RefreshToken
			}
		})
	}
}
