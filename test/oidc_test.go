package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/tokengate/tokengate/internal/nodetest"
	"github.com/tokengate/tokengate/internal/persontest"
)

// provider is panva's oidc-provider running on a port of the test's.
type provider struct {
	t      *testing.T
	dir    string
	port   int
	issuer string
	stop   func()
	// log is what it wrote on stderr.
	log *syncBuffer
}

// startProvider runs oidc-provider (test/oidc/provider.mjs) signing with a
// fresh key named keyID; env adds to its environment (RP_REDIRECT).
func startProvider(t *testing.T, port int, keyID string, env ...string) *provider {
	t.Helper()
	p := &provider{t: t, dir: nodetest.Dir(t, "oidc"), port: port}
	if p.port == 0 {
		p.port = freePort(t)
	}
	cmd := nodetest.Command(p.dir, "provider.mjs", append([]string{"KEY_ID=" + keyID}, env...), itoa(p.port))
	stdout, _ := cmd.StdoutPipe()
	log := new(syncBuffer)
	cmd.Stderr, p.log = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	p.stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(p.stop)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- iss
			}
		}
	}()
	select {
	case p.issuer = <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("oidc-provider did not start:\n%s", log)
	}
	return p
}

// token gets a client credentials token of the provider's for resource.
func (p *provider) token(resource string) string {
	p.t.Helper()
	cfg := clientcredentials.Config{ClientID: "robot", ClientSecret: "robot-secret", TokenURL: p.issuer + "/token", Scopes: []string{"read"},
		EndpointParams: url.Values{"resource": {resource}}}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		p.t.Fatalf("the provider's token for %s: %v", resource, err)
	}
	return tok.AccessToken
}

