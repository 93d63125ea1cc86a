package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokengate/tokengate/internal/redistest"
	"github.com/tokengate/tokengate/introspect"
)

// The gateway of the README: an auth site, an API site behind
// bearer_auth proxying to the recording upstream.
const gatewayCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		client reader {
			name "Reader"
			secret_hash $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe
			grant client_credentials
			scope read
		}
		client writer {
			secret {env.WRITER_SECRET}
			grant client_credentials
			scope read write
			audience http://127.0.0.1:{{.API}}
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
	respond "not here" 404
}
http://127.0.0.1:{{.API}} {
	@writes method POST PUT PATCH DELETE
	bearer_auth @writes write
	bearer_auth read {
		realm api
	}
	reverse_proxy {{.Upstream}} {
		header_up X-User {http.auth.user.id}
		header_up X-Client {http.auth.user.client_id}
		header_up X-Scope {http.auth.user.scope}
		header_up X-Jti {http.auth.user.jti}
	}
}
`

// readerSecret is the plain text of the bcrypt hash above (cost 4, so the
// tests stay fast).
const (
	readerSecret = "reader-secret"
	writerSecret = "writer-secret-from-env"
)

func startGateway(t *testing.T, up *upstream, storeLine string) *gateway {
	g := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
	g.start(gatewayCaddyfile, "WRITER_SECRET="+writerSecret)
	return g
}

func ccConfig(g *gateway, id, secret string, style oauth2.AuthStyle, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: g.AuthURL() + "/oauth/token",
		Scopes: scopes, AuthStyle: style}
}

func get(t *testing.T, c *http.Client, method, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// stores runs fn against the embedded store and against Redis, the one
// Caddyfile line that differs.
func stores(t *testing.T, fn func(t *testing.T, storeLine string)) {
	t.Run("file", func(t *testing.T) { fn(t, "store file") })
	t.Run("redis", func(t *testing.T) {
		fn(t, redisStoreLine(t, redistest.Start(t)))
	})
}

// redisStoreLine is the store directive for srv, with a key prefix of the
// test's own.
func redisStoreLine(t *testing.T, srv *redistest.Server) string {
	return "store redis {\n\t\t\taddress " + srv.URL + "\n\t\t\tprefix " + redistest.Prefix(t) + "\n\t\t}"
}

func TestClientCredentialsThroughGateway(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := startGateway(t, up, storeLine)
		ctx := context.Background()

		// A reader, authenticating with Basic, reads.
		reader := ccConfig(g, "reader", readerSecret, oauth2.AuthStyleInHeader).Client(ctx)
		resp, body := get(t, reader, "GET", g.APIURL()+"/things")
		if resp.StatusCode != 200 {
			t.Fatalf("GET with a read token: %d %s", resp.StatusCode, body)
		}
		seen := up.seen()
		if len(seen) != 1 || seen[0].Header.Get("X-User") != "reader" || seen[0].Header.Get("X-Client") != "reader" ||
			seen[0].Header.Get("X-Scope") != "read" || seen[0].Header.Get("X-Jti") == "" {
			t.Fatalf("the upstream did not get the placeholders: %v", seen[0].Header)
		}

		// ...but may not write: 403 insufficient_scope, upstream untouched.
		resp, body = get(t, reader, "POST", g.APIURL()+"/things")
		if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope", error_description=`) ||
			!strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="write"`) || !strings.Contains(body, `"insufficient_scope"`) {
			t.Fatalf("POST with a read token: %d %v %s", resp.StatusCode, resp.Header, body)
		}

		// A writer, authenticating in the body with a secret from {env.*}, writes.
		writer := ccConfig(g, "writer", writerSecret, oauth2.AuthStyleInParams, "read", "write").Client(ctx)
		if resp, body = get(t, writer, "POST", g.APIURL()+"/things"); resp.StatusCode != 200 {
			t.Fatalf("POST with a write token: %d %s", resp.StatusCode, body)
		}
		// Asking for less gets less.
		tok, err := ccConfig(g, "writer", writerSecret, oauth2.AuthStyleInParams, "read").Token(ctx)
		if err != nil || tok.Extra("scope") != "read" {
			t.Fatalf("scoped token: %v %v", err, tok)
		}

		// No token, a foreign token, garbage: 401, upstream untouched.
		before := len(up.seen())
		plain := http.DefaultClient
		resp, body = get(t, plain, "GET", g.APIURL()+"/things")
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="api"` || !strings.Contains(body, "error_description") {
			t.Fatalf("no token: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
		foreign := "eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vcGUiLCJ0eXAiOiJhdCtqd3QifQ.eyJpc3MiOiJ4In0.c2ln"
		for _, h := range []string{"Bearer " + foreign, "Bearer garbage", "Basic cmVhZGVyOnJlYWRlci1zZWNyZXQ="} {
			resp, _ = get(t, plain, "GET", g.APIURL()+"/things", "Authorization", h)
			if resp.StatusCode != 401 {
				t.Fatalf("%q: %d", h, resp.StatusCode)
			}
		}
		resp, _ = get(t, plain, "GET", g.APIURL()+"/things", "Authorization", "Bearer a b")
		if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
			t.Fatalf("two tokens: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if n := len(up.seen()); n != before {
			t.Fatalf("the upstream saw %d rejected requests", n-before)
		}

		// Bad client credentials.
		_, err = ccConfig(g, "reader", "wrong", oauth2.AuthStyleInHeader).Token(ctx)
		var re *oauth2.RetrieveError
		if !asRetrieveError(err, &re) || re.Response.StatusCode != 401 || re.ErrorCode != "invalid_client" ||
			!strings.HasPrefix(re.Response.Header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("wrong secret: %v", err)
		}
		_, err = ccConfig(g, "reader", readerSecret, oauth2.AuthStyleInHeader, "write").Token(ctx)
		if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_scope" {
			t.Fatalf("scope beyond the client's: %v", err)
		}

		// Requests for paths the server does not serve fall through.
		resp, body = get(t, plain, "GET", g.AuthURL()+"/elsewhere")
		if resp.StatusCode != 404 || body != "not here" {
			t.Fatalf("unknown path: %d %q", resp.StatusCode, body)
		}
	})
}

