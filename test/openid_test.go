package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/tokengate/tokengate/internal/nodetest"
	"github.com/tokengate/tokengate/internal/persontest"
)

// openIDCaddyfile is an OpenID Provider with one relying party, told of
// logouts at {{.Upstream}} (the test's receiver).
const openIDCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		client node-rp {
			name "Node RP"
			secret node-secret
			grant authorization_code refresh_token
			redirect_uri http://127.0.0.1/callback
			scope openid profile email offline_access
			post_logout_redirect_uri http://127.0.0.1/bye
			backchannel_logout_uri http://{{.Upstream}}/backchannel
		}
		user mark $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe {
			name "Mark E. Mark"
			email mark@example.com
		}
	}
}

http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
`

// panva's openid-client 6, unmodified and strict (issuer and iss checks,
// PKCE, nonce, the ID token's signature and claims, userinfo's subject),
// signs a person in through the real binary, refreshes, and signs them out
// (RP-initiated logout); the relying party's backchannel_logout_uri gets a
// logout token that go-oidc accepts.
func TestOpenIDClientRelyingParty(t *testing.T) {
	dir := nodetest.Dir(t, "oidc")
	tokens := make(chan string, 4)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens <- r.PostFormValue("logout_token")
	}))
	t.Cleanup(rc.Close)
	g := newGateway(t, Ports{Upstream: strings.TrimPrefix(rc.URL, "http://")})
	g.start(openIDCaddyfile)

	p := persontest.New("mark", markPassword)
	stdin, lines, stderr := startNodeClient(t, dir, "rp.mjs", g.AuthURL(), "node-rp", "node-secret", "http://127.0.0.1/callback", "http://127.0.0.1/bye")
	result := readResult(t, lines, stderr, func(line string) {
		if u, ok := strings.CutPrefix(line, "AUTHORIZE "); ok {
			back, err := p.Authorize(u)
			if err != nil {
				t.Errorf("the person's part: %v", err)
				return
			}
			fmt.Fprintf(stdin, "CALLBACK %s\n", back)
		}
		if u, ok := strings.CutPrefix(line, "LOGOUT "); ok {
			res, err := p.SignOut(u)
			if err != nil || res.Redirect == nil {
				t.Errorf("signing out: %+v %v", res, err)
				return
			}
			fmt.Fprintf(stdin, "BACK %s\n", res.Redirect)
		}
	})
	var m struct {
		Claims, Userinfo, Refreshed map[string]any
		BackTo                      string `json:"back_to"`
		LogoutState                 bool   `json:"logout_state"`
	}
	if err := json.Unmarshal([]byte(result), &m); err != nil {
		t.Fatal(err)
	}
	c, u, r := m.Claims, m.Userinfo, m.Refreshed
	if c["sub"] != "mark" || c["name"] != "Mark E. Mark" || c["email"] != "mark@example.com" || c["email_verified"] != true || c["sid"] == nil || c["nonce"] == nil {
		t.Fatalf("ID token claims %v", c)
	}
	if u["sub"] != "mark" || u["email"] != "mark@example.com" || u["preferred_username"] != "mark" {
		t.Fatalf("userinfo %v", u)
	}
	if r["sid"] != c["sid"] || r["auth_time"] != c["auth_time"] || r["nonce"] != nil {
		t.Fatalf("the refresh's ID token %v, the first %v", r, c)
	}
	if m.BackTo != "http://127.0.0.1/bye" || !m.LogoutState {
		t.Fatalf("back from logout: %s (state kept: %v)", m.BackTo, m.LogoutState)
	}

	var raw string
	select {
	case raw = <-tokens:
	case <-time.After(10 * time.Second):
		t.Fatalf("no logout token reached the relying party:\n%s", g.log)
	}
	provider, err := oidc.NewProvider(t.Context(), g.AuthURL())
	if err != nil {
		t.Fatal(err)
	}
	lt, err := provider.Verifier(&oidc.Config{ClientID: "node-rp"}).VerifyLogout(t.Context(), raw)
	if err != nil || lt.SessionID != c["sid"] || lt.Subject != "mark" {
		t.Fatalf("the logout token: %+v %v", lt, err)
	}
	// The metric says so (once the relying party's answer is in).
	const delivered = `tokengate_backchannel_logout_total{result="delivered"}`
	if !waitFor(5*time.Second, func() bool { return metric(scrape(t, g), delivered) == 1 }) {
		t.Fatalf("metrics:\n%s", grepLines(scrape(t, g), "backchannel"))
	}
}

// The CLI (through the admin API) registers an OpenID client with the
// same fields the Caddyfile has, and refuses an ID token algorithm the
// issuer has no key of; the Caddyfile refuses bad values at their line.
func TestOpenIDClientFieldsFromCLIAndCaddyfile(t *testing.T) {
	g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
	g.start(openIDCaddyfile)
	var c struct {
		ID          string   `json:"client_id"`
		PostLogout  []string `json:"post_logout_redirect_uris"`
		Backchannel string   `json:"backchannel_logout_uri"`
		Alg         string   `json:"id_token_alg"`
	}
	g.cliJSON(t, &c, "client", "create", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/cb", "--scope", "openid profile",
		"--post-logout-redirect-uri", "https://wiki.example.com/bye", "--backchannel-logout-uri", "https://wiki.example.com/bc", "--id-token-alg", "ES256")
	if c.ID == "" || len(c.PostLogout) != 1 || c.PostLogout[0] != "https://wiki.example.com/bye" || c.Backchannel != "https://wiki.example.com/bc" || c.Alg != "ES256" {
		t.Fatalf("registered %+v", c)
	}
	out, err := g.cli(t, "client", "create", "--name", "Other", "--redirect-uri", "https://o.example.com/cb", "--scope", "openid", "--id-token-alg", "EdDSA")
	if err == nil || !strings.Contains(out, "id_token_alg EdDSA is not one this issuer signs with") {
		t.Fatalf("an algorithm without a key: %v\n%s", err, out)
	}
	for value, want := range map[string]string{
		"backchannel_logout_uri http://rp.example.com/bc": "backchannel_logout_uri",
		"id_token_alg HS256":                              `id_token_alg "HS256" is not supported`,
		"post_logout_redirect_uri javascript:alert(1)":    "post_logout_redirect_uri",
	} {
		bad := strings.Replace(openIDCaddyfile, "\t\t\tpost_logout_redirect_uri http://127.0.0.1/bye\n", "\t\t\t"+value+"\n", 1)
		path := filepath.Join(t.TempDir(), "Caddyfile")
		writeFile(t, path, render(t, bad, g.Ports))
		out, err := run(t, nil, "adapt", "--config", path, "--adapter", "caddyfile")
		out = strings.ReplaceAll(out, `\"`, `"`) // Caddy logs the message as JSON
		if err == nil || !strings.Contains(out, want) || !strings.Contains(out, "Caddyfile:13") {
			t.Errorf("%s: %v\n%s", value, err, out)
		}
	}
}
