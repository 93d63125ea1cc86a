package authserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/admin"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/internal/persontest"
)

// A person allows two applications, sees both on /account, removes one:
// its tokens stop working at once, its consent is forgotten, the other
// application keeps its access. On both stores: the grant index is theirs.
func TestAccountPage(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		e := newEnvWith(t, st, "ES256", func(c *authserver.Config) { c.ScopeDescriptions = map[string]string{"read": "See your droplets"} })
		p := e.person()
		web := decode(t, e.exchange(e.codeFor(t, p, e.stdAuth("scope", "read write"))))
		native := e.nativeTokens(t, p)

		page := e.account(t, p)
		checkPageHeaders(t, page.Header)
		for _, want := range []string{"Connected applications", "Mark E. Mark", "The Droplet Book", "dropletbook.com", "Native",
			"See your droplets", "<code>write</code>", "within the last minute", "username and password", "Remove access", "Sign out"} {
			if !strings.Contains(page.Body, want) {
				t.Errorf("the account page does not show %q:\n%s", want, page.Body)
			}
		}
		if strings.Contains(page.Body, "<script") {
			t.Error("the account page has a script")
		}

		// A form without this session's CSRF token removes nothing.
		forged := url.Values{"client_id": {"webapp"}, "action": {"remove"}, "csrf_token": {"forged"}}
		if status := postFrom(t, p, e.http.URL+"/account", forged, "192.0.2.1"); status != http.StatusForbidden {
			t.Fatalf("a forged removal answered %d, want 403", status)
		}
		if _, err := e.validator.Validate(web["access_token"].(string), ""); err != nil {
			t.Fatalf("a forged removal revoked the token: %v", err)
		}

		res, err := p.Post(e.http.URL+"/account", removal(t, page, "webapp"))
		if err != nil {
			t.Fatal(err)
		}
		after := res.Page
		if !strings.Contains(after.Body, "The Droplet Book no longer has access") || strings.Contains(after.Body, `value="webapp"`) || !strings.Contains(after.Body, "Native") {
			t.Fatalf("after removing The Droplet Book the page shows:\n%s", after.Body)
		}
		if _, err := e.validator.Validate(web["access_token"].(string), ""); err == nil {
			t.Fatal("the removed application's access token is still valid")
		}
		wantOAuthError(t, e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", web["refresh_token"].(string)), []string{"webapp", "appsecret"}), 400, "invalid_grant")
		if _, err := e.validator.Validate(native["access_token"].(string), ""); err != nil {
			t.Fatalf("the other application lost its access: %v", err)
		}
		// The consent is forgotten: the application must ask again.
		p.Pages = nil
		e.codeFor(t, p, e.stdAuth())
		if strings.Join(p.Pages, ",") != "consent" {
			t.Fatalf("after removal the application got in with %v, want the consent page", p.Pages)
		}

		// Signing out ends the session: the page asks to sign in again.
		signOut, err := after.FormTo("/logout")
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Post(signOut.Action, signOut.Fields)
		if err != nil || !strings.Contains(out.Page.Body, "You are signed out") {
			t.Fatalf("signing out: %v %+v", err, out)
		}
		again, err := p.Get(e.http.URL + "/account")
		if err != nil || !again.Page.Has("password") {
			t.Fatalf("after signing out /account shows %+v (%v), want the login page", again.Page, err)
		}
	})
}

