package authserver_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tokengate/tokengate/internal/persontest"
)

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more"

func challenge(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// set builds parameters from key/value pairs: a later pair replaces an
// earlier one, and a value of "" leaves the parameter out.
func set(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

func (e *env) authURL(kv ...string) string {
	return e.http.URL + "/oauth/authorize?" + set(kv...).Encode()
}

// stdAuth is a good request of the confidential webapp client.
func (e *env) stdAuth(extra ...string) string {
	return e.authURL(append([]string{"response_type", "code", "client_id", "webapp", "redirect_uri", "https://app.example.com/cb",
		"scope", "read", "state", "xyz", "code_challenge", challenge(verifier), "code_challenge_method", "S256"}, extra...)...)
}

func (e *env) person() *persontest.Person { return persontest.New("mark", markPassword) }

// exchange redeems a code at the token endpoint as the webapp client.
func (e *env) exchange(code string, extra ...string) *http.Response {
	f := set(append([]string{"grant_type", "authorization_code", "code", code, "redirect_uri", "https://app.example.com/cb",
		"code_verifier", verifier}, extra...)...)
	return e.post("/oauth/token", f, []string{"webapp", "appsecret"})
}

// codeFor runs the flow as mark and returns the code.
func (e *env) codeFor(t *testing.T, p *persontest.Person, authURL string) string {
	t.Helper()
	back, err := p.Authorize(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := back.Query()
	if q.Get("error") != "" || q.Get("code") == "" {
		t.Fatalf("no code: %s", back)
	}
	return q.Get("code")
}

func TestAuthorizationCodeFlow(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	back, err := p.Authorize(e.stdAuth())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Pages, ",") != "login,consent" {
		t.Fatalf("pages seen %v, want login then consent", p.Pages)
	}
	q := back.Query()
	if back.Host != "app.example.com" || back.Path != "/cb" || q.Get("state") != "xyz" || q.Get("iss") != issuer || q.Get("code") == "" {
		t.Fatalf("callback %s", back)
	}
	resp := e.exchange(q.Get("code"))
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("exchange: %d %v", resp.StatusCode, decode(t, resp))
	}
	m := decode(t, resp)
	c, err := e.validator.Validate(m["access_token"].(string), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "mark" || c.ClientID != "webapp" || c.Scope != "read" || c.GrantID == "" || c.AuthTime == 0 {
		t.Fatalf("claims %+v", c)
	}
	if rt, _ := m["refresh_token"].(string); !strings.HasPrefix(rt, c.GrantID+".") {
		t.Fatalf("refresh token %q does not belong to grant %s", rt, c.GrantID)
	}

	// Consent is remembered: the same or fewer scopes skip it; more ask again.
	p.Pages = nil
	e.codeFor(t, p, e.stdAuth())
	if len(p.Pages) != 0 {
		t.Fatalf("second authorization showed %v", p.Pages)
	}
	e.codeFor(t, p, e.authURL("response_type", "code", "client_id", "webapp", "redirect_uri", "https://app.example.com/cb",
		"scope", "read write", "code_challenge", challenge(verifier), "code_challenge_method", "S256"))
	if strings.Join(p.Pages, ",") != "consent" {
		t.Fatalf("wider scope showed %v, want the consent page again", p.Pages)
	}
}

func TestPublicClientAndLoopbackPort(t *testing.T) {
	e := newEnv(t)
	back, err := e.person().Authorize(e.authURL("response_type", "code", "client_id", "native",
		"redirect_uri", "http://127.0.0.1:53123/callback", "code_challenge", challenge(verifier), "code_challenge_method", "S256"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Host != "127.0.0.1:53123" || back.Query().Get("code") == "" {
		t.Fatalf("callback %s", back)
	}
	f := form("grant_type", "authorization_code", "code", back.Query().Get("code"), "client_id", "native",
		"redirect_uri", "http://127.0.0.1:53123/callback", "code_verifier", verifier)
	if resp := e.post("/oauth/token", f, nil); resp.StatusCode != 200 {
		t.Fatalf("public exchange: %d %v", resp.StatusCode, decode(t, resp))
	}
}

// Requests whose client or redirect URI cannot be trusted get an error
// page, never a redirect.
func TestAuthorizeErrorPages(t *testing.T) {
	e := newEnv(t)
	for name, u := range map[string]string{
		"unknown client":        e.authURL("response_type", "code", "client_id", "ghost", "redirect_uri", "https://app.example.com/cb"),
		"no client":             e.authURL("response_type", "code", "redirect_uri", "https://app.example.com/cb"),
		"other path":            e.stdAuth("redirect_uri", "https://app.example.com/cb/more"),
		"extra query":           strings.Replace(e.stdAuth(), "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb", "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1", 1),
		"suffix domain":         strings.Replace(e.stdAuth(), "app.example.com%2Fcb", "app.example.com.evil.com%2Fcb", 1),
		"fragment":              strings.Replace(e.stdAuth(), "%2Fcb", "%2Fcb%23frag", 1),
		"userinfo":              strings.Replace(e.stdAuth(), "https%3A%2F%2Fapp", "https%3A%2F%2Fevil%40app", 1),
		"http instead of https": strings.Replace(e.stdAuth(), "https%3A%2F%2Fapp", "http%3A%2F%2Fapp", 1),
		"several redirect URIs, none named": e.authURL("response_type", "code", "client_id", "webapp",
			"code_challenge", challenge(verifier), "code_challenge_method", "S256"),
		"loopback with userinfo": e.authURL("response_type", "code", "client_id", "native", "redirect_uri", "http://evil@127.0.0.1:5000/callback",
			"code_challenge", challenge(verifier), "code_challenge_method", "S256"),
		"loopback other path": e.authURL("response_type", "code", "client_id", "native", "redirect_uri", "http://127.0.0.1:5000/evil",
			"code_challenge", challenge(verifier), "code_challenge_method", "S256"),
		"localhost is not loopback-any-port": e.authURL("response_type", "code", "client_id", "native", "redirect_uri", "http://localhost:5000/callback",
			"code_challenge", challenge(verifier), "code_challenge_method", "S256"),
	} {
		t.Run(name, func(t *testing.T) {
			if name == "extra query" || name == "suffix domain" || name == "fragment" || name == "userinfo" || name == "http instead of https" {
				if u == e.stdAuth() {
					t.Fatal("the test did not alter the URL")
				}
			}
			res, err := e.person().Get(u)
			if err != nil {
				t.Fatal(err)
			}
			if res.Redirect != nil {
				t.Fatalf("redirected to %s", res.Redirect)
			}
			if res.Page.Status != 400 || !strings.Contains(res.Page.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("status %d %s", res.Page.Status, res.Page.Header.Get("Content-Type"))
			}
			checkPageHeaders(t, res.Page.Header)
		})
	}
}

func checkPageHeaders(t *testing.T, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %s", csp, want)
		}
	}
	if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows scripts: %q", csp)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("page headers %v", h)
	}
}

// Every other error goes back to the client with error, state and iss.
func TestAuthorizeErrorRedirects(t *testing.T) {
	e := newEnv(t)
	pk := []string{"code_challenge", challenge(verifier), "code_challenge_method", "S256"}
	tests := []struct {
		name, url, code string
	}{
		{"duplicated parameter", e.stdAuth() + "&response_type=token", "invalid_request"},
		{"implicit", e.authURL(append([]string{"response_type", "token", "client_id", "webapp", "redirect_uri", "https://app.example.com/cb", "state", "xyz"}, pk...)...), "unsupported_response_type"},
		{"no response type", e.authURL(append([]string{"client_id", "webapp", "redirect_uri", "https://app.example.com/cb", "state", "xyz"}, pk...)...), "invalid_request"},
		{"unknown scope", e.authURL(append([]string{"response_type", "code", "client_id", "webapp", "redirect_uri", "https://app.example.com/cb", "state", "xyz", "scope", "admin"}, pk...)...), "invalid_scope"},
		{"public client without PKCE", e.authURL("response_type", "code", "client_id", "native", "redirect_uri", "http://127.0.0.1:9/callback", "state", "xyz"), "invalid_request"},
		{"plain PKCE", e.authURL("response_type", "code", "client_id", "native", "redirect_uri", "http://127.0.0.1:9/callback", "state", "xyz",
			"code_challenge", verifier[:43], "code_challenge_method", "plain"), "invalid_request"},
		{"PKCE method missing (plain by default)", e.authURL("response_type", "code", "client_id", "native", "redirect_uri", "http://127.0.0.1:9/callback", "state", "xyz",
			"code_challenge", challenge(verifier)), "invalid_request"},
		{"malformed challenge", e.authURL("response_type", "code", "client_id", "native", "redirect_uri", "http://127.0.0.1:9/callback", "state", "xyz",
			"code_challenge", "short", "code_challenge_method", "S256"), "invalid_request"},
		{"client without the code grant", e.authURL("response_type", "code", "client_id", "web", "redirect_uri", "https://web.example.com/cb", "state", "xyz"), "unauthorized_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.person().Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if res.Redirect == nil {
				t.Fatalf("no redirect: %d %s", res.Page.Status, res.Page.Body)
			}
			q := res.Redirect.Query()
			if q.Get("error") != tc.code || q.Get("error_description") == "" || q.Get("state") != "xyz" || q.Get("iss") != issuer || q.Get("code") != "" {
				t.Fatalf("redirect %s, want error %s with state and iss", res.Redirect, tc.code)
			}
		})
	}
}