func asRetrieveError(err error, re **oauth2.RetrieveError) bool {
	e, ok := err.(*oauth2.RetrieveError)
	if !ok {
		return false
	}
	*re = e
	return true
}

func jwksKids(t *testing.T, g *gateway) []string {
	t.Helper()
	resp, body := get(t, http.DefaultClient, "GET", g.AuthURL()+"/oauth/jwks")
	if resp.StatusCode != 200 {
		t.Fatalf("jwks: %d", resp.StatusCode)
	}
	var set struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func token(t *testing.T, g *gateway) string {
	t.Helper()
	tok, err := ccConfig(g, "reader", readerSecret, oauth2.AuthStyleInHeader).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func callAPI(t *testing.T, g *gateway, tok string) int {
	t.Helper()
	return apiStatus(http.DefaultClient, g, tok)
}

// A restart (same data directory) and a reload keep the signing keys: tokens
// issued before still pass.
func TestRestartAndReloadKeepKeys(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := startGateway(t, up, storeLine)
		tok := token(t, g)
		kids := jwksKids(t, g)
		var app registered
		g.cliJSON(t, &app, "client", "create", "--name", "Survivor", "--grant", "client_credentials", "--scope", "read")

		g.stop()
		g2 := newGateway(t, g.Ports)
		g2.start(gatewayCaddyfile, "WRITER_SECRET="+writerSecret)
		if got := jwksKids(t, g2); strings.Join(got, ",") != strings.Join(kids, ",") {
			t.Fatalf("keys after restart %v, before %v", got, kids)
		}
		if code := callAPI(t, g2, tok); code != 200 {
			t.Fatalf("token from before the restart: %d", code)
		}
		if _, err := ccToken(t, g2, app.ID, app.Secret); err != nil {
			t.Fatalf("a registered client did not survive the restart: %v", err)
		}

		// Reload with a new client: old tokens pass, the new client works.
		reloaded := strings.Replace(gatewayCaddyfile, "\t\tclient reader {", "\t\tclient extra {\n\t\t\tsecret extra-secret\n\t\t\tgrant client_credentials\n\t\t\tscope read\n\t\t}\n\t\tclient reader {", 1)
		g2.reload(t, reloaded, "WRITER_SECRET="+writerSecret)
		if code := callAPI(t, g2, tok); code != 200 {
			t.Fatalf("token from before the reload: %d", code)
		}
		if _, err := ccConfig(g2, "extra", "extra-secret", oauth2.AuthStyleInHeader).Token(context.Background()); err != nil {
			t.Fatalf("client added by the reload: %v", err)
		}
		if got := jwksKids(t, g2); strings.Join(got, ",") != strings.Join(kids, ",") {
			t.Fatalf("keys after reload %v, before %v", got, kids)
		}
	})
}

// twoInstances starts two instances of one issuer on one Redis, as behind a
// load balancer.
func twoInstances(t *testing.T) (a, b *gateway, up *upstream, storeLine string) {
	return twoInstancesOf(t, gatewayCaddyfile)
}

// twoInstancesOf is twoInstances with another Caddyfile template.
func twoInstancesOf(t *testing.T, tmpl string) (a, b *gateway, up *upstream, storeLine string) {
	storeLine = redisStoreLine(t, redistest.Start(t))
	up = newUpstream(t)
	a = newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
	a.start(tmpl, "WRITER_SECRET="+writerSecret)
	b = newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine, Issuer: a.Ports.Issuer})
	b.start(tmpl, "WRITER_SECRET="+writerSecret)
	return a, b, up, storeLine
}

