package authserver_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/admin"
)

// The authorization endpoint takes POST (form body) as well as GET.
func TestAuthorizeByPost(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	u, _ := url.Parse(e.stdAuth())
	res, err := p.Post(e.http.URL+"/oauth/authorize", u.Query())
	if err != nil {
		t.Fatal(err)
	}
	back, err := p.Continue(res)
	if err != nil {
		t.Fatal(err)
	}
	if back.Query().Get("code") == "" {
		t.Fatalf("callback %s", back)
	}
}

// Failed logins are limited per client IP too, across usernames.
func TestLoginRateLimitPerIP(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	res, _ := p.Get(e.stdAuth())
	form, _ := res.Page.Form()
	post := func(user, ip string) int {
		form.Fields.Set("username", user)
		form.Fields.Set("password", "guess")
		return postFrom(t, p, form.Action, form.Fields, ip)
	}
	for i := range 20 {
		if code := post(fmt.Sprint("user", i), "192.0.2.1"); code != 401 {
			t.Fatalf("attempt %d: %d", i+1, code)
		}
	}
	if code := post("user-new", "192.0.2.1"); code != 429 {
		t.Fatalf("21st attempt from one IP: %d, want 429", code)
	}
	if code := post("user-new", "192.0.2.2"); code != 401 {
		t.Fatalf("another IP is limited too: %d", code)
	}
}

// Codes live code_ttl; refresh tokens refresh_token_ttl.
func TestCodeAndRefreshExpiry(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.CodeTTL, c.RefreshTokenTTL = 200*time.Millisecond, 400*time.Millisecond
	})
	p := e.person()
	code := e.codeFor(t, p, e.stdAuth())
	time.Sleep(300 * time.Millisecond)
	wantOAuthError(t, e.exchange(code), 400, "invalid_grant")

	m := decode(t, e.exchange(e.codeFor(t, p, e.stdAuth())))
	time.Sleep(500 * time.Millisecond)
	wantOAuthError(t, e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", m["refresh_token"].(string)),
		[]string{"webapp", "appsecret"}), 400, "invalid_grant")
}

// Operators can replace a page with their own template.
func TestTemplateOverride(t *testing.T) {
	dir := t.TempDir()
	custom := `{{template "header" .}}<h1>ACME sign-in for {{.Client.Name}}</h1>
<form method="post" action="{{.Action}}">{{template "hidden" .}}<input name="username"><input name="password" type="password"></form>{{template "footer" .}}`
	if err := os.WriteFile(filepath.Join(dir, "login.html"), []byte(custom), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "style.css"), []byte("body{color:red}"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) { c.TemplateDir = dir })
	p := e.person()
	res, err := p.Get(e.stdAuth())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Page.Body, "ACME sign-in for The Droplet Book") {
		t.Fatalf("custom login page not used:\n%s", res.Page.Body)
	}
	// The flow still works with it, and the consent page is the built-in one.
	back, err := p.Continue(res)
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("flow with a custom login page: %v %v", err, back)
	}
	resp, err := http.Get(e.http.URL + "/oauth/assets/style.css")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, _ := resp.Body.Read(buf)
	if string(buf[:n]) != "body{color:red}" {
		t.Fatalf("stylesheet %q", buf[:n])
	}

	// A broken template stops start-up with a message naming it.
	if err := os.WriteFile(filepath.Join(dir, "consent.html"), []byte(`{{template "nope" .}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = authserver.New(t.Context(), authserver.Config{Issuer: issuer, Store: openStore(t), TemplateDir: dir})
	if err == nil || !strings.Contains(err.Error(), "consent.html") {
		t.Fatalf("broken template: %v", err)
	}
}

// Revoking a refresh token (RFC 7009) revokes its grant, access tokens
// included; cutting off a client or user kills their refresh tokens too.
func TestRevokeRefreshTokenAndCutoffs(t *testing.T) {
	e := newEnv(t)
	p := e.person()
	grant := func() (at, rt string) {
		m := decode(t, e.exchange(e.codeFor(t, p, e.stdAuth())))
		return m["access_token"].(string), m["refresh_token"].(string)
	}
	refresh := func(rt string) *http.Response {
		return e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", rt), []string{"webapp", "appsecret"})
	}

	at, rt := grant()
	// Another client cannot revoke it.
	if resp := e.post("/oauth/revoke", form("token", rt), []string{"firstparty", "fpsecret"}); resp.StatusCode != 200 {
		t.Fatalf("revoke by another client: %d", resp.StatusCode)
	}
	if _, err := e.validator.Validate(at, ""); err != nil {
		t.Fatal("another client's revocation took effect")
	}
	if resp := e.post("/oauth/revoke", form("token", rt, "token_type_hint", "access_token"), []string{"webapp", "appsecret"}); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if _, err := e.validator.Validate(at, ""); err == nil {
		t.Fatal("the grant's access token survived revoking its refresh token")
	}
	wantOAuthError(t, refresh(rt), 400, "invalid_grant")

	for _, cut := range []func() error{
		func() error {
			_, err := e.srv.Admin().Revoke(t.Context(), &admin.Revocation{ClientID: "webapp"})
			return err
		},
		func() error {
			_, err := e.srv.Admin().Revoke(t.Context(), &admin.Revocation{Subject: "mark"})
			return err
		},
	} {
		_, rt := grant()
		if err := cut(); err != nil {
			t.Fatal(err)
		}
		wantOAuthError(t, refresh(rt), 400, "invalid_grant")
		time.Sleep(1100 * time.Millisecond) // the next grant is issued after the cut-off
	}
	_, rt = grant()
	if resp := refresh(rt); resp.StatusCode != 200 {
		t.Fatalf("a grant made after the cut-offs: %d", resp.StatusCode)
	}
}

// Only failures count toward the sign-in limit: a person who signs in
// often is never locked out.
func TestSuccessfulLoginsDoNotCount(t *testing.T) {
	e := newEnv(t)
	for i := range 8 {
		p := e.person()
		if _, err := p.Authorize(e.stdAuth()); err != nil {
			t.Fatalf("sign-in %d: %v", i+1, err)
		}
	}
}
