package authserver_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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
