package authserver_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/tokengate/authserver"
)

// noFollow is a client that shows redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Script and file URIs are no place to send a code, nor are private-use
// schemes that are nobody's reverse domain name (RFC 8252 §7.1).
func TestDangerousRedirectURIsRefused(t *testing.T) {
	for _, uri := range []string{"javascript:alert(document.domain)//", "JavaScript://x/%0aalert(1)", "data:text/html,<script>x</script>",
		"vbscript:msgbox", "file:///etc/passwd", "myapp:/callback", "about:blank"} {
		c := &authserver.Client{ID: "evil", GrantTypes: []string{authserver.GrantAuthorizationCode}, Public: true, RedirectURIs: []string{uri}}
		err := authserver.ValidateClient(c)
		if err == nil || !strings.Contains(err.Error(), "client evil: redirect_uri") {
			t.Errorf("%s: %v", uri, err)
		}
	}
	e := newEnv(t)
	_, err := e.srv.RegisterClient(t.Context(), &authserver.Registration{Name: "Evil", GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"javascript:alert(1)//"}, Public: true})
	var ae *authserver.Error
	if err == nil || !errors.As(err, &ae) || ae.Code != "invalid_request" {
		t.Fatalf("admin registration of a javascript: URI: %v", err)
	}
}

// The redirect back to the client has a Location and nothing else: no HTML
// link a browser could show for it.
func TestRedirectHasNoBody(t *testing.T) {
	e := newEnv(t)
	resp, err := noFollow.Get(e.authURL("response_type", "token", "client_id", "webapp", "redirect_uri", "https://app.example.com/cb", "state", "xyz"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://app.example.com/cb?") {
		t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(body) != 0 {
		t.Fatalf("redirect body %q, want none", body)
	}
}

// Client IDs and usernames are one namespace: a client's tokens carry its
// ID as sub.
func TestClientIDCannotBeAUsername(t *testing.T) {
	clients := []*authserver.Client{{ID: "alice", SecretHash: authserver.HashSecretSHA256("x"), GrantTypes: []string{authserver.GrantClientCredentials}}}
	users := []*authserver.User{{Username: "alice", PasswordHash: bcryptHash(t, "pw")}}
	err := authserver.ValidateClientsAndUsers(clients, users)
	if err == nil || !strings.Contains(err.Error(), "client alice has the same name as user alice") {
		t.Fatalf("clash: %v", err)
	}
	// A registered client of that name makes the configuration's user clash.
	st := openStore(t)
	if err := st.PutClient(t.Context(), &authserver.Client{ID: "mark", Name: "m", SecretHash: authserver.HashSecretSHA256("x"),
		GrantTypes: []string{authserver.GrantClientCredentials}}); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, st, "ES256")
	if err := e.srv.CheckRegisteredClients(t.Context()); err == nil || !strings.Contains(err.Error(), "user mark has the same name as registered client mark") {
		t.Fatalf("registered clash: %v", err)
	}
}

func (e *env) refresh(rt string) *http.Response {
	return e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", rt), []string{"webapp", "appsecret"})
}

// refresh_retry_grace off: any second use of a refresh token is reuse.
func TestRefreshRetryGraceOff(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) { c.RefreshRetryGrace = -1 })
	rt := decode(t, e.exchange(e.codeFor(t, e.person(), e.stdAuth())))["refresh_token"].(string)
	if resp := e.refresh(rt); resp.StatusCode != 200 {
		t.Fatalf("refresh: %d", resp.StatusCode)
	}
	wantOAuthError(t, e.refresh(rt), 400, "invalid_grant")
}

// A grant ends grant_max_age after the person signed in, however often it
// is refreshed.
func TestGrantMaxAge(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) { c.GrantMaxAge = 2 * time.Second })
	rt := decode(t, e.exchange(e.codeFor(t, e.person(), e.stdAuth())))["refresh_token"].(string)
	resp := e.refresh(rt)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh within the age: %d", resp.StatusCode)
	}
	rt = decode(t, resp)["refresh_token"].(string)
	time.Sleep(2100 * time.Millisecond)
	wantOAuthError(t, e.refresh(rt), 400, "invalid_grant")
}

// postFromIP posts a form to path from client address ip, authenticating
// with Basic [id, secret].
func (e *env) postFromIP(path string, f url.Values, ip, id, secret string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Test-Client-IP", ip)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return e.do(req)
}

// Wrong secrets from one address lock out that address only: the client
// itself, calling from its own, is never refused.
func TestClientLockoutIsPerAddress(t *testing.T) {
	e := newEnv(t)
	cc := form("grant_type", "client_credentials")
	for range 25 {
		e.postFromIP("/oauth/token", cc, "203.0.113.66", "svc", "guess").Body.Close()
	}
	wantOAuthError(t, e.postFromIP("/oauth/token", cc, "203.0.113.66", "svc", "s3cret"), 401, "invalid_client")
	resp := e.postFromIP("/oauth/token", cc, "192.0.2.10", "svc", "s3cret")
	if resp.StatusCode != 200 {
		t.Fatalf("the client's own address was locked out by an attacker's: %d %v", resp.StatusCode, decode(t, resp))
	}
	tok := decode(t, resp)["access_token"].(string)
	for _, path := range []string{"/oauth/introspect", "/oauth/revoke"} {
		if resp := e.postFromIP(path, form("token", tok), "192.0.2.10", "svc", "s3cret"); resp.StatusCode != 200 {
			t.Errorf("%s from the client's address: %d", path, resp.StatusCode)
		}
	}
	// A /64 is one address: an attacker cannot step through its 2^64.
	for i := range 25 {
		e.postFromIP("/oauth/token", cc, fmt.Sprintf("2001:db8:1:2::%x", i+1), "svc", "guess").Body.Close()
	}
	wantOAuthError(t, e.postFromIP("/oauth/token", cc, "2001:db8:1:2::ffff", "svc", "s3cret"), 401, "invalid_client")
	if resp := e.postFromIP("/oauth/token", cc, "2001:db8:1:3::1", "svc", "s3cret"); resp.StatusCode != 200 {
		t.Fatalf("another /64: %d", resp.StatusCode)
	}
}

// Generated secrets cannot be guessed, so they are never locked.
func TestGeneratedSecretsNeverLock(t *testing.T) {
	e := newEnv(t)
	ci, err := e.srv.RegisterClient(t.Context(), &authserver.Registration{Name: "Gen", GrantTypes: []string{"client_credentials"}, Scope: "read"})
	if err != nil {
		t.Fatal(err)
	}
	cc := form("grant_type", "client_credentials")
	for range 25 {
		e.postFromIP("/oauth/token", cc, "203.0.113.66", ci.ID, "guess").Body.Close()
	}
	if resp := e.postFromIP("/oauth/token", cc, "203.0.113.66", ci.ID, ci.Secret); resp.StatusCode != 200 {
		t.Fatalf("a generated secret after failures: %d", resp.StatusCode)
	}
}

// A cold secret_hash client under 32 concurrent token requests pays one
// bcrypt (at cost 12, a few hundred milliseconds of CPU), not 32.
func TestColdSecretHashPaysOneBcrypt(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("s3cret"), 12)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.Clients = []*authserver.Client{{ID: "svc", Name: "Service", SecretHash: string(h), GrantTypes: []string{authserver.GrantClientCredentials}, Scopes: []string{"read"}}}
	})
	var wg sync.WaitGroup
	codes := make([]int, 32)
	for i := range codes {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("svc", "s3cret")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if n := authserver.BcryptRuns(e.srv); n != 1 {
		t.Fatalf("32 cold requests ran %d bcrypts, want 1", n)
	}
}