// An admin lists a person's and a client's grants and revokes one; a
// grant that was never redeemed or was revoked is not listed.
func TestAdminGrants(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	web := decode(t, e.exchange(e.codeFor(t, p, e.stdAuth())))
	e.codeFor(t, p, e.stdAuth()) // a code never redeemed: no grant to list
	e.nativeTokens(t, p)
	admin := httptest.NewServer(e.srv.AdminHandler())
	t.Cleanup(admin.Close)
	list := func(query string) []map[string]any {
		t.Helper()
		resp, err := http.Get(admin.URL + "/oauth2/grants?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []map[string]any
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
			t.Fatalf("GET grants?%s: %d", query, resp.StatusCode)
		}
		return out
	}
	mine := list("subject=mark")
	if len(mine) != 2 || mine[0]["client_id"] != "native" || mine[1]["client_id"] != "webapp" || mine[1]["client_name"] != "The Droplet Book" ||
		mine[1]["login"] != "password" || mine[1]["scope"] != "read" {
		t.Fatalf("mark's grants: %v", mine)
	}
	byClient := list("client_id=webapp")
	if len(byClient) != 1 || byClient[0]["subject"] != "mark" {
		t.Fatalf("webapp's grants: %v", byClient)
	}
	for _, bad := range []string{"", "subject=mark&client_id=webapp", "subject=mark&limit=0", "subject=mark&limit=x"} {
		resp, _ := http.Get(admin.URL + "/oauth2/grants?" + bad)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("GET grants?%s: %d, want 400", bad, resp.StatusCode)
		}
	}
	revoke := func(body string) *http.Response {
		resp, err := http.Post(admin.URL+"/oauth2/revoke", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := revoke(`{"grant_id":"` + byClient[0]["grant_id"].(string) + `"}`); resp.StatusCode != 200 {
		t.Fatalf("revoking the grant: %d %v", resp.StatusCode, decode(t, resp))
	}
	if _, err := e.validator.Validate(web["access_token"].(string), ""); err == nil {
		t.Fatal("the revoked grant's access token is still valid")
	}
	if got := list("client_id=webapp"); len(got) != 0 {
		t.Fatalf("a revoked grant is still listed: %v", got)
	}
	if resp := revoke(`{"grant_id":"nope"}`); resp.StatusCode != 404 {
		t.Fatalf("revoking an unknown grant: %d", resp.StatusCode)
	}
	// Revoking a person hides their grants too.
	if resp := revoke(`{"subject":"mark"}`); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if got := list("subject=mark"); len(got) != 0 {
		t.Fatalf("a revoked person's grants are listed: %v", got)
	}
}

// nativeTokens runs the public native client's flow as p.
func (e *env) nativeTokens(t *testing.T, p *persontest.Person) map[string]any {
	t.Helper()
	back, err := p.Authorize(e.authURL("response_type", "code", "client_id", "native", "redirect_uri", "http://127.0.0.1:5000/callback",
		"scope", "read", "code_challenge", challenge(verifier), "code_challenge_method", "S256"))
	if err != nil {
		t.Fatal(err)
	}
	resp := e.post("/oauth/token", form("grant_type", "authorization_code", "code", back.Query().Get("code"), "client_id", "native",
		"redirect_uri", "http://127.0.0.1:5000/callback", "code_verifier", verifier), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("native exchange: %d %v", resp.StatusCode, decode(t, resp))
	}
	return decode(t, resp)
}

// account opens /account as p (signing in if asked) and returns the page.
func (e *env) account(t *testing.T, p *persontest.Person) *persontest.Page {
	t.Helper()
	res, err := p.Get(e.http.URL + "/account")
	if err != nil {
		t.Fatal(err)
	}
	if res.Page.Has("password") {
		f, err := res.Page.Form()
		if err != nil {
			t.Fatal(err)
		}
		f.Fields.Set("username", p.Username)
		f.Fields.Set("password", p.Password)
		if res, err = p.Post(f.Action, f.Fields); err != nil {
			t.Fatal(err)
		}
	}
	if res.Page == nil || res.Page.Status != 200 || !strings.Contains(res.Page.Body, "Connected applications") {
		t.Fatalf("/account: %+v", res)
	}
	return res.Page
}

// removal is the account page's "Remove access" form for client.
func removal(t *testing.T, page *persontest.Page, client string) url.Values {
	t.Helper()
	f, err := page.FormWith("client_id", client)
	if err != nil {
		t.Fatal(err)
	}
	f.Fields.Set("action", "remove")
	return f.Fields
}

// A person an earlier handler authenticated (basic_auth, forward_auth)
// sees their applications without the sign-in page; signing out tells
// them that sign-in is still in effect.
func TestAccountPageUpstreamUser(t *testing.T) {
	e := newEnv(t)
	e.codeFor(t, e.person(), e.stdAuth())
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	send := func(method, path string, form url.Values) string {
		t.Helper()
		req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Test-Upstream-User", "mark")
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d\n%s", method, path, resp.StatusCode, body)
		}
		return string(body)
	}
	page := send("GET", "/account", nil)
	if !strings.Contains(page, "Mark E. Mark") || strings.Contains(page, `name="password"`) {
		t.Fatalf("the account page for an upstream user:\n%s", page)
	}
	csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no CSRF token on the page")
	}
	if out := send("POST", "/logout", url.Values{"csrf_token": {csrf[1]}}); !strings.Contains(out, "its own sign-in, which is still in effect") {
		t.Fatalf("signing out an upstream user:\n%s", out)
	}
}

