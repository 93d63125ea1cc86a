package authserver_test

import (
	"testing"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/internal/issuertest"
)

// A federated client authenticates with its workload's token (another
// issuer's, keys through that issuer's discovery): sub and aud exact, jti
// used once; anything else is invalid_client.
func TestFederatedClient(t *testing.T) {
	workloads := issuertest.New(t)
	const sub = "repo:acme/app:ref:refs/heads/main"
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.Clients = append(c.Clients, &client.Client{ID: "ci-deploy", Name: "CI", GrantTypes: []string{client.GrantClientCredentials},
			Scopes: []string{"deploy"}, Federated: &client.Federation{Issuer: workloads.URL, Subject: sub}})
	})
	assert := func(claims map[string]any) []string {
		return []string{"grant_type", "client_credentials", "client_id", "ci-deploy", "client_assertion_type", client.AssertionType,
			"client_assertion", workloads.Token(t, "JWT", claims)}
	}
	m := decode(t, e.post("/oauth/token", set(assert(map[string]any{"sub": sub, "aud": []string{issuer}, "jti": "run-1"})...), nil))
	tok, _ := m["access_token"].(string)
	if c, err := e.validator.Validate(tok, ""); err != nil || c.Subject != "ci-deploy" || c.Scope != "deploy" {
		t.Fatalf("the workload's token: %v %v", m, err)
	}
	for name, claims := range map[string]map[string]any{
		"used before":      {"sub": sub, "aud": []string{issuer}, "jti": "run-1"},
		"another workload": {"sub": "repo:acme/app:ref:refs/heads/feature", "aud": []string{issuer}, "jti": "run-2"},
		"another audience": {"sub": sub, "aud": []string{"https://other.example.com"}, "jti": "run-3"},
		"expired":          {"sub": sub, "aud": []string{issuer}, "jti": "run-4", "exp": 1},
	} {
		t.Run(name, func(t *testing.T) {
			wantOAuthError(t, e.post("/oauth/token", set(assert(claims)...), nil), 401, "invalid_client")
		})
	}
	// Signed by another key than the workload issuer's: refused.
	other := issuertest.New(t)
	forged := []string{"grant_type", "client_credentials", "client_id", "ci-deploy", "client_assertion_type", client.AssertionType,
		"client_assertion", other.Token(t, "JWT", map[string]any{"iss": workloads.URL, "sub": sub, "aud": []string{issuer}, "jti": "run-5"})}
	wantOAuthError(t, e.post("/oauth/token", set(forged...), nil), 401, "invalid_client")
}