// Without state the flow still works (state is the client's business).
func TestMissingStateAllowed(t *testing.T) {
	e := newEnv(t)
	back, err := e.person().Authorize(e.stdAuth("state", ""))
	if err != nil {
		t.Fatal(err)
	}
	if back.Query().Get("code") == "" || back.Query().Has("state") {
		t.Fatalf("callback %s", back)
	}
}

// The redirect URI may be left out when the client has exactly one; the
// token request then need not repeat it.
func TestRedirectURIOptionalWithOneRegistered(t *testing.T) {
	e := newEnv(t)
	back, err := e.person().Authorize(e.authURL("response_type", "code", "client_id", "firstparty", "state", "s"))
	if err != nil {
		t.Fatal(err)
	}
	if back.String() == "" || back.Host != "first.example.com" || back.Query().Get("code") == "" {
		t.Fatalf("callback %s", back)
	}
	resp := e.post("/oauth/token", form("grant_type", "authorization_code", "code", back.Query().Get("code")), []string{"firstparty", "fpsecret"})
	if resp.StatusCode != 200 {
		t.Fatalf("exchange without redirect_uri: %d %v", resp.StatusCode, decode(t, resp))
	}
}

func TestSkipConsentAndUpstreamUser(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	e.codeFor(t, p, e.authURL("response_type", "code", "client_id", "firstparty", "redirect_uri", "https://first.example.com/cb"))
	if strings.Join(p.Pages, ",") != "login" {
		t.Fatalf("skip_consent client showed %v", p.Pages)
	}

	// A user authenticated by an earlier handler skips the login page.
	req, _ := http.NewRequest("GET", e.stdAuth(), nil)
	req.Header.Set("X-Test-Upstream-User", "alice")
	resp, err := e.person().HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.HasPrefix(loc, "/consent?") {
		t.Fatalf("upstream user: %d to %q, want the consent page", resp.StatusCode, loc)
	}
}

