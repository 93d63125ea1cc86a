package authserver_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/introspect"
)

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name      string
		form      url.Values
		basic     []string
		wantScope string
		wantAud   string
	}{
		{"basic, bcrypt secret, all scopes", form("grant_type", "client_credentials"), []string{"svc", "s3cret"}, "read write", "https://api.example.com"},
		{"post, subset of scopes", form("grant_type", "client_credentials", "client_id", "svc", "client_secret", "s3cret", "scope", "write"), nil, "write", "https://api.example.com"},
		{"repeated scope listed once", form("grant_type", "client_credentials", "scope", "read  read"), []string{"svc", "s3cret"}, "read", "https://api.example.com"},
		{"basic with form-encoded id and secret", form("grant_type", "client_credentials"), []string{"odd:id", "p@ss:w+rd %"}, "read", issuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.post("/oauth/token", tc.form, tc.basic)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %v", resp.StatusCode, decode(t, resp))
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Error("token response must carry Cache-Control: no-store")
			}
			m := decode(t, resp)
			if m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) || m["scope"] != tc.wantScope {
				t.Fatalf("response %v", m)
			}
			if _, ok := m["refresh_token"]; ok {
				t.Fatal("client_credentials must not issue a refresh token")
			}
			c, err := e.validator.Validate(m["access_token"].(string), "")
			if err != nil {
				t.Fatalf("issued token does not validate: %v", err)
			}
			clientID := "svc"
			if tc.basic != nil {
				clientID = tc.basic[0]
			}
			if c.Subject != clientID || c.ClientID != clientID || c.Scope != tc.wantScope ||
				len(c.Audience) != 1 || c.Audience[0] != tc.wantAud || c.Issuer != issuer || c.ID == "" ||
				c.ExpiresAt-c.IssuedAt != 3600 {
				t.Fatalf("claims %+v", c)
			}
		})
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	e := newEnv(t)
	cc := form("grant_type", "client_credentials")
	raw := func(method, path, contentType, body string, hdr ...string) *http.Response {
		req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for i := 0; i < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		return e.do(req)
	}
	tests := []struct {
		name        string
		resp        func() *http.Response
		status      int
		code        string
		wantDesc    string
		basicHeader bool
	}{
		{"wrong secret via Basic", func() *http.Response { return e.post("/oauth/token", cc, []string{"svc", "nope"}) }, 401, "invalid_client", "wrong client_secret", true},
		{"wrong secret in body", func() *http.Response {
			return e.post("/oauth/token", form("grant_type", "client_credentials", "client_id", "svc", "client_secret", "nope"), nil)
		}, 401, "invalid_client", "wrong client_secret", false},
		{"unknown client", func() *http.Response { return e.post("/oauth/token", cc, []string{"ghost", "x"}) }, 401, "invalid_client", "unknown client_id", true},
		{"no client authentication", func() *http.Response { return e.post("/oauth/token", cc, nil) }, 401, "invalid_client", "no client authentication", true},
		{"confidential client without secret", func() *http.Response {
			return e.post("/oauth/token", form("grant_type", "client_credentials", "client_id", "svc"), nil)
		}, 401, "invalid_client", "confidential", false},
		{"Basic that is not base64", func() *http.Response {
			return raw("POST", "/oauth/token", "application/x-www-form-urlencoded", cc.Encode(), "Authorization", "Basic !!!")
		}, 401, "invalid_client", "base64", true},
		{"two authentication methods", func() *http.Response {
			return e.post("/oauth/token", form("grant_type", "client_credentials", "client_secret", "s3cret"), []string{"svc", "s3cret"})
		}, 400, "invalid_request", "one client authentication method", false},
		{"unknown grant", func() *http.Response {
			return e.post("/oauth/token", form("grant_type", "password"), []string{"svc", "s3cret"})
		}, 400, "unsupported_grant_type", "client_credentials", false},
		{"no grant_type", func() *http.Response { return e.post("/oauth/token", form(), []string{"svc", "s3cret"}) }, 400, "invalid_request", "grant_type is missing", false},
		{"grant not allowed for client", func() *http.Response { return e.post("/oauth/token", cc, []string{"web", "websecret"}) }, 400, "unauthorized_client", "not allowed", false},
		{"public client asking client_credentials", func() *http.Response {
			return e.post("/oauth/token", form("grant_type", "client_credentials", "client_id", "tv"), nil)
		}, 400, "unauthorized_client", "not allowed", false},
		{"scope not allowed", func() *http.Response {
			return e.post("/oauth/token", form("grant_type", "client_credentials", "scope", "read admin"), []string{"svc", "s3cret"})
		}, 400, "invalid_scope", `"admin" is not allowed`, false},
		{"scope with a forbidden character", func() *http.Response {
			return e.post("/oauth/token", form("grant_type", "client_credentials", "scope", `re"ad`), []string{"svc", "s3cret"})
		}, 400, "invalid_scope", "RFC 6749", false},
		{"JSON body", func() *http.Response {
			return raw("POST", "/oauth/token", "application/json", `{"grant_type":"client_credentials","client_id":"svc","client_secret":"s3cret"}`)
		}, 400, "invalid_request", "application/x-www-form-urlencoded", false},
		{"duplicated parameter", func() *http.Response {
			return raw("POST", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&scope=read&scope=write&client_id=svc&client_secret=s3cret")
		}, 400, "invalid_request", `"scope" is given more than once`, false},
		{"secret in the URL query", func() *http.Response {
			return raw("POST", "/oauth/token?client_secret=s3cret", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=svc")
		}, 400, "invalid_request", "not in the URL query", false},
		{"grant parameter in the URL query", func() *http.Response {
			return raw("POST", "/oauth/token?grant_type=client_credentials", "application/x-www-form-urlencoded", "client_id=svc&client_secret=s3cret")
		}, 400, "invalid_request", "request body", false},
		{"GET", func() *http.Response { return raw("GET", "/oauth/token", "", "") }, 405, "invalid_request", "POST", false},
		{"huge body", func() *http.Response {
			return raw("POST", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&x="+strings.Repeat("a", 100<<10))
		}, 400, "invalid_request", "larger than", false},
		{"malformed body", func() *http.Response {
			return raw("POST", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=%zz")
		}, 400, "invalid_request", "not valid", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.resp()
			m := wantOAuthError(t, resp, tc.status, tc.code)
			if d := m["error_description"].(string); !strings.Contains(d, tc.wantDesc) {
				t.Errorf("error_description %q does not mention %q", d, tc.wantDesc)
			}
			if got := resp.Header.Get("WWW-Authenticate"); tc.basicHeader != strings.HasPrefix(got, "Basic ") {
				t.Errorf("WWW-Authenticate %q (want Basic challenge: %v)", got, tc.basicHeader)
			}
			if d := m["error_description"].(string); strings.Contains(d, "s3cret") {
				t.Errorf("error_description repeats the secret: %q", d)
			}
		})
	}
}

func TestOtherPathsAreNotServed(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/oauth", "/oauth/token/x", "/api/things"} {
		if e.srv.Handler(p) != nil {
			t.Errorf("the server claims %s", p)
		}
	}
}

func TestIssuerWithPath(t *testing.T) {
	srv, err := newServerAt(t, openStore(t), "https://example.com/auth")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/auth/oauth/token", "/auth/oauth/jwks", "/.well-known/oauth-authorization-server/auth", "/auth/.well-known/oauth-authorization-server"} {
		if srv.Handler(p) == nil {
			t.Errorf("%s is not served for an issuer with a path", p)
		}
	}
	if srv.Handler("/oauth/token") != nil {
		t.Error("/oauth/token is served outside the issuer's path")
	}
}

