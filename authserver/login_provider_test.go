package authserver_test

import (
	"strings"
	"testing"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/login"
)

func corpProvider(t *testing.T, name string) *login.Provider {
	t.Helper()
	p, err := login.New(login.Config{Name: name, Issuer: "https://sso.example.com", ClientID: "gate", ClientSecret: "s",
		RedirectURI: authserver.ProviderRedirectURI(issuer, name)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A provider's people are <name>:<username>: no configured client or user
// may take that prefix, and a name that reads as a URL scheme is refused.
func TestLoginProviderSubjectsCannotCollide(t *testing.T) {
	for name, cfg := range map[string]authserver.Config{
		"a user with the prefix": {Users: []*authserver.User{{Username: "corp:mark", PasswordHash: bcryptHash(t, "x")}},
			LoginProviders: []*login.Provider{corpProvider(t, "corp")}},
		"a client with the prefix": {Clients: []*authserver.Client{{ID: "corp:app", Name: "a", Public: true, GrantTypes: []string{authserver.GrantDeviceCode}}},
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
