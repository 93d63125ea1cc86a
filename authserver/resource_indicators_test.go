package authserver_test

import (
	"strings"
	"testing"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/internal/persontest"
)

const mcpResource = "https://mcp.example.com/mcp"

func newResourceEnv(t *testing.T) *env {
	t.Helper()
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.Resources = map[string][]string{mcpResource: {"read"}}
	})
	if err := e.srv.AddResource("https://other.example.com", "Other", nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) audOf(t *testing.T, tok string) string {
	t.Helper()
	c, err := e.validator.Validate(tok)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(c.Audience, " ")
}

// A named resource is the token's only audience, through the code, the
// refresh tokens and a retry; the grant keeps it.
func TestResourceIndicatorCodeAndRefresh(t *testing.T) {
	e := newResourceEnv(t)
	code := e.codeFor(t, e.person(), e.stdAuth("resource", mcpResource))
	m := decode(t, e.exchange(code))
	if got := e.audOf(t, m["access_token"].(string)); got != mcpResource {
		t.Fatalf("aud %q, want %s", got, mcpResource)
	}
	rt := m["refresh_token"].(string)
	// Another resource on refresh: refused, and the refresh token is not spent.
	wantOAuthError(t, e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", rt, "resource", "https://other.example.com"),
		[]string{"webapp", "appsecret"}), 400, "invalid_target")
	resp := e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", rt, "resource", mcpResource), []string{"webapp", "appsecret"})
	if resp.StatusCode != 200 {
		t.Fatalf("refresh naming the grant's resource: %d %v", resp.StatusCode, decode(t, resp))
	}
	m = decode(t, resp)
	if got := e.audOf(t, m["access_token"].(string)); got != mcpResource {
		t.Fatalf("aud after refresh %q", got)
	}
	resp = e.refresh(m["refresh_token"].(string))
	if got := e.audOf(t, decode(t, resp)["access_token"].(string)); got != mcpResource {
		t.Fatalf("aud after a refresh without resource %q", got)
	}
	// The code exchange may repeat the resource, not name another.
	code = e.codeFor(t, e.person(), e.stdAuth("resource", mcpResource))
	wantOAuthError(t, e.exchange(code, "resource", "https://other.example.com"), 400, "invalid_target")
}

// Unknown or malformed resources are invalid_target: at the authorization
// endpoint by redirect, at the token and device endpoints as JSON.
func TestResourceIndicatorRefused(t *testing.T) {
	e := newResourceEnv(t)
	for _, bad := range []string{"https://unknown.example.com/", "not a url", "https://mcp.example.com/mcp?x=1"} {
		res, err := persontest.New("mark", markPassword).Get(e.stdAuth("resource", bad))
		if err != nil {
			t.Fatal(err)
		}
		if res.Redirect == nil || res.Redirect.Query().Get("error") != "invalid_target" || res.Redirect.Query().Get("state") != "xyz" {
			t.Errorf("authorize with resource %q: %v", bad, res.Redirect)
		}
		wantOAuthError(t, e.post("/oauth/token", form("grant_type", "client_credentials", "resource", bad), []string{"svc", "s3cret"}), 400, "invalid_target")
		wantOAuthError(t, e.post("/oauth/device", form("client_id", "tv", "resource", bad), nil), 400, "invalid_target")
	}
	// client_credentials and the device grant take a known one.
	m := decode(t, e.post("/oauth/token", form("grant_type", "client_credentials", "resource", mcpResource), []string{"svc", "s3cret"}))
	if got := e.audOf(t, m["access_token"].(string)); got != mcpResource {
		t.Fatalf("client_credentials aud %q", got)
	}
	// Without resource, aud is as before: the client's audience.
	if got := e.audOf(t, issue(t, e)); got != "https://api.example.com" {
		t.Fatalf("aud without resource %q", got)
	}
}

func TestResourceIndicatorDevice(t *testing.T) {
	e := newResourceEnv(t)
	m := e.startDevice(t, nil, "resource", mcpResource)
	p := e.person()
	if _, err := p.Device(e.http.URL + "/device?user_code=" + m["user_code"].(string)); err != nil {
		t.Fatal(err)
	}
	resp := e.post("/oauth/token", form("grant_type", client.GrantDeviceCode, "device_code", m["device_code"].(string), "client_id", "tv"), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("poll: %d %v", resp.StatusCode, decode(t, resp))
	}
	if got := e.audOf(t, decode(t, resp)["access_token"].(string)); got != mcpResource {
		t.Fatalf("device aud %q", got)
	}
}

// The sign-in and consent pages say which API the access is for: its
// resource_name and URL.
func TestPagesNameTheResource(t *testing.T) {
	e := newResourceEnv(t)
	p := e.person()
	res, err := p.Get(e.stdAuth("resource", "https://other.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	const shown = "at <strong>Other</strong> (<code>https://other.example.com</code>)"
	if res.Page == nil || !strings.Contains(res.Page.Body, shown) {
		t.Fatalf("sign-in page without the resource:\n%v", res.Page)
	}
	login, err := res.Page.Form()
	if err != nil {
		t.Fatal(err)
	}
	login.Fields.Set("username", "mark")
	login.Fields.Set("password", markPassword)
	if res, err = p.Post(login.Action, login.Fields); err != nil || res.Page == nil {
		t.Fatalf("after sign-in: %v %+v", err, res)
	}
	if !strings.Contains(res.Page.Body, shown) {
		t.Fatalf("consent page without the resource:\n%s", res.Page.Body)
	}
	// A resource without a name shows its URL.
	res, _ = e.person().Get(e.stdAuth("resource", mcpResource))
	if res.Page == nil || !strings.Contains(res.Page.Body, "at <code>"+mcpResource+"</code>") {
		t.Fatalf("sign-in page for an unnamed resource:\n%v", res.Page)
	}
}
