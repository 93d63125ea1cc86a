package test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/persontest"
)

// pagesCaddyfile: two applications a person allows, and the console
// behind basic_auth (user admin, the same password as mark's).
const pagesCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		scope_description read "See your droplets"
		scope_description write "Create and delete droplets"
		client droplet {
			name "The Droplet Book"
			website https://dropletbook.com
			secret droplet-secret
			redirect_uri http://127.0.0.1/callback
			grant authorization_code refresh_token
			scope read write
		}
		client cli {
			name "Droplet CLI"
			redirect_uri http://127.0.0.1/callback
			grant authorization_code refresh_token
			scope read
		}
		user mark $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe {
			name "Mark E. Mark"
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	handle /console/* {
		basic_auth {
			admin $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe
		}
		oauth2_console
	}
	oauth2_server
}
http://127.0.0.1:{{.API}} {
	bearer_auth read
	reverse_proxy {{.Upstream}}
}
`

// A person allows two applications, sees both on /account and removes
// one, whose tokens then stop working; an admin registers a client in the
// console, the person allows it, and the admin revokes that grant in the
// console. All in headless Chromium; the pages' screenshots go to
// $TOKENGATE_SCREENSHOTS (default: a new temporary directory), logged.
func TestAccountAndConsoleInChromium(t *testing.T) {
	person := browserContext(t)
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(pagesCaddyfile)
	shots := screenshotDir(t)
	step := func(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		browserStep(t, ctx, g, what, actions...)
	}
	shoot := func(ctx context.Context, name string) {
		t.Helper()
		screenshot(t, ctx, shots, name)
	}

	codes := make(chan url.Values, 1)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r) // the browser's favicon.ico
			return
		}
		select {
		case codes <- r.URL.Query():
		default:
		}
		w.Write([]byte("<!doctype html><title>back in the app</title><main>Done</main>"))
	}))
	t.Cleanup(callback.Close)
	// allow runs an authorization in the person's tab (signing in first
	// when signIn) and redeems the code as the application.
	allow := func(cfg *oauth2.Config, signIn bool) *oauth2.Token {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		step(person, "opening "+cfg.ClientID+"'s authorization link", chromedp.Navigate(cfg.AuthCodeURL("s-"+cfg.ClientID, oauth2.S256ChallengeOption(verifier))))
		if signIn {
			step(person, "signing in", chromedp.WaitVisible(chromedp.CSS("#username")), chromedp.SendKeys(chromedp.CSS("#username"), "mark"),
				chromedp.SendKeys(chromedp.CSS("#password"), markPassword), chromedp.Click(chromedp.CSS("button[type=submit]")))
		}
		step(person, "allowing "+cfg.ClientID, chromedp.WaitVisible(chromedp.CSS("button[value=approve]")), chromedp.Click(chromedp.CSS("button[value=approve]")))
		select {
		case q := <-codes:
			tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("redeeming %s's code: %v", cfg.ClientID, err)
			}
			return tok
		case <-time.After(20 * time.Second):
			t.Fatalf("the browser never came back to %s", cfg.ClientID)
		}
		return nil
	}
	redirect := callback.URL + "/callback"
	droplet := oauthConfig(g, "droplet", "droplet-secret", redirect, "read", "write")
	cli := oauthConfig(g, "cli", "", redirect, "read")
	dropletTok := allow(droplet, true)
	cliTok := allow(cli, false)

	// Both on the account page; removing The Droplet Book.
	step(person, "opening the account page", chromedp.EmulateViewport(800, 900), chromedp.Navigate(g.AuthURL()+"/account"),
		chromedp.WaitVisible(chromedp.CSS("button[value=remove]")))
	account := pageText(t, person)
	for _, want := range []string{"Connected applications", "Mark E. Mark", "The Droplet Book", "dropletbook.com", "Droplet CLI",
		"See your droplets", "Create and delete droplets", "within the last minute", "username and password"} {
		if !strings.Contains(account, want) {
			t.Errorf("the account page does not show %q:\n%s", want, account)
		}
	}
	shoot(person, "account.png")
	step(person, "removing The Droplet Book", chromedp.Click(chromedp.CSS(`form:has(input[name=client_id][value=droplet]) button[value=remove]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if after := pageText(t, person); !strings.Contains(after, "The Droplet Book no longer has access") || strings.Contains(after, "Create and delete droplets") ||
		!strings.Contains(after, "Droplet CLI") {
		t.Fatalf("after removing, the account page shows:\n%s", after)
	}
	refusedWithinASecond(t, up, g, dropletTok.AccessToken, "the removed application's access token")
	wantRefreshRefused(t, droplet, dropletTok, "the removed application")
	if status, _ := up.through(t, g.APIURL()+"/", cliTok.AccessToken); status != 200 {
		t.Fatalf("the application still allowed was refused: %d", status)
	}

	// The admin, in a tab of their own that sends basic_auth's
	// credentials, registers a client in the console.
	admin, cancel := chromedp.NewContext(person)
	t.Cleanup(cancel)
	creds := base64.StdEncoding.EncodeToString([]byte("admin:" + markPassword))
	if _, err := chromedp.Call(admin, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Basic " + creds}}); err != nil {
		t.Fatalf("setting the admin's credentials: %v", err)
	}
	step(admin, "opening the console's clients", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(g.AuthURL()+"/console/clients"),
		chromedp.WaitVisible(chromedp.CSS("#name")))
	step(admin, "registering a client", chromedp.SendKeys(chromedp.CSS("#name"), "Billing"),
		chromedp.SendKeys(chromedp.CSS("#website"), "https://billing.example"),
		chromedp.SendKeys(chromedp.CSS("#redirect_uris"), "http://127.0.0.1/callback"),
		chromedp.SendKeys(chromedp.CSS("#scope"), "read"),
		chromedp.Click(chromedp.CSS("button[value=create]")), chromedp.WaitVisible(chromedp.CSS(".client-secret")))
	id, err := chromedp.Run(admin, chromedp.Text(chromedp.CSS(".secret dd code")))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := chromedp.Run(admin, chromedp.Text(chromedp.CSS("code.client-secret")))
	if err != nil {
		t.Fatal(err)
	}
	shoot(admin, "console-clients.png")
	billing := oauthConfig(g, strings.TrimSpace(id), strings.TrimSpace(secret), redirect, "read")
	billingTok := allow(billing, false)
	if status, _ := up.through(t, g.APIURL()+"/", billingTok.AccessToken); status != 200 {
		t.Fatalf("the console's client's token was refused: %d", status)
	}

	// The admin finds mark's grants and revokes Billing's.
	step(admin, "finding mark's grants", chromedp.Navigate(g.AuthURL()+"/console/grants"), chromedp.WaitVisible(chromedp.CSS("#subject")),
		chromedp.SendKeys(chromedp.CSS("#subject"), "mark"), chromedp.Submit(chromedp.CSS("form.search")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-client="`+billing.ClientID+`"]`)))
	grants := pageText(t, admin)
	if !strings.Contains(grants, "Billing") || !strings.Contains(grants, "Droplet CLI") || strings.Contains(grants, "The Droplet Book") {
		t.Fatalf("mark's grants in the console:\n%s", grants)
	}
	shoot(admin, "console-grants.png")
	step(admin, "revoking Billing's grant", chromedp.Click(chromedp.CSS(`tr[data-client="`+billing.ClientID+`"] button[value=revoke]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	refusedWithinASecond(t, up, g, billingTok.AccessToken, "the grant the console revoked")
	wantRefreshRefused(t, billing, billingTok, "the grant the console revoked")

	// The overview charts what happened and lists it.
	step(admin, "opening the overview", chromedp.Navigate(g.AuthURL()+"/console/"), chromedp.WaitVisible(chromedp.CSS(".charts")))
	overview := pageText(t, admin)
	for _, want := range []string{"Tokens issued: 3 in the last hour", "client registered", "grant revoked"} {
		if !strings.Contains(overview, want) {
			t.Errorf("the overview does not show %q:\n%s", want, overview)
		}
	}
	shoot(admin, "console.png")
}

// refusedWithinASecond waits up to a second for bearer_auth to refuse tok.
func refusedWithinASecond(t *testing.T, up *upstream, g *gateway, tok, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		status, _ := up.through(t, g.APIURL()+"/", tok)
		if status == http.StatusUnauthorized {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still passes bearer_auth a second later (%d)", what, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantRefreshRefused checks that tok's refresh token no longer works.
func wantRefreshRefused(t *testing.T, cfg *oauth2.Config, tok *oauth2.Token, what string) {
	t.Helper()
	_, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refreshing %s: %v, want invalid_grant", what, err)
	}
}

// screenshotDir is where the browser tests put their screenshots, kept
// after the test for a reviewer: $TOKENGATE_SCREENSHOTS, or a new
// temporary directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("TOKENGATE_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dir, err := os.MkdirTemp("", "tokengate-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// The console does not load unless an authentication handler runs before
// it in its route; insecure_no_auth overrides that, with a warning.
func TestConsoleNeedsAuthentication(t *testing.T) {
	const head = "{\n\tadmin 127.0.0.1:{{.Admin}}\n\tpersist_config off\n\toauth2 {\n\t\tissuer {{.Issuer}}\n\t\t{{.Store}}\n\t}\n}\n"
	const hash = "$2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe"
	refused := map[string]string{
		"no authentication": "http://127.0.0.1:{{.Auth}} {\n\thandle /console/* {\n\t\toauth2_console\n\t}\n\toauth2_server\n}\n",
		"authentication for another path": "http://127.0.0.1:{{.Auth}} {\n\tbasic_auth /other/* {\n\t\tadmin " + hash + "\n\t}\n" +
			"\thandle /console/* {\n\t\toauth2_console\n\t}\n\toauth2_server\n}\n",
		"authentication in another site": "http://127.0.0.1:{{.API}} {\n\tbasic_auth {\n\t\tadmin " + hash + "\n\t}\n\trespond ok\n}\n" +
			"http://127.0.0.1:{{.Auth}} {\n\toauth2_console\n\toauth2_server\n}\n",
	}
	for name, sites := range refused {
		t.Run(name, func(t *testing.T) {
			g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
			path := filepath.Join(g.dir, "Caddyfile")
			writeFile(t, path, render(t, head+sites, g.Ports))
			out, err := run(t, []string{"HOME=" + g.dir, "XDG_DATA_HOME=" + g.dir, "XDG_CONFIG_HOME=" + g.dir}, "run", "--config", path, "--adapter", "caddyfile")
			if err == nil || !strings.Contains(out, "oauth2_console is not behind an authentication handler") || !strings.Contains(out, "insecure_no_auth") {
				t.Fatalf("tokengate run: %v\n%s", err, out)
			}
			// validate cannot see the routes complete before it ends, but
			// says what run will refuse.
			out, _ = run(t, []string{"HOME=" + g.dir, "XDG_DATA_HOME=" + g.dir, "XDG_CONFIG_HOME=" + g.dir}, "validate", "--config", path, "--adapter", "caddyfile")
			if !strings.Contains(out, "tokengate run would refuse this config: oauth2_console is not behind an authentication handler") {
				t.Fatalf("tokengate validate does not say run will refuse:\n%s", out)
			}
		})
	}
	t.Run("guarded by basic_auth", func(t *testing.T) {
		g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
		g.start(head + "http://127.0.0.1:{{.Auth}} {\n\tbasic_auth /console/* {\n\t\tadmin " + hash + "\n\t}\n\thandle /console/* {\n\t\toauth2_console\n\t}\n\toauth2_server\n}\n")
		if resp, _ := get(t, http.DefaultClient, "GET", g.AuthURL()+"/console/"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the console without credentials: %d", resp.StatusCode)
		}
		creds := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+markPassword))
		if resp, body := get(t, http.DefaultClient, "GET", g.AuthURL()+"/console/", "Authorization", creds); resp.StatusCode != 200 || !strings.Contains(body, "Overview") {
			t.Fatalf("the console with credentials: %d\n%s", resp.StatusCode, body)
		}
	})
	t.Run("guarded by forward_auth", func(t *testing.T) {
		g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
		g.start(head + "http://127.0.0.1:{{.Auth}} {\n\thandle /console/* {\n\t\tforward_auth 127.0.0.1:9 {\n\t\t\turi /check\n\t\t}\n\t\toauth2_console\n\t}\n\toauth2_server\n}\n")
		// The authentication service is down: nobody gets in.
		if resp, _ := get(t, http.DefaultClient, "GET", g.AuthURL()+"/console/"); resp.StatusCode == 200 {
			t.Fatalf("the console answered without its authentication service")
		}
	})
	t.Run("insecure_no_auth", func(t *testing.T) {
		g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
		g.start(head + "http://127.0.0.1:{{.Auth}} {\n\thandle /console/* {\n\t\toauth2_console {\n\t\t\tinsecure_no_auth\n\t\t}\n\t}\n\toauth2_server\n}\n")
		if resp, _ := get(t, http.DefaultClient, "GET", g.AuthURL()+"/console/clients"); resp.StatusCode != 200 {
			t.Fatalf("the console: %d", resp.StatusCode)
		}
		if !strings.Contains(g.log.String(), "insecure_no_auth") {
			t.Fatalf("no warning in the log:\n%s", g.log)
		}
	})
}

// An operator lists a person's and a client's grants with the CLI and
// revokes one; that application's tokens stop working, the other's not.
func TestGrantsCLI(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
		g.start(pagesCaddyfile)
		mark := persontest.New("mark", markPassword)
		droplet := oauthConfig(g, "droplet", "droplet-secret", "http://127.0.0.1:9/callback", "read")
		cli := oauthConfig(g, "cli", "", "http://127.0.0.1:9/callback", "read")
		dropletTok, cliTok := exchange(t, g, mark, droplet), exchange(t, g, mark, cli)

		out, err := g.cli(t, "grants", "--subject", "mark")
		if err != nil || !strings.Contains(out, "GRANT_ID") || !strings.Contains(out, "droplet") || !strings.Contains(out, "cli") || !strings.Contains(out, "password") {
			t.Fatalf("oauth2 grants --subject mark: %v\n%s", err, out)
		}
		var byClient []struct {
			ID      string `json:"grant_id"`
			Subject string `json:"subject"`
			Name    string `json:"client_name"`
		}
		g.cliJSON(t, &byClient, "grants", "--client", "droplet")
		if len(byClient) != 1 || byClient[0].Subject != "mark" || byClient[0].Name != "The Droplet Book" {
			t.Fatalf("oauth2 grants --client droplet: %+v", byClient)
		}
		if out, err := g.cli(t, "revoke", "--grant", byClient[0].ID); err != nil || !strings.Contains(out, "revoked: 1") {
			t.Fatalf("oauth2 revoke --grant: %v\n%s", err, out)
		}
		refusedWithinASecond(t, up, g, dropletTok.AccessToken, "the revoked grant's access token")
		wantRefreshRefused(t, droplet, dropletTok, "the revoked grant")
		if status, _ := up.through(t, g.APIURL()+"/", cliTok.AccessToken); status != 200 {
			t.Fatalf("the other grant's token: %d", status)
		}
		g.cliJSON(t, &byClient, "grants", "--client", "droplet")
		if len(byClient) != 0 {
			t.Fatalf("the revoked grant is still listed: %+v", byClient)
		}
		for args, want := range map[string]string{
			"grants":                                 "give exactly one of --subject or --client",
			"grants --subject mark --client droplet": "give exactly one of --subject or --client",
			"revoke --grant nope":                    "no such grant (HTTP 404)",
		} {
			if out, err := g.cli(t, strings.Fields(args)...); err == nil || !strings.Contains(out, want) {
				t.Errorf("oauth2 %s: %v\n%s\nwant it to say %q", args, err, out, want)
			}
		}
	})
}

// exchange runs cfg's authorization as p and redeems the code.
func exchange(t *testing.T, g *gateway, p *persontest.Person, cfg *oauth2.Config) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	code := authorize(t, g, p, cfg, verifier)
	tok, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("redeeming %s's code: %v", cfg.ClientID, err)
	}
	return tok
}

// The console's recent events and charts belong to the process: a reload
// keeps them.
func TestConsoleKeepsActivityAcrossReload(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(pagesCaddyfile)
	p := persontest.New("mark", markPassword)
	cfg := oauthConfig(g, "droplet", "droplet-secret", "http://127.0.0.1/callback", "read")
	verifier := oauth2.GenerateVerifier()
	code := authorize(t, g, p, cfg, verifier)
	if _, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
	creds := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+markPassword))
	audit := func() string {
		t.Helper()
		resp, body := get(t, http.DefaultClient, "GET", g.AuthURL()+"/console/audit", "Authorization", creds)
		if resp.StatusCode != 200 {
			t.Fatalf("the console's audit page: %d", resp.StatusCode)
		}
		return body
	}
	if !strings.Contains(audit(), "token issued") {
		t.Fatal("the audit page does not show the token issued")
	}
	// A changed config (Caddy skips an unchanged one).
	g.reload(t, strings.Replace(pagesCaddyfile, `scope_description read "See your droplets"`, `scope_description read "Read your droplets"`, 1))
	if body := audit(); !strings.Contains(body, "token issued") || !strings.Contains(body, "consent granted") {
		t.Fatalf("after a reload the audit page lost the events:\n%s", body)
	}
}
