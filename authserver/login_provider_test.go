package authserver_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/web"
	"github.com/tokengate/tokengate/internal/persontest"
	"github.com/tokengate/tokengate/login"
)

func corpProvider(t *testing.T, name string) *login.Provider {
	t.Helper()
	p, err := login.New(login.Config{Name: name, Issuer: "https://sso.example.com", ClientID: "gate", ClientSecret: "s",
		RedirectURI: web.ProviderRedirectURI(issuer, name)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A provider's people are <name>:<username>: no configured client or user
// may take that prefix, and a name that reads as a URL scheme is refused.
func TestLoginProviderSubjectsCannotCollide(t *testing.T) {
	for name, cfg := range map[string]authserver.Config{
		"a user with the prefix": {Users: []*web.User{{Username: "corp:mark", PasswordHash: bcryptHash(t, "x")}},
			LoginProviders: []*login.Provider{corpProvider(t, "corp")}},
		"a client with the prefix": {Clients: []*client.Client{{ID: "corp:app", Name: "a", Public: true, GrantTypes: []string{client.GrantDeviceCode}}},
			LoginProviders: []*login.Provider{corpProvider(t, "corp")}},
		"a URL scheme":  {LoginProviders: []*login.Provider{corpProvider(t, "https")}},
		"defined twice": {LoginProviders: []*login.Provider{corpProvider(t, "corp"), corpProvider(t, "corp")}},
	} {
		cfg.Issuer, cfg.Store = issuer, openStore(t)
		if _, err := authserver.New(t.Context(), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// With providers and no users, the login page has a button per provider
// and no password form; with users, both.
func TestLoginPageWithProviders(t *testing.T) {
	for _, withUsers := range []bool{false, true} {
		e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
			c.LoginProviders = []*login.Provider{corpProvider(t, "corp")}
			if !withUsers {
				c.Users = nil
			}
		})
		res, err := e.person().Get(e.stdAuth())
		if err != nil || res.Page == nil {
			t.Fatalf("login page: %v %+v", err, res)
		}
		body := res.Page.Body
		if !strings.Contains(body, `href="/login/corp?return_to=%2Foauth%2Fauthorize%3F`) || !strings.Contains(body, "Sign in with corp") {
			t.Errorf("users %v: no provider button:\n%s", withUsers, body)
		}
		if strings.Contains(body, `name="password"`) != withUsers {
			t.Errorf("users %v: password form shown %v", withUsers, !withUsers)
		}
	}
}

// A provider that went down, its discovery long cached: the sign-in
// button gives this server's page with a way back, not the browser's
// error at the provider's address. While its calls say it is up, no probe
// is made; once they are old, one probe decides.
func TestLoginProviderDownAfterDiscovery(t *testing.T) {
	var authHits atomic.Int64
	var failing atomic.Bool
	op := httptest.NewServer(nil)
	op.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"jwks_uri":%q}`, op.URL, op.URL+"/auth", op.URL+"/token", op.URL+"/jwks")
		case "/auth":
			authHits.Add(1)
			if failing.Load() {
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
				return
			}
			http.Error(w, "missing parameters", http.StatusBadRequest) // up: it answers
		}
	})
	defer op.Close()
	const probeAfter = 200 * time.Millisecond
	p, err := login.New(login.Config{Name: "corp", DisplayName: "Corp SSO", Issuer: op.URL, ClientID: "gate", ClientSecret: "s",
		RedirectURI: web.ProviderRedirectURI(issuer, "corp"), ProbeAfter: probeAfter})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) { c.LoginProviders = []*login.Provider{p} })
	returnTo := strings.TrimPrefix(e.stdAuth(), e.http.URL)
	start := func() *persontest.Result {
		t.Helper()
		res, err := e.person().Get(e.http.URL + "/login/corp?" + url.Values{"return_to": {returnTo}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	sentToProvider := func(res *persontest.Result) bool {
		return res.Redirect != nil && strings.HasPrefix(res.Redirect.String(), op.URL+"/auth?")
	}

	// Discovery just answered: no probe for the next sign-ins.
	for range 3 {
		if res := start(); !sentToProvider(res) {
			t.Fatalf("the provider up: %+v", res.Page)
		}
	}
	if n := authHits.Load(); n != 0 {
		t.Fatalf("%d probes while the provider's latest call said it was up", n)
	}
	// Later, a probe: up, so on to the provider.
	time.Sleep(probeAfter + 50*time.Millisecond)
	if res := start(); !sentToProvider(res) || authHits.Load() != 1 {
		t.Fatalf("after a quiet while: %d probes, %+v", authHits.Load(), res)
	}

	// The provider fails; the cached discovery must not send anyone there.
	failing.Store(true)
	time.Sleep(probeAfter + 50*time.Millisecond)
	back := "/login?" + url.Values{"return_to": {returnTo}}.Encode()
	for _, down := range []func(){func() {}, op.Close} {
		down()
		time.Sleep(probeAfter + 50*time.Millisecond)
		res := start()
		if sentToProvider(res) || res.Page == nil || res.Page.Status != http.StatusServiceUnavailable ||
			!strings.Contains(res.Page.Body, "Corp SSO cannot be reached") || !strings.Contains(res.Page.Body, `href="`+html.EscapeString(back)+`"`) {
			t.Fatalf("the provider down: %+v", res)
		}
		// Its failure is remembered: the next sign-in gets the page at once.
		hits := authHits.Load()
		if res := start(); res.Page == nil || res.Page.Status != http.StatusServiceUnavailable || authHits.Load() != hits {
			t.Fatalf("right after a failed probe: %d more probes, %+v", authHits.Load()-hits, res)
		}
	}
}
