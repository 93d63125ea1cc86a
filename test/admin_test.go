package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/redistest"
)

// cli runs `tokengate oauth2 ...` against g's admin API.
func (g *gateway) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return run(t, nil, append([]string{"oauth2"}, append(args, "--address", "127.0.0.1:"+itoa(g.Ports.Admin))...)...)
}

func (g *gateway) cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := g.cli(t, append(args, "--json")...)
	if err != nil {
		t.Fatalf("oauth2 %v: %v\n%s", args, err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("oauth2 %v printed %q: %v", args, out, err)
	}
}

type registered struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
	Source string `json:"source"`
}

func ccToken(t *testing.T, g *gateway, id, secret string) (string, error) {
	t.Helper()
	tok, err := ccConfig(g, id, secret, oauth2.AuthStyleInHeader).Token(context.Background())
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

func TestAdminAPIAndCLI(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		g := startGateway(t, newUpstream(t), storeLine)

		// Register an application the way the seed tutorial describes.
		var app registered
		g.cliJSON(t, &app, "client", "create", "--name", "The Droplet Book", "--website", "https://dropletbook.com",
			"--redirect-uri", "https://dropletbook.com/callback", "--scope", "read write",
			"--grant", "client_credentials", "--grant", "authorization_code")
		if app.ID == "" || len(app.Secret) < 40 || app.Source != "registered" {
			t.Fatalf("registered %+v", app)
		}
		tok, err := ccToken(t, g, app.ID, app.Secret)
		if err != nil {
			t.Fatal(err)
		}
		if code := callAPI(t, g, tok); code != 200 {
			t.Fatalf("API with the registered client's token: %d", code)
		}

		// Listed with the config clients (read-only), as a table and JSON.
		out, err := g.cli(t, "client", "list")
		if err != nil || !strings.Contains(out, "The Droplet Book") || !strings.Contains(out, "reader") || !strings.Contains(out, "CLIENT_ID") {
			t.Fatalf("client list: %v\n%s", err, out)
		}
		var list []registered
		g.cliJSON(t, &list, "client", "list")
		if !slices.ContainsFunc(list, func(c registered) bool { return c.ID == "reader" && c.Source == "config" }) {
			t.Fatalf("config clients not listed: %+v", list)
		}
		for _, c := range list {
			if c.Secret != "" {
				t.Fatal("a listed client shows a secret")
			}
		}
		if out, err := g.cli(t, "client", "show", app.ID); err != nil || !strings.Contains(out, app.ID) || strings.Contains(out, app.Secret) {
			t.Fatalf("client show: %v\n%s", err, out)
		}

		// Rotate the secret: the old one stops working at once.
		var rotated registered
		g.cliJSON(t, &rotated, "client", "rotate-secret", app.ID)
		if _, err := ccToken(t, g, app.ID, app.Secret); err == nil {
			t.Fatal("the old secret still works")
		}
		if _, err := ccToken(t, g, app.ID, rotated.Secret); err != nil {
			t.Fatalf("the new secret: %v", err)
		}

		// Revoke one token.
		tok, _ = ccToken(t, g, app.ID, rotated.Secret)
		var res map[string]int
		g.cliJSON(t, &res, "revoke", "--token", tok)
		if res["revoked"] != 1 || callAPI(t, g, tok) != 401 {
			t.Fatalf("revoke --token: %v", res)
		}
		g.cliJSON(t, &res, "revoke", "--token", "not-a-token")
		if res["revoked"] != 0 {
			t.Fatalf("revoking garbage: %v", res)
		}

		// Revoke every token of a user (sub), then of a client.
		readerTok := token(t, g)
		if out, err := g.cli(t, "revoke", "--subject", "reader"); err != nil || !strings.Contains(out, "revoked: 1") {
			t.Fatalf("revoke --subject: %v %s", err, out)
		}
		if code := callAPI(t, g, readerTok); code != 401 {
			t.Fatalf("user's token after revoke --subject: %d", code)
		}
		tok, _ = ccToken(t, g, app.ID, rotated.Secret)
		g.cliJSON(t, &res, "revoke", "--client", app.ID)
		if code := callAPI(t, g, tok); code != 401 {
			t.Fatalf("client's token after revoke --client: %d", code)
		}
		time.Sleep(1100 * time.Millisecond) // iat has one-second precision
		if tok, err = ccToken(t, g, app.ID, rotated.Secret); err != nil || callAPI(t, g, tok) != 200 {
			t.Fatalf("a token issued after the cut-off: %v", err)
		}

		// Key rotation from the command line.
		var rot struct {
			Kid       string   `json:"kid"`
			Published []string `json:"published"`
		}
		g.cliJSON(t, &rot, "keys", "rotate", "--delay", "1h")
		if len(rot.Published) != 4 || rot.Kid != rot.Published[0] || slices.Contains(jwksKids(t, g)[1:], rot.Kid) {
			t.Fatalf("keys rotate: %+v, JWKS %v", rot, jwksKids(t, g))
		}

		// Errors as the API said them.
		out, err = g.cli(t, "client", "create", "--name", "Bad", "--redirect-uri", "/callback")
		if err == nil || !strings.Contains(out, "must be an absolute URI") || !strings.Contains(out, "HTTP 400") {
			t.Fatalf("bad registration: %v\n%s", err, out)
		}
		out, err = g.cli(t, "client", "delete", "reader")
		if err == nil || !strings.Contains(out, "defined in the configuration") {
			t.Fatalf("deleting a config client: %v\n%s", err, out)
		}
		out, err = g.cli(t, "client", "create", "--name", "Pub", "--public", "--grant", "client_credentials")
		if err == nil || !strings.Contains(out, "client_credentials needs a confidential client") {
			t.Fatalf("public client_credentials: %v\n%s", err, out)
		}

		// Delete: the client is gone and its tokens are revoked.
		if out, err := g.cli(t, "client", "delete", app.ID); err != nil {
			t.Fatalf("delete: %v\n%s", err, out)
		}
		if code := callAPI(t, g, tok); code != 401 {
			t.Fatalf("token of a deleted client: %d", code)
		}
		if _, err := ccToken(t, g, app.ID, rotated.Secret); err == nil {
			t.Fatal("a deleted client still gets tokens")
		}
		if out, err := g.cli(t, "client", "show", app.ID); err == nil || !strings.Contains(out, "no such client") {
			t.Fatalf("show a deleted client: %v\n%s", err, out)
		}
	})
}

