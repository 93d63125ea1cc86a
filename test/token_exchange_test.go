package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/issuertest"
	"github.com/tokengate/tokengate/internal/nodetest"
)

// exchangeCaddyfile has a service (svc) whose tokens "orders" may
// exchange for the inventory API ({{.API}}), behind bearer_auth.
const exchangeCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		client svc {
			secret svc-secret
			grant client_credentials
			scope read write
		}
		client orders {
			secret orders-secret
			grant token_exchange
			exchange http://127.0.0.1:{{.API}} read
			exchange_from self
		}
	}
}

http://127.0.0.1:{{.Auth}} {
	oauth2_server
}

http://127.0.0.1:{{.API}} {
	bearer_auth {
		audience http://127.0.0.1:{{.API}}
		scope read
	}
	reverse_proxy {{.Upstream}} {
		header_up X-User {http.auth.user.id}
	}
}
`

// panva's oauth4webapi exchanges a service's token through the real
// binary (genericTokenEndpointRequest, OpenID discovery), and the exchanged token
// works at the resource as the subject, acted on by the exchanging client.
func TestTokenExchangeWithOAuth4WebAPI(t *testing.T) {
	dir := nodetest.Dir(t, "oidc")
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(exchangeCaddyfile)
	subject, err := ccToken(t, g, "svc", "svc-secret")
	if err != nil {
		t.Fatal(err)
	}
	_, lines, stderr := startNodeClient(t, dir, "exchange-client.mjs", g.AuthURL(), "orders", "orders-secret", subject, g.APIURL())
	var m map[string]any
	if err := json.Unmarshal([]byte(readResult(t, lines, stderr, nil)), &m); err != nil {
		t.Fatal(err)
	}
	tok, _ := m["access_token"].(string)
	if m["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || m["scope"] != "read" || m["refresh_token"] != nil || tok == "" {
		t.Fatalf("the exchange: %v", m)
	}
	c, err := decodeClaims(tok)
	if err != nil || c["sub"] != "svc" || c["client_id"] != "orders" || c["aud"] != g.APIURL() {
		t.Fatalf("the exchanged token's claims: %v %v", c, err)
	}
	if act, _ := c["act"].(map[string]any); act["sub"] != "orders" {
		t.Fatalf("act: %v", c["act"])
	}
	code, seen := up.through(t, g.APIURL()+"/items", tok)
	if code != http.StatusOK || seen.Header.Get("X-User") != "svc" {
		t.Fatalf("the resource with the exchanged token: %d %v", code, seen)
	}
	// The subject's own token is not for the resource: only the
	// exchanged one is.
	if code, _ := up.through(t, g.APIURL()+"/items", subject); code != http.StatusUnauthorized {
		t.Fatalf("the subject token at the resource: %d", code)
	}
}

// A trusted issuer's token (panva's oidc-provider's JWT and its opaque,
// introspected one) exchanged for one of tokengate's, when the client may
// present that issuer's tokens; refused when it may not.
func TestTokenExchangeOfTrustedIssuersTokens(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	op := startProvider(t, 0, "key-1")
	cfg := strings.Replace(exchangeCaddyfile, "\t\t\texchange_from self\n", "\t\t\texchange_from self "+op.issuer+"\n", 1)
	cfg = strings.Replace(cfg, "\t\tclient svc {", "\t\ttrust "+op.issuer+" {\n\t\t\taudience https://api.example.com\n\t\t\tintrospection {\n\t\t\t\tclient_id gateway\n\t\t\t\tclient_secret gw-secret\n\t\t\t}\n\t\t}\n\t\tclient svc {", 1)
	g.start(cfg)
	exchange := func(subject string) (int, map[string]any) {
		resp, err := http.PostForm(g.AuthURL()+"/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"client_id": {"orders"}, "client_secret": {"orders-secret"}, "subject_token": {subject},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "resource": {g.APIURL()}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	for name, subject := range map[string]string{"a JWT": op.token("https://api.example.com"), "an opaque token": op.token("https://opaque.example.com")} {
		code, m := exchange(subject)
		tok, _ := m["access_token"].(string)
		c, _ := decodeClaims(tok)
		if code != 200 || c["sub"] != "robot" || c["iss"] != g.Ports.Issuer || c["client_id"] != "orders" {
			t.Fatalf("%s of the trusted issuer: %d %v %v", name, code, m, c)
		}
		if status, seen := up.through(t, g.APIURL()+"/items", tok); status != 200 || seen.Header.Get("X-User") != "robot" {
			t.Fatalf("%s exchanged, at the resource: %d", name, status)
		}
	}
	// For another audience than the trust block's, the provider's token is refused.
	if code, m := exchange(op.token("https://other.example.com")); code != 400 || m["error"] != "invalid_request" {
		t.Fatalf("a token for another audience: %d %v", code, m)
	}
}

// An exchange_from issuer without its trust block, or a token_exchange
// client without exchange resources, fails to load, saying what to fix.
func TestTokenExchangeConfigErrors(t *testing.T) {
	g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
	for change, want := range map[[2]string]string{
		{"\t\t\texchange_from self\n", "\t\t\texchange_from self https://sso.example.com\n"}:              "exchange_from https://sso.example.com is not a trusted issuer: add a trust",
		{"\t\t\texchange http://127.0.0.1:{{.API}} read\n", ""}:                                           "token_exchange needs the resources it may exchange into",
		{"\t\t\texchange http://127.0.0.1:{{.API}} read\n", "\t\t\texchange http://127.0.0.1:{{.API}}\n"}: "exchange takes a resource and the most scope there",
	} {
		bad := strings.Replace(exchangeCaddyfile, change[0], change[1], 1)
		path := filepath.Join(t.TempDir(), "Caddyfile")
		writeFile(t, path, render(t, bad, g.Ports))
		out, err := run(t, nil, "validate", "--config", path, "--adapter", "caddyfile")
		if err == nil || !strings.Contains(strings.ReplaceAll(out, `\"`, `"`), want) {
			t.Errorf("%q: %v, want %q in:\n%s", change[1], err, want, out)
		}
	}
}

// The CLI (through the admin API) registers a client that exchanges
// tokens, which then does, and a federated one, which gets no secret.
func TestDelegationClientsFromCLI(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(exchangeCaddyfile)
	var ex struct {
		ID       string `json:"client_id"`
		Secret   string `json:"client_secret"`
		Exchange []struct {
			Resource string   `json:"resource"`
			Scopes   []string `json:"scopes"`
		} `json:"exchange"`
	}
	g.cliJSON(t, &ex, "client", "create", "--name", "Reports", "--grant", "token_exchange", "--exchange", g.APIURL()+" read")
	if ex.ID == "" || ex.Secret == "" || len(ex.Exchange) != 1 || ex.Exchange[0].Resource != g.APIURL() {
		t.Fatalf("the exchanging client: %+v", ex)
	}
	subject, err := ccToken(t, g, "svc", "svc-secret")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(g.AuthURL()+"/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"client_id": {ex.ID}, "client_secret": {ex.Secret}, "subject_token": {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "resource": {g.APIURL()}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the registered client's exchange: %v %v", resp, err)
	}
	resp.Body.Close()
	var fed struct {
		ID        string `json:"client_id"`
		Secret    string `json:"client_secret"`
		Federated struct{ Issuer, Subject string }
	}
	g.cliJSON(t, &fed, "client", "create", "--name", "CI deploy", "--grant", "client_credentials", "--scope", "read",
		"--federated-issuer", "https://token.actions.githubusercontent.com", "--federated-subject", "repo:acme/app:ref:refs/heads/main")
	if fed.ID == "" || fed.Secret != "" || fed.Federated.Subject != "repo:acme/app:ref:refs/heads/main" {
		t.Fatalf("the federated client: %+v", fed)
	}
}

// delegationCaddyfile has a federated client of a workload issuer and an
// agent that takes a login provider's identity assertions; WORKLOADS is
// the test's issuer (it plays the CI's OIDC issuer and the enterprise IdP).
const delegationCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		login_provider corp {
			issuer WORKLOADS
			client_id tokengate
			client_secret corp-secret
			id_jag
		}
		client ci-deploy {
			federated WORKLOADS {
				subject repo:acme/app:ref:refs/heads/main
			}
			grant client_credentials jwt_bearer
			scope deploy
		}
		client mcp-agent {
			secret agent-secret
			grant jwt_bearer
			scope read
		}
	}
}

http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
`

