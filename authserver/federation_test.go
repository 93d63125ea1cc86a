package authserver_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/internal/issuertest"
	"github.com/tokengate/tokengate/login"
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

// The jwt-bearer grant's two uses: a federated client's workload token as
// the grant itself (client_id and the assertion, no other authentication),
// and an enterprise IdP's identity assertion (ID-JAG) for one of its
// people, recorded as a grant, used once.
func TestJWTBearerGrant(t *testing.T) {
	idp := issuertest.New(t)
	corp, err := login.New(login.Config{Name: "corp", Issuer: idp.URL, ClientID: "tokengate", ClientSecret: "x", IDJAG: true})
	if err != nil {
		t.Fatal(err)
	}
	const sub = "system:serviceaccount:ci:deployer"
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.LoginProviders = []*login.Provider{corp}
		c.Clients = append(c.Clients,
			&client.Client{ID: "wif", Name: "Workload", GrantTypes: []string{client.GrantJWTBearer}, Scopes: []string{"deploy"},
				Federated: &client.Federation{Issuer: idp.URL, Subject: sub}},
			&client.Client{ID: "mcp-agent", Name: "Agent", SecretHash: client.HashSecretSHA256("agent-secret"), GrantTypes: []string{client.GrantJWTBearer},
				Scopes: []string{"read", "write"}})
	})
	const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// The workload's own token as the grant.
	m := decode(t, e.post("/oauth/token", set("grant_type", jwtBearer, "client_id", "wif",
		"assertion", idp.Token(t, "JWT", map[string]any{"sub": sub, "aud": []string{issuer}, "jti": "w-1"})), nil))
	if c, err := e.validator.Validate(m["access_token"].(string), ""); err != nil || c.Subject != "wif" || c.Scope != "deploy" {
		t.Fatalf("the workload's grant: %v %v", m, err)
	}
	wantOAuthError(t, e.post("/oauth/token", set("grant_type", jwtBearer, "client_id", "wif",
		"assertion", idp.Token(t, "JWT", map[string]any{"sub": "another", "aud": []string{issuer}, "jti": "w-2"})), nil), 400, "invalid_grant")

	// An ID-JAG for alice, for the agent.
	now := time.Now()
	jag := func(claims map[string]any) string {
		base := map[string]any{"sub": "alice", "aud": []string{issuer}, "client_id": "mcp-agent", "scope": "read", "jti": "j-" + oauthRandom(t),
			"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix()}
		for k, v := range claims {
			base[k] = v
		}
		return idp.Token(t, "oauth-id-jag+jwt", base)
	}
	good := jag(nil)
	grant := func(assertion string, kv ...string) *http.Response {
		return e.post("/oauth/token", set(append([]string{"grant_type", jwtBearer, "assertion", assertion}, kv...)...), []string{"mcp-agent", "agent-secret"})
	}
	m = decode(t, grant(good))
	at, _ := m["access_token"].(string)
	c, err := e.validator.Validate(at, "")
	if err != nil || c.Subject != "corp:alice" || c.Scope != "read" || c.ClientID != "mcp-agent" || m["refresh_token"] != nil {
		t.Fatalf("the ID-JAG's token: %v %+v %v", m, c, err)
	}
	grants, err := e.srv.Admin().Grants(t.Context(), store.GrantQuery{Subject: "corp:alice"})
	if err != nil || len(grants) != 1 || grants[0].Login != "corp" || grants[0].Via != store.ViaIDJAG {
		t.Fatalf("the grant recorded: %+v %v", grants, err)
	}
	for name, c := range map[string]struct {
		assertion string
		kv        []string
		code      string
	}{
		"used before":            {good, nil, "invalid_grant"},
		"another client's":       {jag(map[string]any{"client_id": "someone-else"}), nil, "invalid_grant"},
		"for another issuer":     {jag(map[string]any{"aud": []string{"https://other.example.com"}}), nil, "invalid_grant"},
		"living too long":        {jag(map[string]any{"exp": now.Add(time.Hour).Unix()}), nil, "invalid_grant"},
		"an ID token, not a JAG": {idp.Token(t, "JWT", map[string]any{"sub": "alice", "aud": []string{issuer}, "client_id": "mcp-agent"}), nil, "invalid_grant"},
		"a scope not granted":    {jag(nil), []string{"scope", "write"}, "invalid_scope"},
		"a resource not here":    {jag(map[string]any{"resource": "https://elsewhere.example.com/mcp"}), nil, "invalid_target"},
	} {
		t.Run(name, func(t *testing.T) { wantOAuthError(t, grant(c.assertion, c.kv...), 400, c.code) })
	}
}