func TestValidatedTokenLifetime(t *testing.T) {
	e := newEnv(t)
	m := decode(t, e.post("/oauth/token", form("grant_type", "client_credentials"), []string{"svc", "s3cret"}))
	tok := m["access_token"].(string)
	later := &introspect.Validator{Keys: e.keys, Issuer: issuer, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}
	if _, err := later.Validate(tok, ""); err == nil || err.(*introspect.TokenError).Reason != introspect.ReasonExpired {
		t.Fatalf("token still valid two hours later: %v", err)
	}
}

// Guessing a client's secret is limited: after too many failures even the
// right secret is refused for a while, with a message saying until when.
func TestClientAuthenticationFailuresLimited(t *testing.T) {
	e := newEnv(t)
	cc := form("grant_type", "client_credentials")
	for range 20 {
		wantOAuthError(t, e.post("/oauth/token", cc, []string{"svc", "guess"}), 401, "invalid_client")
	}
	m := wantOAuthError(t, e.post("/oauth/token", cc, []string{"svc", "s3cret"}), 401, "invalid_client")
	if !strings.Contains(m["error_description"].(string), "too many failed authentications") {
		t.Fatalf("description %v", m["error_description"])
	}
	// Other clients are not affected.
	if resp := e.post("/oauth/token", cc, []string{"odd:id", "p@ss:w+rd %"}); resp.StatusCode != 200 {
		t.Fatalf("another client: %d", resp.StatusCode)
	}
}

// An access token's aud is its one audience as a string, as most resource
// servers expect, and a list when the client names several (RFC 7519
// §4.1.3 allows both).
func TestAccessTokenAudienceForm(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.Clients = append(c.Clients, &client.Client{ID: "multi", Name: "Multi", SecretHash: client.HashSecretSHA256("multisecret"),
			GrantTypes: []string{client.GrantClientCredentials}, Scopes: []string{"read"},
			Audience: []string{"https://a.example.com", "https://b.example.com"}})
	})
	aud := func(id, secret string) string {
		t.Helper()
		m := decode(t, e.post("/oauth/token", form("grant_type", "client_credentials"), []string{id, secret}))
		at, _ := m["access_token"].(string)
		parts := strings.Split(at, ".")
		if len(parts) != 3 {
			t.Fatalf("no access token: %v", m)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct{ Aud json.RawMessage }
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		return string(claims.Aud)
	}
	if got := aud("svc", "s3cret"); got != `"https://api.example.com"` {
		t.Errorf("one audience: aud %s", got)
	}
	if got := aud("odd:id", "p@ss:w+rd %"); got != `"`+issuer+`"` {
		t.Errorf("no audience named (the issuer): aud %s", got)
	}
	if got := aud("multi", "multisecret"); got != `["https://a.example.com","https://b.example.com"]` {
		t.Errorf("two audiences: aud %s", got)
	}
}