func TestConsentDenied(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	p.Decision = "deny"
	back, err := p.Authorize(e.stdAuth())
	if err != nil {
		t.Fatal(err)
	}
	if q := back.Query(); q.Get("error") != "access_denied" || q.Get("state") != "xyz" || q.Get("iss") != issuer || q.Has("code") {
		t.Fatalf("callback %s", back)
	}
}

// Forms without their CSRF token are refused.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	res, err := p.Get(e.stdAuth())
	if err != nil {
		t.Fatal(err)
	}
	login, err := res.Page.Form()
	if err != nil {
		t.Fatal(err)
	}
	login.Fields.Del("csrf_token")
	login.Fields.Set("username", "mark")
	login.Fields.Set("password", markPassword)
	res, err = p.Post(login.Action, login.Fields)
	if err != nil {
		t.Fatal(err)
	}
	if res.Page == nil || res.Page.Status != 403 {
		t.Fatalf("login without CSRF token accepted: %+v", res)
	}

	// A consent form posted from another browser (its token, not ours).
	other := e.person()
	res, _ = other.Get(e.stdAuth())
	form, _ := res.Page.Form()
	form.Fields.Set("username", "mark")
	form.Fields.Set("password", markPassword)
	res, _ = other.Post(form.Action, form.Fields)
	consent, err := res.Page.Form()
	if err != nil || !res.Page.Has("decision") {
		t.Fatalf("no consent page: %v", err)
	}
	checkPageHeaders(t, res.Page.Header)
	if !strings.Contains(res.Page.Body, "The Droplet Book") || !strings.Contains(res.Page.Body, "https://dropletbook.com") ||
		!strings.Contains(res.Page.Body, "<code>read</code>") {
		t.Fatalf("consent page lacks the application's name, website or scopes:\n%s", res.Page.Body)
	}
	csp := res.Page.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "form-action 'self' https://app.example.com") {
		t.Fatalf("consent CSP must allow the redirect to the client: %q", csp)
	}
	for name, mutate := range map[string]func(url.Values){
		"missing": func(v url.Values) { v.Del("csrf_token") },
		"forged":  func(v url.Values) { v.Set("csrf_token", "AAAA") },
	} {
		v := url.Values{}
		for k, vs := range consent.Fields {
			v[k] = vs
		}
		v.Set("decision", "approve")
		mutate(v)
		res, err := other.Post(consent.Action, v)
		if err != nil {
			t.Fatal(err)
		}
		if res.Page == nil || res.Page.Status != 403 {
			t.Fatalf("%s CSRF token on consent accepted: %+v", name, res)
		}
	}
}