// Two instances on one Redis share the signing key: either accepts the
// other's tokens.
func TestInstancesShareKeysThroughRedis(t *testing.T) {
	a, b, up, storeLine := twoInstances(t)
	if code := callAPI(t, b, token(t, a)); code != 200 {
		t.Fatalf("B refused a token A issued: %d", code)
	}
	if code := callAPI(t, a, token(t, b)); code != 200 {
		t.Fatalf("A refused a token B issued: %d", code)
	}
	// A third instance with another issuer shares the key but must refuse
	// tokens that are not its own.
	c := startGateway(t, up, storeLine)
	if code := callAPI(t, c, token(t, a)); code != 401 {
		t.Fatalf("an instance of another issuer accepted the token: %d", code)
	}
	if ka, kb := jwksKids(t, a), jwksKids(t, b); strings.Join(ka, ",") != strings.Join(kb, ",") {
		t.Fatalf("instances publish different keys: %v vs %v", ka, kb)
	}
}

func TestMetadataAndJWKS(t *testing.T) {
	g := startGateway(t, newUpstream(t), "store file")
	resp, body := get(t, http.DefaultClient, "GET", g.AuthURL()+"/.well-known/oauth-authorization-server")
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("metadata: %d %s", resp.StatusCode, body)
	}
	if m["issuer"] != g.Ports.Issuer || m["token_endpoint"] != g.AuthURL()+"/oauth/token" || m["jwks_uri"] != g.AuthURL()+"/oauth/jwks" {
		t.Fatalf("metadata: %v", m)
	}
	if kids := jwksKids(t, g); len(kids) != 2 { // the access tokens' ES256 key, and RS256 for ID tokens
		t.Fatalf("JWKS kids %v", kids)
	}
	// Parameters in the query are refused.
	resp, body = get(t, http.DefaultClient, "POST", g.AuthURL()+"/oauth/token?"+url.Values{"client_secret": {"x"}}.Encode())
	if resp.StatusCode != 400 || !strings.Contains(body, "invalid_request") {
		t.Fatalf("query parameters: %d %s", resp.StatusCode, body)
	}
}

// An admin rotates the signing key on one instance; both instances sign with
// the new key and accept tokens from before and after.
func TestKeyRotationAcrossInstances(t *testing.T) {
	a, b, _, _ := twoInstances(t)
	before := token(t, a)
	oldKids := jwksKids(t, a)

	req, _ := http.NewRequest("POST", "http://127.0.0.1:"+itoa(a.Ports.Admin)+"/oauth2/keys/rotate", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rot struct {
		Kid       string
		Published []string
	}
	json.NewDecoder(resp.Body).Decode(&rot)
	resp.Body.Close()
	if resp.StatusCode != 200 || rot.Kid == "" || rot.Kid == oldKids[0] || len(rot.Published) != 4 {
		t.Fatalf("rotate: %d %+v", resp.StatusCode, rot)
	}

	after := token(t, a)
	for name, g := range map[string]*gateway{"A": a, "B": b} {
		for when, tok := range map[string]string{"before": before, "after": after} {
			if code := callAPI(t, g, tok); code != 200 {
				t.Errorf("%s refused the token from %s the rotation: %d", name, when, code)
			}
		}
	}
	// B picks the new key up from the store within its sync interval.
	deadline := time.Now().Add(5 * time.Second)
	for {
		kids := jwksKids(t, b)
		if len(kids) == 4 && kids[0] == rot.Kid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B still publishes %v; A %v; rotate said %+v", kids, jwksKids(t, a), rot)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if kid := kidOf(t, token(t, b)); kid != rot.Kid {
		t.Fatalf("B signs with %s, want the new key %s", kid, rot.Kid)
	}
}

func kidOf(t *testing.T, tok string) string {
	h, err := introspect.DecodeHeader(tok)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := h["kid"].(string)
	return kid
}

// While Redis is down, requests that need the store get 503
// temporarily_unavailable (never a 500 or a hang); what needs no store still
// works; when Redis returns, everything works again and nothing is lost.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	storeLine := "store redis {\n\t\t\taddress " + srv.URL + "\n\t\t}"
	up := newUpstream(t)
	g := startGateway(t, up, storeLine)
	tok := token(t, g)
	kids := jwksKids(t, g)

	srv.Stop()
	// An unknown client must be looked up in the store.
	_, err := ccConfig(g, "registered-later", "x", oauth2.AuthStyleInHeader).Token(context.Background())
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.Response.StatusCode != 503 || re.ErrorCode != "temporarily_unavailable" {
		t.Fatalf("store down: %v", err)
	}
	// Config clients and bearer_auth need no store round trip.
	if code := callAPI(t, g, token(t, g)); code != 200 {
		t.Fatalf("bearer_auth with the store down: %d", code)
	}

	srv.Resume()
	_, err = ccConfig(g, "registered-later", "x", oauth2.AuthStyleInHeader).Token(context.Background())
	if !asRetrieveError(err, &re) || re.Response.StatusCode != 401 {
		t.Fatalf("store back: %v", err)
	}
	if code := callAPI(t, g, tok); code != 200 {
		t.Fatalf("token from before the outage: %d", code)
	}
	if got := jwksKids(t, g); strings.Join(got, ",") != strings.Join(kids, ",") {
		t.Fatalf("keys changed over the outage: %v vs %v", got, kids)
	}
	if strings.Contains(g.log.String(), "panic") {
		t.Fatalf("panic in the log:\n%s", g.log)
	}
}