// revoke revokes a token of robot's at the provider.
func (p *provider) revoke(token string) {
	p.t.Helper()
	req, _ := http.NewRequest("POST", p.issuer+"/token/revocation", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("robot", "robot-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		p.t.Fatalf("revoking at the provider: %v %v", err, resp)
	}
	resp.Body.Close()
}

// A route of tokengate's that trusts oidc-provider: its JWT access tokens
// verified in process, its opaque ones introspected, its claims passed
// upstream.
const oidcTrustCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		trust PROVIDER {
			audience https://api.example.com
			introspection {
				client_id gateway
				client_secret gw-secret
				cache_ttl 1s
			}
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
http://127.0.0.1:{{.API}} {
	bearer_auth {
		issuer PROVIDER
		scope read
	}
	reverse_proxy {{.Upstream}} {
		header_up X-User {http.auth.user.id}
		header_up X-Email {http.auth.user.claims.email}
		header_up X-Groups {http.auth.user.claims.groups}
	}
}
`

// tokengate accepting oidc-provider's access tokens, as an API behind it
// would: JWTs with the provider's keys (refused for another audience,
// followed through a key rotation), opaque tokens through introspection
// (a revocation at the provider honoured after the cache TTL), and the
// provider down.
func TestOIDCProviderTokens(t *testing.T) {
	op := startProvider(t, 0, "key-1")
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	started := time.Now()
	g.start(strings.ReplaceAll(oidcTrustCaddyfile, "PROVIDER", op.issuer))
	call := func(tok string) (int, *http.Request) { return up.through(t, g.APIURL()+"/things", tok) }

	jwt := op.token("https://api.example.com")
	st, seen := call(jwt)
	if st != 200 || seen.Header.Get("X-User") != "robot" || seen.Header.Get("X-Email") != "robot@example.com" || seen.Header.Get("X-Groups") != "eng ops" {
		t.Fatalf("the provider's JWT: %d %v", st, seen)
	}
	if st, _ := call(op.token("https://other.example.com")); st != 401 {
		t.Fatalf("the provider's JWT for another audience: %d", st)
	}
	opaque := op.token("https://opaque.example.com")
	if st, seen := call(opaque); st != 200 || seen.Header.Get("X-Email") != "robot@example.com" {
		t.Fatalf("the provider's opaque token: %d %v", st, seen)
	}
	op.revoke(opaque)
	if st, _ := call(opaque); st != 200 {
		t.Fatalf("a revoked opaque token within the cache TTL: %d (the cached answer stands)", st)
	}
	time.Sleep(1100 * time.Millisecond)
	if st, _ := call(opaque); st != 401 {
		t.Fatalf("a revoked opaque token after the cache TTL: %d", st)
	}

	// The provider goes down: its JWTs still verify (the keys are held),
	// a token only it could vouch for is a 503.
	unseen := op.token("https://opaque.example.com")
	op.stop()
	if st, _ := call(jwt); st != 200 {
		t.Fatalf("a JWT with the provider down: %d", st)
	}
	if st, _ := call(unseen); st != 503 {
		t.Fatalf("an opaque token with the provider down: %d", st)
	}

	// It comes back with a new key: a token under it makes tokengate fetch
	// the keys again (once 30 s have passed since the last fetch).
	time.Sleep(time.Until(started.Add(31 * time.Second)))
	op = startProvider(t, op.port, "key-2")
	if st, _ := call(op.token("https://api.example.com")); st != 200 {
		t.Fatalf("a token under the provider's new key: %d\n%s", st, g.log)
	}
}

// Signing in through oidc-provider: a button on tokengate's login page,
// the provider's own pages, back to tokengate's consent page; the token's
// subject is op:<email>. People the provider signs in but the
// configuration does not admit are refused with a page saying so.
const oidcLoginCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		login_provider op {
			name "Test SSO"
			issuer PROVIDER
			client_id tokengate
			client_secret {env.RP_SECRET}
			username email
			allow_domain example.com
			allow_claim groups ops
		}
		client app {
			secret app-secret
			grant authorization_code
			redirect_uri http://127.0.0.1/callback
			scope read openid profile email
			audience https://api.example.com
		}
		client tv {
			grant device_code
			scope read
			audience https://api.example.com
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
http://127.0.0.1:{{.API}} {
	bearer_auth {
		audience https://api.example.com
		scope read
	}
	reverse_proxy {{.Upstream}} {
		header_up X-User {http.auth.user.id}
	}
}
`

func TestLoginProvider(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
		op := startProvider(t, 0, "key-1", "RP_REDIRECT="+g.AuthURL()+"/login/op/callback")
		g.start(strings.ReplaceAll(oidcLoginCaddyfile, "PROVIDER", op.issuer), "RP_SECRET=rp-secret")
		cfg := oauthConfig(g, "app", "app-secret", "http://127.0.0.1/callback", "read")
		signIn := func(login string) (*persontest.Person, *url.URL, error) {
			p := persontest.New("", "")
			p.Provider, p.ProviderLogin, p.ProviderHost = "Test SSO", login, strings.TrimPrefix(op.issuer, "http://")
			verifier := oauth2.GenerateVerifier()
			back, err := p.Authorize(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
			if err == nil {
				tok, xerr := cfg.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
				if xerr != nil {
					return p, back, xerr
				}
				resp, body := get(t, http.DefaultClient, "GET", g.APIURL()+"/things", "Authorization", "Bearer "+tok.AccessToken)
				if resp.StatusCode != 200 || !strings.Contains(body, `"user":"op:`+login+`"`) {
					t.Fatalf("the API with the provider-signed-in token: %d %s", resp.StatusCode, body)
				}
			}
			return p, back, err
		}
		p, back, err := signIn("ops.mark@example.com")
		if err != nil {
			t.Fatalf("signing in through the provider: %v\npages %v", err, p.Pages)
		}
		if back.Query().Get("state") != "st" || strings.Join(p.Pages, ",") != "login with Test SSO,provider login,provider consent,consent" {
			t.Fatalf("the flow: %s, pages %v", back, p.Pages)
		}
		// The account page says how the person signed in, and who: the
		// provider's name for them beside their full subject (the name
		// alone could be another provider's person, or a user's).
		if res, err := p.Get(g.AuthURL() + "/account"); err != nil || res.Page == nil || !strings.Contains(res.Page.Body, "<dd>Test SSO</dd>") ||
			!strings.Contains(res.Page.Body, "Signed in as <strong>ops.mark@example.com (op:ops.mark@example.com)</strong>") {
			t.Fatalf("the account page after a provider sign-in: %v %+v", err, res)
		}
		// What the provider said of the person is what this issuer's ID
		// tokens and userinfo say, to a relying party of its own.
		ocfg := oauthConfig(g, "app", "app-secret", "http://127.0.0.1/callback", "openid", "profile", "email")
		ov := oauth2.GenerateVerifier()
		oback, err := p.Authorize(ocfg.AuthCodeURL("st", oauth2.S256ChallengeOption(ov)))
		if err != nil {
			t.Fatal(err)
		}
		otok, err := ocfg.Exchange(context.Background(), oback.Query().Get("code"), oauth2.VerifierOption(ov))
		if err != nil {
			t.Fatal(err)
		}
		provider, err := oidc.NewProvider(context.Background(), g.AuthURL())
		if err != nil {
			t.Fatal(err)
		}
		rawID, _ := otok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: "app"}).Verify(context.Background(), rawID)
		var ic struct {
			Name, Email       string
			PreferredUsername string `json:"preferred_username"`
			EmailVerified     bool   `json:"email_verified"`
		}
		if err == nil {
			err = idt.Claims(&ic)
		}
		info, ierr := provider.UserInfo(context.Background(), oauth2.StaticTokenSource(otok))
		if err != nil || ierr != nil || idt.Subject != "op:ops.mark@example.com" || !ic.EmailVerified ||
			ic.Email != "ops.mark@example.com" || ic.Name != "ops.mark@example.com" || ic.PreferredUsername != "ops.mark@example.com" || info.Email != "ops.mark@example.com" || !info.EmailVerified {
			t.Fatalf("a provider's person's claims: %v %v %+v %+v", err, ierr, ic, info)
		}
		// The device flow works the same way after a provider sign-in.
		dcfg := &oauth2.Config{ClientID: "tv", Scopes: []string{"read"}, Endpoint: oauth2.Endpoint{
			DeviceAuthURL: g.AuthURL() + "/oauth/device", TokenURL: g.AuthURL() + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
		da, err := dcfg.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		dp := persontest.New("", "")
		dp.Provider, dp.ProviderLogin, dp.ProviderHost = "Test SSO", "ops.tv@example.com", strings.TrimPrefix(op.issuer, "http://")
		dp.UserCode = da.UserCode
		if _, err := dp.Device(da.VerificationURI); err != nil {
			t.Fatalf("the device flow through the provider: %v (pages %v)", err, dp.Pages)
		}
		if strings.Join(dp.Pages, ",") != "device,login with Test SSO,provider login,provider consent,consent" {
			t.Fatalf("the device flow's pages: %v\n%v", dp.Pages, dp.Last)
		}
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		dtok, err := dcfg.DeviceAccessToken(dctx, da)
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := decodeClaims(dtok.AccessToken); c["sub"] != "op:ops.tv@example.com" {
			t.Fatalf("the device token's subject: %v", c["sub"])
		}
		for login, want := range map[string]string{
			"ops.mark@other.org":         "not allowed here", // allow_domain
			"ops.unverified@example.com": "not allowed here", // email not verified
			"mark@example.com":           "not allowed here", // groups without ops
		} {
			p, _, err := signIn(login)
			if err == nil || p.Last == nil || p.Last.Status != http.StatusForbidden || !strings.Contains(p.Last.Body, want) {
				t.Errorf("%s: %v, last page %v", login, err, p.Last)
			}
		}
		if m := metric(scrape(t, g), `tokengate_login_provider_errors_total{kind="refused",provider="op"}`); m != 3 {
			t.Errorf("refusals counted: %v", m)
		}
		// The provider down when tokengate must reach it (here its
		// discovery, after a reload): a page saying so, not a 500 or a hang.
		op.stop()
		changed := strings.Replace(oidcLoginCaddyfile, "username email", "username email\n\t\t\tscope openid email profile", 1) // Caddy skips an unchanged config
		g.reload(t, strings.ReplaceAll(changed, "PROVIDER", op.issuer))
		p, _, err = signIn("ops.mark@example.com")
		if err == nil || p.Last == nil || p.Last.Status != http.StatusServiceUnavailable || !strings.Contains(p.Last.Body, "Test SSO cannot be reached") {
			t.Fatalf("the provider down: %v, last page %v", err, p.Last)
		}
	})
}