func TestLoginFailuresAreRateLimited(t *testing.T) {
	e := newEnv(t)
	p := persontest.New("mark", "wrong")
	res, _ := p.Get(e.stdAuth())
	form, _ := res.Page.Form()
	var last *persontest.Page
	for i := 0; i < 6; i++ {
		form.Fields.Set("username", "mark")
		form.Fields.Set("password", "wrong")
		res, err := p.Post(form.Action, form.Fields)
		if err != nil {
			t.Fatal(err)
		}
		last = res.Page
		if i < 5 && (last.Status != 401 || !strings.Contains(last.Body, "Wrong username or password")) {
			t.Fatalf("attempt %d: %d", i+1, last.Status)
		}
		form, _ = last.Form()
	}
	if last.Status != 429 || !strings.Contains(last.Body, "Try again after") {
		t.Fatalf("sixth attempt: %d\n%s", last.Status, last.Body)
	}
	// Even the right password is refused now.
	form.Fields.Set("username", "mark")
	form.Fields.Set("password", markPassword)
	res, _ = p.Post(form.Action, form.Fields)
	if res.Page == nil || res.Page.Status != 429 {
		t.Fatal("the right password got through the rate limit")
	}
}

func TestSessionCookie(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	res, _ := p.Get(e.stdAuth())
	u, _ := url.Parse(e.http.URL)
	before := p.HTTP.Jar.Cookies(u)
	form, _ := res.Page.Form()
	form.Fields.Set("username", "mark")
	form.Fields.Set("password", markPassword)
	req, _ := http.NewRequest("POST", form.Action, strings.NewReader(form.Fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var c *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "tokengate_session" {
			c = ck
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || !c.Secure || c.MaxAge <= 0 || c.MaxAge > 3600 {
		t.Fatalf("session cookie %+v (issuer is https: Secure expected)", c)
	}
	if len(before) == 0 || before[0].Value == c.Value {
		t.Fatal("login kept the pre-login session")
	}
}

func TestCodeRules(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	e.codeFor(t, p, e.stdAuth()) // sign in and consent once

	t.Run("replay revokes the tokens", func(t *testing.T) {
		code := e.codeFor(t, p, e.stdAuth())
		m := decode(t, e.exchange(code))
		at, rt := m["access_token"].(string), m["refresh_token"].(string)
		wantOAuthError(t, e.exchange(code), 400, "invalid_grant")
		if _, err := e.validator.Validate(at, ""); err == nil {
			t.Fatal("the access token issued from a replayed code is still valid")
		}
		wantOAuthError(t, e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", rt), []string{"webapp", "appsecret"}), 400, "invalid_grant")
	})
	t.Run("wrong verifier", func(t *testing.T) {
		code := e.codeFor(t, p, e.stdAuth())
		wantOAuthError(t, e.exchange(code, "code_verifier", strings.Repeat("x", 50)), 400, "invalid_grant")
	})
	t.Run("missing verifier", func(t *testing.T) {
		code := e.codeFor(t, p, e.stdAuth())
		wantOAuthError(t, e.post("/oauth/token", form("grant_type", "authorization_code", "code", code, "redirect_uri", "https://app.example.com/cb"),
			[]string{"webapp", "appsecret"}), 400, "invalid_grant")
	})
	t.Run("PKCE downgrade", func(t *testing.T) {
		code := e.codeFor(t, p, e.stdAuth("code_challenge", "", "code_challenge_method", ""))
		wantOAuthError(t, e.exchange(code), 400, "invalid_grant") // a verifier for a code without challenge
	})
	t.Run("confidential client without PKCE", func(t *testing.T) {
		code := e.codeFor(t, p, e.stdAuth("code_challenge", "", "code_challenge_method", ""))
		resp := e.post("/oauth/token", form("grant_type", "authorization_code", "code", code, "redirect_uri", "https://app.example.com/cb"), []string{"webapp", "appsecret"})
		if resp.StatusCode != 200 {
			t.Fatalf("%d %v", resp.StatusCode, decode(t, resp))
		}
	})
	t.Run("other redirect_uri", func(t *testing.T) {
		code := e.codeFor(t, p, e.stdAuth())
		wantOAuthError(t, e.exchange(code, "redirect_uri", "https://app.example.com/other"), 400, "invalid_grant")
	})
	t.Run("other client", func(t *testing.T) {
		code := e.codeFor(t, p, e.stdAuth())
		wantOAuthError(t, e.post("/oauth/token", form("grant_type", "authorization_code", "code", code, "code_verifier", verifier),
			[]string{"firstparty", "fpsecret"}), 400, "invalid_grant")
		// Another client cannot burn the code: its owner still redeems it.
		if resp := e.exchange(code); resp.StatusCode != 200 {
			t.Fatalf("owner's exchange after another client tried: %d %v", resp.StatusCode, decode(t, resp))
		}
	})
	t.Run("unknown code", func(t *testing.T) {
		wantOAuthError(t, e.exchange("nope"), 400, "invalid_grant")
		code := e.codeFor(t, p, e.stdAuth())
		grant, _, _ := strings.Cut(code, ".")
		wantOAuthError(t, e.exchange(grant+".nope"), 400, "invalid_grant")
		wantOAuthError(t, e.exchange("other."+strings.TrimPrefix(code, grant+".")), 400, "invalid_grant")
	})
	t.Run("50 concurrent exchanges, one success", func(t *testing.T) {
		code := e.codeFor(t, p, e.stdAuth())
		var mu sync.Mutex
		var wg sync.WaitGroup
		ok := 0
		for range 50 {
			wg.Go(func() {
				resp := e.exchange(code)
				mu.Lock()
				defer mu.Unlock()
				if resp.StatusCode == 200 {
					ok++
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("%d of 50 concurrent exchanges succeeded", ok)
		}
	})
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	code := e.codeFor(t, p, e.stdAuth("scope", "read write"))
	m := decode(t, e.exchange(code))
	rt1 := m["refresh_token"].(string)
	refresh := func(rt string, extra ...string) *http.Response {
		return e.post("/oauth/token", form(append([]string{"grant_type", "refresh_token", "refresh_token", rt}, extra...)...), []string{"webapp", "appsecret"})
	}

	resp := refresh(rt1, "scope", "read")
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %v", resp.StatusCode, decode(t, resp))
	}
	m2 := decode(t, resp)
	rt2 := m2["refresh_token"].(string)
	if rt2 == rt1 || m2["scope"] != "read" {
		t.Fatalf("refresh response %v", m2)
	}
	// The narrower refresh did not narrow the grant: write is still there.
	m3 := decode(t, refresh(rt2))
	rt3 := m3["refresh_token"].(string)
	if m3["scope"] != "read write" {
		t.Fatalf("scope after a narrow refresh: %v", m3["scope"])
	}
	wantOAuthError(t, refresh(rt3, "scope", "read admin"), 400, "invalid_scope")
	wantOAuthError(t, refresh(rt3+"x"), 400, "invalid_grant")
	wantOAuthError(t, e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", rt3, "client_id", "native"), nil), 400, "invalid_grant")

	// rt3 survived the failures above; reusing rt1 (rotated) revokes all.
	at3 := m3["access_token"].(string)
	if _, err := e.validator.Validate(at3, ""); err != nil {
		t.Fatal(err)
	}
	wantOAuthError(t, refresh(rt1), 400, "invalid_grant")
	wantOAuthError(t, refresh(rt3), 400, "invalid_grant")
	if _, err := e.validator.Validate(at3, ""); err == nil {
		t.Fatal("access token of a revoked grant still valid")
	}
}

// A client retrying a refresh whose answer it lost keeps its grant; if the
// "retry" was a thief's replay, the client's next refresh is the reuse that
// revokes everything.
func TestRefreshRetry(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	refresh := func(rt string) *http.Response {
		return e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", rt), []string{"webapp", "appsecret"})
	}
	rt1 := decode(t, e.exchange(e.codeFor(t, p, e.stdAuth())))["refresh_token"].(string)
	lost := decode(t, refresh(rt1))["refresh_token"].(string) // the answer never arrives
	resp := refresh(rt1)
	if resp.StatusCode != 200 {
		t.Fatalf("retry: %d %v", resp.StatusCode, decode(t, resp))
	}
	m := decode(t, resp)
	rt3, at3 := m["refresh_token"].(string), m["access_token"].(string)
	if rt3 == lost {
		t.Fatal("the retry got the lost refresh token again")
	}
	if resp := refresh(rt3); resp.StatusCode != 200 {
		t.Fatalf("the retry's refresh token: %d %v", resp.StatusCode, decode(t, resp))
	}

	// A replay of rt1 by someone else would have looked the same; then the
	// client's own token (here: lost) is a reuse and the grant falls.
	wantOAuthError(t, refresh(lost), 400, "invalid_grant")
	if _, err := e.validator.Validate(at3, ""); err == nil {
		t.Fatal("the grant survived the use of a retired refresh token")
	}
}

// A machine client (no redirect URI, no authorization_code grant) sent to
// the authorization endpoint is told what its configuration lacks, on a
// page: not that a redirect URI it cannot have is unregistered.
func TestAuthorizeMachineClientNamesTheGrant(t *testing.T) {
	e := newEnv(t)
	res, err := e.person().Get(e.authURL("response_type", "code", "client_id", "svc", "redirect_uri", "https://app.example.com/cb", "state", "xyz"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Redirect != nil || res.Page.Status != 400 {
		t.Fatalf("redirect %v, status %d", res.Redirect, res.Page.Status)
	}
	body := res.Page.Body
	if !strings.Contains(body, "not allowed the authorization_code grant") || !strings.Contains(body, "grant authorization_code and a redirect_uri") ||
		strings.Contains(body, "is not registered") {
		t.Fatalf("the page does not name the missing grant:\n%s", body)
	}
}