// tokengate as the enterprise's identity provider (draft-ietf-oauth-
// identity-assertion-authz-grant §4.3): an agent that signed mark in
// exchanges his ID token for an ID-JAG for another authorization server,
// itself a tokengate with this one as its id_jag login provider, which
// takes it (RFC 7523) as a sign-in through the provider would be.
func TestIDJAGIssuedForAnotherAuthorizationServer(t *testing.T) {
	const (
		typeIDToken = "urn:ietf:params:oauth:token-type:id_token"
		typeIDJAG   = "urn:ietf:params:oauth:token-type:id-jag"
		jwtBearer   = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	)
	idp := newOIDCEnv(t, openStore(t), func(c *authserver.Config) {
		for _, cl := range c.Clients {
			if cl.ID == "rp" {
				cl.GrantTypes = append(cl.GrantTypes, client.GrantTokenExchange)
				cl.Exchange = []client.ExchangeTarget{{Resource: issuer, Scopes: []string{"read", "write"}}}
			}
		}
	})
	corp, err := login.New(login.Config{Name: "corp", Issuer: idp.issuer, ClientID: "tokengate", ClientSecret: "x", IDJAG: true})
	if err != nil {
		t.Fatal(err)
	}
	as := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.LoginProviders = []*login.Provider{corp}
		c.Resources = map[string][]string{mcpResource: {"read"}}
		c.Clients = append(c.Clients, &client.Client{ID: "rp", Name: "Agent", SecretHash: client.HashSecretSHA256("agent-secret"),
			GrantTypes: []string{client.GrantJWTBearer}, Scopes: []string{"read"}})
	})

	_, _, idToken := idp.signIn(t, idp.person(), idp.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid", "profile"))
	exchange := func(kv ...string) *http.Response {
		return idp.post("/oauth/token", set(append([]string{"grant_type", grantTokenExchange, "subject_token", idToken}, kv...)...), []string{"rp", "rpsecret"})
	}
	m := decode(t, exchange("subject_token_type", typeIDToken, "requested_token_type", typeIDJAG, "audience", issuer, "resource", mcpResource, "scope", "read"))
	jag, _ := m["access_token"].(string)
	if m["issued_token_type"] != typeIDJAG || m["token_type"] != "N_A" || m["refresh_token"] != nil || m["scope"] != "read" || jag == "" {
		t.Fatalf("the answer: %v", m)
	}
	if h := headerOf(t, jag); h["typ"] != "oauth-id-jag+jwt" {
		t.Fatalf("the ID-JAG's header: %v", h)
	}

	// The other authorization server takes it once, for the agent.
	grant := func(assertion string) *http.Response {
		return as.post("/oauth/token", set("grant_type", jwtBearer, "assertion", assertion), []string{"rp", "agent-secret"})
	}
	at := decode(t, grant(jag))
	c, err := as.validator.Validate(fmt.Sprint(at["access_token"]), mcpResource)
	if err != nil || c.Subject != "corp:mark" || c.ClientID != "rp" || c.Scope != "read" {
		t.Fatalf("the other server's token: %v %+v %v", at, c, err)
	}
	wantOAuthError(t, grant(jag), 400, "invalid_grant")

	for name, c := range map[string]struct {
		kv   []string
		code string
	}{
		"an audience it may not name": {[]string{"subject_token_type", typeIDToken, "requested_token_type", typeIDJAG, "audience", "https://elsewhere.example.com"}, "invalid_target"},
		"no audience":                 {[]string{"subject_token_type", typeIDToken, "requested_token_type", typeIDJAG, "resource", mcpResource}, "invalid_request"},
		"a scope beyond its line":     {[]string{"subject_token_type", typeIDToken, "requested_token_type", typeIDJAG, "audience", issuer, "scope", "admin"}, "invalid_scope"},
		"an access token as subject":  {[]string{"subject_token_type", typeAccessToken, "requested_token_type", typeIDJAG, "audience", issuer}, "invalid_request"},
		"a token type never issued":   {[]string{"subject_token_type", typeIDToken, "requested_token_type", "urn:ietf:params:oauth:token-type:saml2", "audience", issuer}, "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) { wantOAuthError(t, exchange(c.kv...), 400, c.code) })
	}
}