// postForm POSTs form to u, with HTTP Basic credentials unless id is
// empty, and returns the status and the JSON answer.
func postForm(t *testing.T, u string, form url.Values, id, secret string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// RFC 7009 revocation and RFC 7662 introspection with their permissions.
func TestRevokeAndIntrospectEndpoints(t *testing.T) {
	g := startGateway(t, newUpstream(t), "store file")
	var rs registered
	g.cliJSON(t, &rs, "client", "create", "--name", "API", "--grant", "client_credentials", "--scope", "read", "--resource-server")

	readerTok := token(t, g)
	writerTok, err := ccToken(t, g, "writer", writerSecret)
	if err != nil {
		t.Fatal(err)
	}
	introspect := func(tok, id, secret string) map[string]any {
		code, m := postForm(t, g.AuthURL()+"/oauth/introspect", url.Values{"token": {tok}}, id, secret)
		if code != 200 {
			t.Fatalf("introspect: %d %v", code, m)
		}
		return m
	}
	// Its own token: active, with the claims.
	m := introspect(readerTok, "reader", readerSecret)
	if m["active"] != true || m["client_id"] != "reader" || m["sub"] != "reader" || m["scope"] != "read" || m["iss"] != g.Ports.Issuer ||
		m["token_type"] != "Bearer" || m["jti"] == nil || m["exp"] == nil || m["iat"] == nil || m["aud"] == nil {
		t.Fatalf("own token: %v", m)
	}
	// Another client's token: inactive, and nothing more.
	if m := introspect(writerTok, "reader", readerSecret); m["active"] != false || len(m) != 1 {
		t.Fatalf("other client's token: %v", m)
	}
	// A resource server sees any token.
	if m := introspect(writerTok, rs.ID, rs.Secret); m["active"] != true || m["client_id"] != "writer" {
		t.Fatalf("resource server: %v", m)
	}
	if m := introspect("garbage", rs.ID, rs.Secret); m["active"] != false || len(m) != 1 {
		t.Fatalf("garbage: %v", m)
	}
	if code, m := postForm(t, g.AuthURL()+"/oauth/introspect", url.Values{"token": {readerTok}}, "reader", "wrong"); code != 401 || m["error"] != "invalid_client" {
		t.Fatalf("unauthenticated introspection: %d %v", code, m)
	}

	// A client may revoke only its own tokens; unknown tokens get 200.
	if code, _ := postForm(t, g.AuthURL()+"/oauth/revoke", url.Values{"token": {writerTok}}, "reader", readerSecret); code != 200 {
		t.Fatalf("revoking another's token: %d", code)
	}
	if callAPI(t, g, writerTok) != 200 {
		t.Fatal("a client revoked another client's token")
	}
	if code, _ := postForm(t, g.AuthURL()+"/oauth/revoke", url.Values{"token": {"unknown"}, "token_type_hint": {"refresh_token"}}, "reader", readerSecret); code != 200 {
		t.Fatalf("revoking an unknown token: %d", code)
	}
	if code, _ := postForm(t, g.AuthURL()+"/oauth/revoke", url.Values{"token": {readerTok}, "token_type_hint": {"refresh_token"}}, "reader", readerSecret); code != 200 {
		t.Fatalf("revoking its own token (with a wrong hint): %d", code)
	}
	if callAPI(t, g, readerTok) != 401 {
		t.Fatal("the revoked token still passes bearer_auth")
	}
	if m := introspect(readerTok, "reader", readerSecret); m["active"] != false {
		t.Fatalf("a revoked token introspects as %v", m)
	}
	if code, m := postForm(t, g.AuthURL()+"/oauth/revoke", url.Values{}, "reader", readerSecret); code != 400 || m["error"] != "invalid_request" {
		t.Fatalf("revoke without token: %d %v", code, m)
	}
}

// Two instances on one Redis: a client registered on A issues on B; a
// revocation on A is enforced by B. The time from A's answer to B's first
// refusal is measured over 100 revocations.
func TestRevocationPropagation(t *testing.T) {
	a, b, _, _ := twoInstances(t)
	var app registered
	a.cliJSON(t, &app, "client", "create", "--name", "Shared", "--grant", "client_credentials", "--scope", "read")
	if _, err := ccToken(t, b, app.ID, app.Secret); err != nil {
		t.Fatalf("a client registered on A does not work on B: %v", err)
	}

	var lat []time.Duration
	for i := range 100 {
		tok, err := ccToken(t, a, app.ID, app.Secret)
		if err != nil {
			t.Fatal(err)
		}
		if code := callAPI(t, b, tok); code != 200 {
			t.Fatalf("B refused a fresh token: %d", code)
		}
		body := fmt.Sprintf(`{"token":%q}`, tok)
		if i%2 == 1 {
			c, _ := decodeClaims(tok)
			body = fmt.Sprintf(`{"jti":%q}`, c["jti"])
		}
		resp, err := http.Post("http://127.0.0.1:"+itoa(a.Ports.Admin)+"/oauth2/revoke", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("revoke on A: %v %v", err, resp)
		}
		resp.Body.Close()
		start := time.Now()
		for callAPI(t, b, tok) != 401 {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("revocation %d never reached B", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("revocation A→B over %d revocations: p50 %v, p99 %v, max %v", len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}

// With the store down longer than revocation_max_staleness, bearer_auth
// fails closed with 503; it recovers by itself when the store returns.
func TestStaleRevocationsFailClosed(t *testing.T) {
	srv := redistest.Start(t)
	g := startGateway(t, newUpstream(t), redisStoreLine(t, srv)+"\n\t\trevocation_max_staleness 2s")
	tok := token(t, g)
	srv.Stop()
	if code := callAPI(t, g, tok); code != 200 {
		t.Fatalf("within the staleness bound: %d", code)
	}
	// Endpoints that must write answer 503 at once.
	code, m := postForm(t, g.AuthURL()+"/oauth/device", url.Values{}, "registered-elsewhere", "x")
	if code != 503 || m["error"] != "temporarily_unavailable" {
		t.Fatalf("device with the store down: %d %v", code, m)
	}
	code, m = postForm(t, g.AuthURL()+"/oauth/revoke", url.Values{"token": {tok}}, "reader", readerSecret)
	if code != 503 || m["error"] != "temporarily_unavailable" {
		t.Fatalf("revoke with the store down: %d %v", code, m)
	}
	deadline := time.Now().Add(10 * time.Second)
	for callAPI(t, g, tok) != 503 {
		if time.Now().After(deadline) {
			t.Fatal("bearer_auth never failed closed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, m := postForm(t, g.AuthURL()+"/oauth/introspect", url.Values{"token": {tok}}, "reader", readerSecret); code != 503 {
		t.Fatalf("introspect with stale revocations: %d %v", code, m)
	}
	for !strings.Contains(g.log.String(), "revocations are stale") {
		if time.Now().After(deadline) {
			t.Fatal("no log line says why bearer_auth fails closed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.Resume()
	deadline = time.Now().Add(10 * time.Second)
	for callAPI(t, g, tok) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("bearer_auth did not recover")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