// Workload identity and enterprise-managed authorization through the
// real binary: the CI job's token as client authentication and as the
// grant, and the IdP's identity assertion for a person.
func TestDelegationGrantsThroughTheBinary(t *testing.T) {
	idp := issuertest.New(t)
	g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
	g.start(strings.ReplaceAll(delegationCaddyfile, "WORKLOADS", idp.URL))
	post := func(form url.Values, user, pass string) map[string]any {
		_, m := postForm(t, g.AuthURL()+"/oauth/token", form, user, pass)
		return m
	}
	ci := func(jti string) string {
		return idp.Token(t, "JWT", map[string]any{"sub": "repo:acme/app:ref:refs/heads/main", "aud": []string{g.Ports.Issuer}, "jti": jti})
	}
	for name, form := range map[string]url.Values{
		"client_assertion": {"grant_type": {"client_credentials"}, "client_id": {"ci-deploy"}, "client_assertion": {ci("run-1")},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}},
		"jwt-bearer grant": {"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "client_id": {"ci-deploy"}, "assertion": {ci("run-2")}},
	} {
		m := post(form, "", "")
		c, err := decodeClaims(fmt.Sprint(m["access_token"]))
		if err != nil || c["sub"] != "ci-deploy" || c["scope"] != "deploy" {
			t.Fatalf("the workload, by %s: %v", name, m)
		}
	}
	now := time.Now()
	jag := idp.Token(t, "oauth-id-jag+jwt", map[string]any{"sub": "alice", "aud": []string{g.Ports.Issuer}, "client_id": "mcp-agent",
		"scope": "read", "jti": "jag-1", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix()})
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {jag}}
	m := post(form, "mcp-agent", "agent-secret")
	if c, err := decodeClaims(fmt.Sprint(m["access_token"])); err != nil || c["sub"] != "corp:alice" || c["client_id"] != "mcp-agent" {
		t.Fatalf("the agent's grant: %v", m)
	}
	if m := post(form, "mcp-agent", "agent-secret"); m["error"] != "invalid_grant" {
		t.Fatalf("the assertion again: %v", m)
	}
}