// A remembered consent is its grant's: however the grant ends (reuse of a
// refresh token, the person's tokens revoked, an admin revoking the grant,
// grant_max_age), the next authorization asks the person again. While
// the grant lives, it does not.
func TestConsentEndsWithItsGrant(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		e := newEnvWith(t, st, "ES256", func(c *authserver.Config) { c.RefreshRetryGrace = -1; c.GrantMaxAge = 3 * time.Second })
		asked := func(p *persontest.Person) bool {
			t.Helper()
			p.Pages = nil
			e.codeFor(t, p, e.stdAuth())
			return slices.Contains(p.Pages, "consent")
		}
		grant := func(p *persontest.Person) map[string]any {
			t.Helper()
			tok := decode(t, e.exchange(e.codeFor(t, p, e.stdAuth())))
			if asked(p) {
				t.Fatal("asked again while the grant lives")
			}
			return tok
		}
		for name, end := range map[string]func(tok map[string]any){
			"refresh token reused": func(tok map[string]any) {
				rt := tok["refresh_token"].(string)
				e.refresh(rt)
				wantOAuthError(t, e.refresh(rt), 400, "invalid_grant")
			},
			"the person's tokens revoked": func(map[string]any) {
				if _, err := e.srv.Admin().Revoke(t.Context(), &admin.Revocation{Subject: "mark"}); err != nil {
					t.Fatal(err)
				}
			},
			"the grant revoked by an admin": func(map[string]any) {
				grants, err := e.srv.Admin().Grants(t.Context(), store.GrantQuery{Subject: "mark"})
				if err != nil || len(grants) == 0 {
					t.Fatalf("grants %v %v", grants, err)
				}
				for _, g := range grants {
					if err := e.srv.Admin().RevokeGrant(t.Context(), g.ID, "test"); err != nil {
						t.Fatal(err)
					}
				}
			},
			"grant_max_age passed": func(map[string]any) { time.Sleep(3100 * time.Millisecond) },
		} {
			p := e.person()
			time.Sleep(10 * time.Millisecond) // a subject revocation cuts off what came before it
			end(grant(p))
			if !asked(p) {
				t.Errorf("%s: the application got a code without asking", name)
			}
		}
	})
}

// Sent to sign in by /account, with no application asking, a person is
// told why.
func TestAccountSignInSaysWhy(t *testing.T) {
	e := newEnv(t)
	res, err := e.person().Get(e.http.URL + "/account")
	if err != nil {
		t.Fatal(err)
	}
	if res.Page == nil || !res.Page.Has("password") || !strings.Contains(res.Page.Body, "Sign in to see the applications you have allowed") {
		t.Fatalf("the sign-in page for /account does not say why:\n%+v", res.Page)
	}
	// An application's sign-in names the application instead.
	res, err = e.person().Get(e.stdAuth())
	if err != nil {
		t.Fatal(err)
	}
	if res.Page == nil || strings.Contains(res.Page.Body, "Sign in to see the applications") {
		t.Fatalf("an application's sign-in says the account page's reason:\n%+v", res.Page)
	}
}