// panva's oauth4webapi as an independent DPoP client: client credentials,
// and authorization code + PKCE for a public client with a refresh, each
// calling the API through bearer_auth with DPoP, without and with server
// nonces.
func TestOAuth4WebAPIDPoP(t *testing.T) {
	dir := nodetest.Dir(t, "oidc")
	for _, nonces := range []bool{false, true} {
		t.Run(map[bool]string{false: "without nonces", true: "with nonces"}[nonces], func(t *testing.T) {
			up := newUpstream(t)
			g := newGateway(t, Ports{Upstream: up.Addr()})
			tmpl := strings.Replace(dpopCaddyfile, "\t\tclient bound {", "\t\tclient native {\n\t\t\tgrant authorization_code refresh_token\n\t\t\tredirect_uri http://127.0.0.1/callback\n\t\t\tscope read\n\t\t\taudience https://api.example.com\n\t\t}\n\t\tuser mark $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe\n\t\tclient bound {", 1)
			if nonces {
				tmpl = strings.Replace(tmpl, "\t\tissuer {{.Issuer}}\n", "\t\tissuer {{.Issuer}}\n\t\tdpop_nonce\n", 1)
			}
			g.start(tmpl)
			api := g.APIURL() + "/strict/things" // dpop required there
			run := func(args []string, authorize func(stdin io.Writer, u string)) map[string]any {
				stdin, lines, stderr := startNodeClient(t, dir, "dpop-client.mjs", args...)
				result := readResult(t, lines, stderr, func(line string) {
					if u, ok := strings.CutPrefix(line, "AUTHORIZE "); ok && authorize != nil {
						authorize(stdin, u)
					}
				})
				var m map[string]any
				if err := json.Unmarshal([]byte(result), &m); err != nil {
					t.Fatal(err)
				}
				return m
			}
			m := run([]string{"cc", g.AuthURL(), api, "robot", "robot-secret"}, nil)
			if m["token_type"] != "dpop" || m["api"].(map[string]any)["status"] != float64(200) {
				t.Fatalf("client credentials: %v", m)
			}
			m = run([]string{"code", g.AuthURL(), api, "native"}, func(stdin io.Writer, u string) {
				back, err := persontest.New("mark", markPassword).Authorize(u)
				if err != nil {
					t.Errorf("the person's part: %v", err)
					return
				}
				fmt.Fprintf(stdin, "CALLBACK %s\n", back)
			})
			if m["token_type"] != "dpop" || m["refreshed_type"] != "dpop" || m["api"].(map[string]any)["status"] != float64(200) ||
				m["again"].(map[string]any)["status"] != float64(200) {
				t.Fatalf("authorization code + refresh: %v", m)
			}
		})
	}
}
