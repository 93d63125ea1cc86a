package login_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tokengate/tokengate/internal/keytest"
	"github.com/tokengate/tokengate/login"
	"github.com/tokengate/tokengate/outbound"
)

// fakeOP is an OpenID provider whose token endpoint answers with the ID
// token a test makes: the negative cases a real provider never produces.
type fakeOP struct {
	*httptest.Server
	key      jwk.Key
	jwks     []byte
	idToken  atomic.Value // string: what /token answers
	userinfo atomic.Value // map[string]any
	codes    atomic.Value // url.Values: the last token request
	slow     atomic.Bool
	garbage  atomic.Bool // the token endpoint answers an HTML page
}

func newFakeOP(t *testing.T) *fakeOP {
	op := &fakeOP{}
	op.key, op.jwks = keytest.ES256(t, "op-1")
	op.userinfo.Store(map[string]any{})
	op.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if op.slow.Load() {
			time.Sleep(500 * time.Millisecond)
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"userinfo_endpoint":%q,"jwks_uri":%q,
				"id_token_signing_alg_values_supported":["ES256"],"authorization_response_iss_parameter_supported":true}`,
				op.URL, op.URL+"/auth", op.URL+"/token", op.URL+"/userinfo", op.URL+"/jwks")
		case "/jwks":
			w.Write(op.jwks)
		case "/token":
			if op.garbage.Load() {
				w.Write([]byte("<html>maintenance</html>"))
				return
			}
			if r.FormValue("code") == "used" {
				http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
				return
			}
			_ = r.ParseForm()
			op.codes.Store(r.PostForm)
			fmt.Fprintf(w, `{"access_token":"at-1","token_type":"Bearer","id_token":%q}`, op.idToken.Load())
		case "/userinfo":
			if r.Header.Get("Authorization") != "Bearer at-1" {
				http.Error(w, "{}", http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(op.userinfo.Load())
		}
	}))
	t.Cleanup(op.Close)
	return op
}

// sign makes an ID token with the OP's key (or key), claims over the
// defaults of a good one for client "gate" and nonce "n-1".
func (op *fakeOP) sign(t *testing.T, alg jwa.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	tok, _ := jwt.NewBuilder().Issuer(op.URL).Subject("u-1").Audience([]string{"gate"}).IssuedAt(time.Now()).
		Expiration(time.Now().Add(5*time.Minute)).Claim("nonce", "n-1").Claim("email", "mark@example.com").
		Claim("email_verified", true).Claim("name", "Mark").Build()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if key == nil {
		key = op.key
	}
	b, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(jws.NewHeaders())))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newProvider(t *testing.T, op *fakeOP, mod func(*login.Config)) *login.Provider {
	t.Helper()
	cfg := login.Config{Name: "corp", Issuer: op.URL, ClientID: "gate", ClientSecret: "s3cret", RedirectURI: "https://auth.example.com/login/corp/callback",
		Fetcher: outbound.New(outbound.Options{Trusted: true, Timeout: 200 * time.Millisecond})}
	if mod != nil {
		mod(&cfg)
	}
	p, err := login.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func kindOf(err error) login.Kind {
	var le *login.Error
	if errors.As(err, &le) {
		return le.Kind
	}
	return ""
}

// The relying party's side of the code flow, and every check of the ID
// token: each case is an ID token (or callback) that must be refused.
func TestOpenIDConnect(t *testing.T) {
	op := newFakeOP(t)
	p := newProvider(t, op, nil)
	target, err := p.AuthCodeURL(t.Context(), "st-1", "n-1", "ch-1")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(target)
	q := u.Query()
	if u.Path != "/auth" || q.Get("client_id") != "gate" || q.Get("nonce") != "n-1" || q.Get("state") != "st-1" || q.Get("code_challenge_method") != "S256" ||
		q.Get("scope") != "openid email profile" || q.Get("redirect_uri") != "https://auth.example.com/login/corp/callback" {
		t.Fatalf("authorization URL %s", target)
	}
	callback := url.Values{"code": {"c-1"}, "state": {"st-1"}, "iss": {op.URL}}
	op.idToken.Store(op.sign(t, jwa.ES256(), nil, nil))
	id, err := p.Finish(t.Context(), callback, "n-1", "verifier-1")
	if err != nil || id.Username != "u-1" || id.DisplayName != "Mark" {
		t.Fatalf("a good sign-in: %+v %v", id, err)
	}
	if sent := op.codes.Load().(url.Values); sent.Get("code_verifier") != "verifier-1" || sent.Get("code") != "c-1" {
		t.Fatalf("the token request: %v", sent)
	}

	otherKey, _ := keytest.ES256(t, "op-1") // same kid, not the OP's key
	hmacKey := []byte("s3cret-s3cret-s3cret-s3cret-s3cr")
	for name, tc := range map[string]struct {
		idToken  string
		callback url.Values
		want     login.Kind
	}{
		"another nonce":       {op.sign(t, jwa.ES256(), nil, map[string]any{"nonce": "n-2"}), nil, login.Invalid},
		"another issuer":      {op.sign(t, jwa.ES256(), nil, map[string]any{"iss": "https://evil.example.com"}), nil, login.Invalid},
		"another audience":    {op.sign(t, jwa.ES256(), nil, map[string]any{"aud": "someone-else"}), nil, login.Invalid},
		"azp of another":      {op.sign(t, jwa.ES256(), nil, map[string]any{"aud": []string{"gate", "other"}, "azp": "other"}), nil, login.Invalid},
		"expired":             {op.sign(t, jwa.ES256(), nil, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), nil, login.Invalid},
		"another's signature": {op.sign(t, jwa.ES256(), otherKey, nil), nil, login.Invalid},
		"HS256 with a secret": {op.sign(t, jwa.HS256(), hmacKey, nil), nil, login.Invalid},
		"unsigned":            {"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LTEifQ.", nil, login.Invalid},
		"iss of another OP":   {op.sign(t, jwa.ES256(), nil, nil), url.Values{"code": {"c-1"}, "iss": {"https://other-op.example.com"}}, login.Invalid},
		"no iss at all":       {op.sign(t, jwa.ES256(), nil, nil), url.Values{"code": {"c-1"}}, login.Invalid},
		"the person declined": {"", url.Values{"error": {"access_denied"}}, login.Denied},
	} {
		op.idToken.Store(tc.idToken)
		cb := callback
		if tc.callback != nil {
			cb = tc.callback
		}
		if _, err := p.Finish(t.Context(), cb, "n-1", "verifier-1"); kindOf(err) != tc.want {
			t.Errorf("%s: %v, want %s", name, err, tc.want)
		}
	}

	// A provider that answers garbage, or is slow, is unavailable (within
	// the timeout).
	op.garbage.Store(true)
	if _, err := p.Finish(t.Context(), callback, "n-1", "verifier-1"); kindOf(err) != login.Unavailable {
		t.Fatalf("a garbage token response: %v", err)
	}
	op.garbage.Store(false)
	// A code the provider refuses (used, expired) is invalid, not an outage.
	if _, err := p.Finish(t.Context(), url.Values{"code": {"used"}, "iss": {op.URL}}, "n-1", "v"); kindOf(err) != login.Invalid {
		t.Fatalf("a refused code: %v", err)
	}
	op.slow.Store(true)
	fresh := newProvider(t, op, nil)
	start := time.Now()
	if _, err := fresh.AuthCodeURL(t.Context(), "s", "n", "c"); kindOf(err) != login.Unavailable || time.Since(start) > 2*time.Second {
		t.Fatalf("a slow provider: %v after %s", err, time.Since(start))
	}
}

// allow_domain takes only verified emails of its domains; allow_claim a
// claim holding a value; claims missing from the ID token come from
// userinfo.
func TestAdmission(t *testing.T) {
	op := newFakeOP(t)
	p := newProvider(t, op, func(c *login.Config) {
		c.UsernameClaim = "email"
		c.AllowDomains = []string{"example.com"}
		c.AllowClaims = []login.ClaimRule{{Claim: "groups", Values: []string{"ops", "admins"}}}
	})
	callback := url.Values{"code": {"c-1"}, "state": {"st-1"}, "iss": {op.URL}}
	finish := func(claims, userinfo map[string]any) (*login.Identity, error) {
		op.idToken.Store(op.sign(t, jwa.ES256(), nil, claims))
		op.userinfo.Store(userinfo)
		return p.Finish(t.Context(), callback, "n-1", "v")
	}
	if id, err := finish(map[string]any{"groups": []string{"eng", "ops"}}, nil); err != nil || id.Username != "mark@example.com" {
		t.Fatalf("admitted: %+v %v", id, err)
	}
	if id, err := finish(nil, map[string]any{"sub": "u-1", "groups": []string{"admins"}}); err != nil || id.Username != "mark@example.com" {
		t.Fatalf("groups from userinfo: %+v %v", id, err)
	}
	for name, claims := range map[string]map[string]any{
		"another domain":   {"email": "mark@example.org", "groups": "ops"},
		"a subdomain":      {"email": "mark@evil.example.com", "groups": "ops"},
		"two @s":           {"email": "bob@evil.com@example.com", "groups": "ops"},
		"unverified email": {"email_verified": false, "groups": "ops"},
		"no group":         {"groups": []string{"eng"}},
	} {
		if _, err := finish(claims, map[string]any{"sub": "u-1"}); kindOf(err) != login.Refused {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
	// The domain's case makes no other person: one subject for both.
	for _, email := range []string{"Bob@EXAMPLE.COM", "Bob@example.com"} {
		if id, err := finish(map[string]any{"email": email, "groups": "ops"}, nil); err != nil || id.Username != "Bob@example.com" {
			t.Errorf("%s: %+v %v, want the subject Bob@example.com", email, id, err)
		}
	}
	// userinfo of another subject is not merged.
	if _, err := finish(nil, map[string]any{"sub": "someone-else", "groups": "ops"}); kindOf(err) != login.Refused {
		t.Errorf("userinfo of another subject merged: %v", err)
	}
}

// A plain OAuth 2.0 provider (GitHub-style): no ID token, the person is
// who userinfo says, by a numeric ID.
func TestPlainOAuth2(t *testing.T) {
	op := newFakeOP(t)
	p := newProvider(t, op, func(c *login.Config) {
		c.Issuer, c.AuthorizationURL, c.TokenURL, c.UserinfoURL = "", op.URL+"/auth", op.URL+"/token", op.URL+"/userinfo"
		c.UsernameClaim = "login"
	})
	target, err := p.AuthCodeURL(t.Context(), "st", "n", "c")
	if err != nil || strings.Contains(target, "nonce=") || !strings.HasPrefix(target, op.URL+"/auth?") {
		t.Fatalf("authorization URL %s %v", target, err)
	}
	op.idToken.Store("")
	op.userinfo.Store(map[string]any{"id": 583231, "login": "octocat", "name": "The Octocat"})
	id, err := p.Finish(t.Context(), url.Values{"code": {"c-1"}, "state": {"st"}}, "", "v")
	if err != nil || id.Username != "octocat" || id.DisplayName != "The Octocat" {
		t.Fatalf("a plain provider's sign-in: %+v %v", id, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]login.Config{
		"bad name":       {Name: "Corp SSO", Issuer: "https://sso.example.com", ClientID: "a", ClientSecret: "b"},
		"no secret":      {Name: "corp", Issuer: "https://sso.example.com", ClientID: "a"},
		"both kinds":     {Name: "corp", Issuer: "https://sso.example.com", TokenURL: "https://x.example.com/t", ClientID: "a", ClientSecret: "b"},
		"plain, partial": {Name: "corp", AuthorizationURL: "https://x.example.com/a", ClientID: "a", ClientSecret: "b"},
		"http issuer":    {Name: "corp", Issuer: "http://sso.example.com", ClientID: "a", ClientSecret: "b"},
		"no openid":      {Name: "corp", Issuer: "https://sso.example.com", ClientID: "a", ClientSecret: "b", Scopes: []string{"email"}},
	} {
		if _, err := login.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
