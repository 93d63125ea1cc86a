package test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/persontest"
)

// Every client kind and a person, logging at DEBUG so that nothing hides.
const auditCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	log {
		level DEBUG
	}
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		device_interval 1s
		client reader {
			secret_hash $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe
			grant client_credentials
			scope read
		}
		client droplet {
			secret droplet-secret
			redirect_uri https://dropletbook.example/callback
			grant authorization_code refresh_token
			scope read write
		}
		client tv {
			grant device_code refresh_token
			scope read
		}
		client rs {
			secret resource-server-secret
			grant client_credentials
			scope read
			resource_server
		}
		user mark $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe
	}
}
` + authAndAPISites

// A full run of every flow, then the log is searched for every secret the
// run used: client secrets, passwords (also one typed as a username),
// codes, verifiers, access and refresh tokens, device and user codes,
// session cookies. And each audit event is there, with the requester's IP.
func TestAuditLogHasNoSecrets(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
		g.start(auditCaddyfile)
		ctx := context.Background()
		var secrets []string
		keep := func(s ...string) {
			for _, v := range s {
				if v == "" {
					t.Fatal("an empty secret: the flow did not produce it")
				}
				secrets = append(secrets, v)
			}
		}
		keep(readerSecret, "droplet-secret", "resource-server-secret", markPassword)

		// Client credentials, a wrong secret, an API call.
		tok := token(t, g)
		keep(tok)
		callAPI(t, g, tok)
		ccConfig(g, "reader", "wrong-secret-4711", oauth2.AuthStyleInHeader).Token(ctx)
		keep("wrong-secret-4711")

		// A person: a wrong password, a password typed as the username,
		// then the code flow, a refresh, a revocation, introspection.
		for _, who := range [][2]string{{"mark", "wrong-password-0815"}, {"typed-my-password-here", "whatever-password-42"}} {
			p := persontest.New(who[0], who[1])
			p.Authorize(oauthConfig(g, "droplet", "", "https://dropletbook.example/callback").AuthCodeURL("s"))
			keep(who[1])
		}
		keep("typed-my-password-here")
		cfg := oauthConfig(g, "droplet", "droplet-secret", "https://dropletbook.example/callback", "read", "write")
		p := persontest.New("mark", markPassword)
		verifier := oauth2.GenerateVerifier()
		code := authorize(t, g, p, cfg, verifier)
		keep(code, verifier)
		tk, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		keep(tk.AccessToken, tk.RefreshToken)
		refreshed, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tk.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
		if err != nil {
			t.Fatal(err)
		}
		keep(refreshed.AccessToken, refreshed.RefreshToken)
		for _, call := range []struct{ path, token, id, secret string }{
			{"/oauth/introspect", refreshed.AccessToken, "rs", "resource-server-secret"},
			{"/oauth/revoke", refreshed.RefreshToken, "droplet", "droplet-secret"},
		} {
			if status, m := postForm(t, g.AuthURL()+call.path, url.Values{"token": {call.token}}, call.id, call.secret); status != 200 {
				t.Fatalf("POST %s: %d %v", call.path, status, m)
			}
		}
		u, _ := url.Parse(g.AuthURL())
		for _, c := range p.HTTP.Jar.Cookies(u) {
			keep(c.Value)
		}

		// A device.
		dcfg := &oauth2.Config{ClientID: "tv", Scopes: []string{"read"}, Endpoint: oauth2.Endpoint{
			DeviceAuthURL: g.AuthURL() + "/oauth/device", TokenURL: g.AuthURL() + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
		da, err := dcfg.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keep(da.DeviceCode, da.UserCode, strings.ReplaceAll(da.UserCode, "-", ""))
		dp := persontest.New("mark", markPassword)
		dp.UserCode = da.UserCode
		if _, err := dp.Device(da.VerificationURI); err != nil {
			t.Fatal(err)
		}
		dtok, err := dcfg.DeviceAccessToken(ctx, da)
		if err != nil {
			t.Fatal(err)
		}
		keep(dtok.AccessToken, dtok.RefreshToken)
		denied, err := dcfg.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keep(denied.DeviceCode)
		dp = persontest.New("mark", markPassword)
		dp.UserCode, dp.Decision = denied.UserCode, "deny"
		if _, err := dp.Device(denied.VerificationURI); err != nil {
			t.Fatal(err)
		}

		// An administrator: register, rotate, use, revoke, delete.
		var app registered
		g.cliJSON(t, &app, "client", "create", "--name", "Audited", "--grant", "client_credentials", "--scope", "read")
		var rotated registered
		g.cliJSON(t, &rotated, "client", "rotate-secret", app.ID)
		keep(app.Secret, rotated.Secret)
		atok, err := ccConfig(g, app.ID, rotated.Secret, oauth2.AuthStyleInHeader).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keep(atok.AccessToken)
		if out, err := g.cli(t, "revoke", "--token", atok.AccessToken); err != nil {
			t.Fatalf("revoke: %v\n%s", err, out)
		}
		if out, err := g.cli(t, "client", "delete", app.ID); err != nil {
			t.Fatalf("delete: %v\n%s", err, out)
		}

		log := g.log.String()
		for _, s := range secrets {
			if strings.Contains(log, s) {
				t.Errorf("the log contains a secret (%.6s…):\n%s", s, linesWith(log, s))
			}
		}

		// The audit trail.
		events := map[string]int{}
		sc := bufio.NewScanner(strings.NewReader(log))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line struct {
				Logger, Msg string
				RemoteIP    string `json:"remote_ip"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil || line.Logger != "oauth2.audit" {
				continue
			}
			if line.RemoteIP != "127.0.0.1" {
				t.Errorf("audit line without the requester's IP: %s", sc.Text())
			}
			events[line.Msg]++
		}
		for _, want := range []string{"token issued", "token refused", "token refreshed", "token revoked", "grant revoked",
			"login succeeded", "login failed", "consent granted", "consent denied", "authorization code issued", "device authorization started",
			"client registered", "client secret rotated", "client deleted"} {
			if events[want] == 0 {
				t.Errorf("no %q audit line; got %v", want, events)
			}
		}
	})
}

// linesWith returns the lines of s containing sub, with sub masked.
func linesWith(s, sub string) string {
	return strings.ReplaceAll(grepLines(s, sub), sub, "<SECRET>")
}
