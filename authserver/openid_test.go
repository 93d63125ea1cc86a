package authserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/admin"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/internal/persontest"
)

// receiver is a relying party's backchannel_logout_uri: it keeps the
// logout tokens POSTed to it, answering each with the next of fail's
// statuses (then 200), or waiting for hold to close.
type receiver struct {
	srv    *httptest.Server
	tokens chan string
	mu     sync.Mutex
	fail   []int
	hold   chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{tokens: make(chan string, 20)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		hold := rc.hold
		status := http.StatusOK
		if len(rc.fail) > 0 {
			status, rc.fail = rc.fail[0], rc.fail[1:]
		}
		rc.mu.Unlock()
		if hold != nil {
			<-hold
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			status = http.StatusBadRequest
		}
		if status == http.StatusOK {
			rc.tokens <- r.PostFormValue("logout_token")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// next is the next logout token delivered, within a few seconds.
func (rc *receiver) next(t *testing.T) string {
	t.Helper()
	select {
	case tok := <-rc.tokens:
		return tok
	case <-time.After(5 * time.Second):
		t.Fatal("no logout token was delivered")
		return ""
	}
}

// none checks that nothing more was delivered.
func (rc *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case tok := <-rc.tokens:
		t.Fatalf("an unexpected logout token was delivered: %s", tok)
	case <-time.After(300 * time.Millisecond):
	}
}

// oidcEnv is an issuer at a real loopback URL, so that relying-party
// libraries can discover it, with two OpenID clients: rp (RS256 ID
// tokens) and rp-es (ES256), both told of logouts at their receivers.
type oidcEnv struct {
	*env
	issuer     string
	rp, rpES   *receiver
	provider   *oidc.Provider
	metrics    *countingMetrics
	cancelRun  context.CancelFunc
	runStopped chan struct{}
}

func newOIDCEnv(t *testing.T, st store.Store, opts ...func(*authserver.Config)) *oidcEnv {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &oidcEnv{issuer: "http://" + l.Addr().String(), rp: newReceiver(t), rpES: newReceiver(t), metrics: new(countingMetrics)}
	clients := append(testClients(t),
		&client.Client{ID: "rp", Name: "Grafana", SecretHash: client.HashSecretSHA256("rpsecret"),
			GrantTypes: []string{client.GrantAuthorizationCode, client.GrantRefreshToken, client.GrantDeviceCode}, RedirectURIs: []string{"https://rp.example.com/cb"},
			Scopes: []string{"openid", "profile", "email", "offline_access", "read"}, PostLogoutRedirectURIs: []string{"https://rp.example.com/bye"},
			BackchannelLogoutURI: o.rp.srv.URL + "/backchannel"},
		&client.Client{ID: "rp-es", Name: "Wiki", SecretHash: client.HashSecretSHA256("essecret"), IDTokenAlg: "EdDSA",
			GrantTypes: []string{client.GrantAuthorizationCode}, RedirectURIs: []string{"https://wiki.example.com/cb"},
			Scopes: []string{"openid", "profile", "email"}, BackchannelLogoutURI: o.rpES.srv.URL + "/backchannel"})
	all := append([]func(*authserver.Config){func(c *authserver.Config) {
		c.Issuer, c.Clients, c.Metrics = o.issuer, clients, o.metrics
		c.BackchannelRetries = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond}
	}}, opts...)
	e := newEnvWith(t, st, "ES256", all...)
	e.http.Close()
	e.http = httptest.NewUnstartedServer(e.http.Config.Handler)
	e.http.Listener.Close()
	e.http.Listener = l
	e.http.Start()
	o.env = e
	ctx, cancel := context.WithCancel(context.Background())
	o.cancelRun, o.runStopped = cancel, make(chan struct{})
	go func() { defer close(o.runStopped); e.srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-o.runStopped })
	if o.provider, err = oidc.NewProvider(t.Context(), o.issuer); err != nil {
		t.Fatalf("go-oidc's discovery: %v", err)
	}
	return o
}

// oauth2Config is x/oauth2's configuration of client id at the issuer.
func (o *oidcEnv) oauth2Config(id, secret, redirect string, scopes ...string) *oauth2.Config {
	ep := o.provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	return &oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: ep, RedirectURL: redirect, Scopes: scopes}
}

// signIn runs the authorization code flow with go-oidc's nonce and
// PKCE as person p, and returns x/oauth2's token and the verified ID
// token.
func (o *oidcEnv) signIn(t *testing.T, p *persontest.Person, conf *oauth2.Config, extra ...oauth2.AuthCodeOption) (*oauth2.Token, *oidc.IDToken, string) {
	t.Helper()
	p.Pages = nil // what this sign-in shows
	nonce, verifier := "n-"+oauthRandom(t), oauth2.GenerateVerifier()
	u := conf.AuthCodeURL("st", append([]oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}, extra...)...)
	back, err := p.Authorize(u)
	if err != nil {
		t.Fatal(err)
	}
	if back.Query().Get("code") == "" {
		t.Fatalf("no code: %s", back)
	}
	tok, err := conf.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2's exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := o.provider.Verifier(&oidc.Config{ClientID: conf.ClientID, SupportedSigningAlgs: []string{"RS256", "EdDSA"}}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("go-oidc refuses the ID token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	return tok, idt, raw
}

func oauthRandom(t *testing.T) string {
	return strings.ReplaceAll(t.Name(), "/", "-") + time.Now().Format("150405.000000")
}

// idClaims are what an ID token of ours says beside go-oidc's fields.
type idClaims struct {
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	Email             string   `json:"email"`
	EmailVerified     *bool    `json:"email_verified"`
	SID               string   `json:"sid"`
	AuthTime          int64    `json:"auth_time"`
	AZP               string   `json:"azp"`
	Aud               []string `json:"aud"`
	Nonce             *string  `json:"nonce"`
}

func claimsOf(t *testing.T, idt *oidc.IDToken) idClaims {
	t.Helper()
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// A relying party on go-oidc and x/oauth2, unmodified: discovery, the
// code flow with nonce and PKCE, the ID token (signature from the JWK Set,
// iss, aud, exp, nonce, at_hash), userinfo, and a refresh's ID token.
func TestOpenIDWithGoOIDC(t *testing.T) {
	o := newOIDCEnv(t, openStore(t))
	conf := o.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid", "profile", "email", "offline_access")
	p := o.person()
	tok, idt, raw := o.signIn(t, p, conf)
	c := claimsOf(t, idt)
	if idt.Subject != "mark" || c.Name != "Mark E. Mark" || c.PreferredUsername != "mark" || c.Email != "mark@example.com" ||
		c.EmailVerified == nil || !*c.EmailVerified || c.SID == "" || c.AuthTime == 0 || c.AZP != "rp" || len(c.Aud) != 1 || c.Aud[0] != "rp" {
		t.Fatalf("ID token claims %+v (sub %s)", c, idt.Subject)
	}
	if h := headerOf(t, raw); h["typ"] != "JWT" || h["alg"] != "RS256" {
		t.Fatalf("ID token header %v", h)
	}
	// An ID token is no access token, here or at bearer_auth.
	if _, err := o.validator.Validate(raw, ""); err == nil {
		t.Fatal("the validator took an ID token for an access token")
	}
	if at, err := o.validator.Validate(tok.AccessToken, ""); err != nil || at.Subject != "mark" {
		t.Fatalf("the access token: %v", err)
	}

	info, err := o.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("go-oidc's userinfo: %v", err)
	}
	var ic idClaims
	if err := info.Claims(&ic); err != nil || info.Subject != "mark" || info.Email != "mark@example.com" || !info.EmailVerified || ic.Name != "Mark E. Mark" {
		t.Fatalf("userinfo %+v %+v %v", info, ic, err)
	}

	time.Sleep(1100 * time.Millisecond) // iat has one-second precision
	refreshed, err := conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	raw2, _ := refreshed.Extra("id_token").(string)
	idt2, err := o.provider.Verifier(&oidc.Config{ClientID: "rp"}).Verify(t.Context(), raw2)
	if err != nil {
		t.Fatalf("the refresh's ID token: %v", err)
	}
	c2 := claimsOf(t, idt2)
	if c2.SID != c.SID || c2.AuthTime != c.AuthTime || c2.Nonce != nil || !idt2.IssuedAt.After(idt.IssuedAt) {
		t.Fatalf("after a refresh: %+v, before %+v", c2, c)
	}
	if err := idt2.VerifyAccessToken(refreshed.AccessToken); err != nil {
		t.Fatal(err)
	}

	// Narrowed to no openid, a refresh has no ID token.
	narrow := o.post("/oauth/token", set("grant_type", "refresh_token", "refresh_token", refreshed.RefreshToken, "scope", "profile"), []string{"rp", "rpsecret"})
	if m := decode(t, narrow); m["id_token"] != nil || m["access_token"] == nil {
		t.Fatalf("a refresh without openid: %v", m)
	}

	// Another client names EdDSA: its ID tokens are signed so, its
	// at_hash made with SHA-512, and the discovery document says so.
	es := o.oauth2Config("rp-es", "essecret", "https://wiki.example.com/cb", "openid", "email")
	_, idtES, rawES := o.signIn(t, p, es)
	if h := headerOf(t, rawES); h["alg"] != "EdDSA" || h["typ"] != "JWT" {
		t.Fatalf("EdDSA client's header %v", h)
	}
	if ces := claimsOf(t, idtES); ces.SID != c.SID || ces.Name != "" || ces.Email != "mark@example.com" {
		t.Fatalf("with email only, claims %+v", ces)
	}
	var disc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := o.provider.Claims(&disc); err != nil || strings.Join(disc.Algs, " ") != "RS256 ES256 EdDSA" {
		t.Fatalf("id_token_signing_alg_values_supported %v %v", disc.Algs, err)
	}
}

// The discovery document has what OpenID Connect Discovery §3 and the
// logout specifications require, and the same issuer as RFC 8414's.
func TestOpenIDConfiguration(t *testing.T) {
	o := newOIDCEnv(t, openStore(t))
	for _, path := range []string{"/.well-known/openid-configuration"} {
		resp, err := http.Get(o.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		resp.Body.Close()
		want := map[string]any{"issuer": o.issuer, "userinfo_endpoint": o.issuer + "/oauth/userinfo", "end_session_endpoint": o.issuer + "/oauth/logout",
			"backchannel_logout_supported": true, "backchannel_logout_session_supported": true, "frontchannel_logout_supported": false,
			"request_parameter_supported": false, "claims_parameter_supported": false, "authorization_endpoint": o.issuer + "/oauth/authorize",
			"jwks_uri": o.issuer + "/oauth/jwks"}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s: %s = %v, want %v", path, k, m[k], v)
			}
		}
		lists := map[string][]string{"subject_types_supported": {"public"}, "response_types_supported": {"code"}, "response_modes_supported": {"query"},
			"scopes_supported": {"openid", "profile", "email", "offline_access"}, "id_token_signing_alg_values_supported": {"RS256"},
			"claims_supported": {"sub", "name", "preferred_username", "email", "email_verified"}}
		for k, vs := range lists {
			have, _ := m[k].([]any)
			for _, v := range vs {
				if !strings.Contains(strings.Trim(strings.Join(strings.Fields(strings.Trim(jsonString(have), "[]")), " "), " "), `"`+v+`"`) {
					t.Errorf("%s: %s = %v lacks %s", path, k, have, v)
				}
			}
		}
	}
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

// authorizeAs opens an authorization URL for rp as p without acting on
// any page: where it ended (the redirect to the client, or a page).
func (o *oidcEnv) authorizeAs(t *testing.T, p *persontest.Person, kv ...string) *persontest.Result {
	t.Helper()
	q := set(append([]string{"response_type", "code", "client_id", "rp", "redirect_uri", "https://rp.example.com/cb", "scope", "openid profile",
		"state", "s1", "code_challenge", challenge(verifier), "code_challenge_method", "S256", "nonce", "n1"}, kv...)...)
	res, err := p.Get(o.issuer + "/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wantRedirectError checks an error redirect to rp with state and iss.
func (o *oidcEnv) wantRedirectError(t *testing.T, res *persontest.Result, code string) {
	t.Helper()
	if res.Redirect == nil {
		t.Fatalf("a page (%d) where %s was due:\n%s", res.Page.Status, code, res.Page.Body)
	}
	q := res.Redirect.Query()
	if q.Get("error") != code || q.Get("state") != "s1" || q.Get("iss") != o.issuer {
		t.Fatalf("redirect %s, want error %s with state and iss", res.Redirect, code)
	}
}

// prompt, max_age and login_hint as OpenID Connect Core §3.1.2.1 has them.
func TestOpenIDPrompt(t *testing.T) {
	o := newOIDCEnv(t, openStore(t))
	p := o.person()
	// prompt=none shows no page: not signed in, then no consent yet.
	o.wantRedirectError(t, o.authorizeAs(t, p, "prompt", "none"), "login_required")
	if res := o.authorizeAs(t, p, "login_hint", "mark"); res.Page == nil || !strings.Contains(res.Page.Body, `value="mark"`) {
		t.Fatal("login_hint does not pre-fill the username")
	}
	// Consent is remembered once its code is redeemed.
	conf := o.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid", "profile")
	o.signIn(t, p, conf, oauth2.SetAuthURLParam("prompt", "login"))
	p.Pages = nil
	res := o.authorizeAs(t, p, "prompt", "none")
	if res.Redirect == nil || res.Redirect.Query().Get("code") == "" {
		t.Fatalf("prompt=none with a session and consent: %+v", res)
	}
	o.wantRedirectError(t, o.authorizeAs(t, p, "prompt", "none", "scope", "openid email"), "consent_required")
	o.wantRedirectError(t, o.authorizeAs(t, p, "prompt", "none", "max_age", "0"), "login_required")
	o.wantRedirectError(t, o.authorizeAs(t, p, "prompt", "none login"), "invalid_request")
	o.wantRedirectError(t, o.authorizeAs(t, p, "prompt", "sometimes"), "invalid_request")
	o.wantRedirectError(t, o.authorizeAs(t, p, "request", "eyJ.x.y"), "request_not_supported")

	// prompt=consent asks though consent is remembered.
	if res := o.authorizeAs(t, p, "prompt", "consent"); res.Page == nil || !res.Page.Has("decision") {
		t.Fatal("prompt=consent did not show the consent page")
	}
	// prompt=login and max_age sign the person in again, once: auth_time
	// is then the new sign-in's.
	_, first, _ := o.signIn(t, p, conf)
	time.Sleep(1100 * time.Millisecond)
	for _, opt := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
		p.Pages = nil
		_, again, _ := o.signIn(t, p, conf, opt)
		if strings.Join(p.Pages, ",") != "login" || claimsOf(t, again).AuthTime <= claimsOf(t, first).AuthTime {
			t.Fatalf("pages %v, auth_time %d after %d", p.Pages, claimsOf(t, again).AuthTime, claimsOf(t, first).AuthTime)
		}
		first = again
		time.Sleep(1100 * time.Millisecond)
	}
	p.Pages = nil
	if _, _, _ = o.signIn(t, p, conf, oauth2.SetAuthURLParam("max_age", "3600")); len(p.Pages) != 0 {
		t.Fatalf("a recent enough session signed in again: %v", p.Pages)
	}
}

// userinfo's answers to tokens it cannot serve are RFC 6750's.
func TestUserinfoErrors(t *testing.T) {
	o := newOIDCEnv(t, openStore(t))
	call := func(method, token string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(method, o.issuer+"/oauth/userinfo", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp := o.do(req)
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	if resp, _ := call("GET", ""); resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, _ := call("GET", "not-a-token"); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("garbage: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	cc := decode(t, o.post("/oauth/token", set("grant_type", "client_credentials"), []string{"svc", "s3cret"}))["access_token"].(string)
	if resp, _ := call("GET", cc); resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("without openid: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	tok, _, _ := o.signIn(t, o.person(), o.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid"))
	if resp, m := call("POST", tok.AccessToken); resp.StatusCode != 200 || m["sub"] != "mark" || m["email"] != nil || m["name"] != nil {
		t.Fatalf("openid alone releases sub alone: %d %v", resp.StatusCode, m)
	}
	if resp := o.post("/oauth/revoke", set("token", tok.AccessToken), []string{"rp", "rpsecret"}); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	if resp, _ := call("GET", tok.AccessToken); resp.StatusCode != 401 {
		t.Fatalf("a revoked token: %d", resp.StatusCode)
	}
}

// verifyLogout checks a logout token as a go-oidc relying party does, and
// what else Back-Channel Logout §2.4 says of it.
func (o *oidcEnv) verifyLogout(t *testing.T, raw, clientID, sid string) {
	t.Helper()
	lt, err := o.provider.Verifier(&oidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{"RS256", "EdDSA"}}).VerifyLogout(t.Context(), raw)
	if err != nil {
		t.Fatalf("go-oidc refuses the logout token: %v", err)
	}
	if h := headerOf(t, raw); h["typ"] != "logout+jwt" {
		t.Fatalf("logout token header %v", h)
	}
	if lt.Subject != "mark" || lt.SessionID != sid || lt.TokenID == "" || len(lt.Audience) != 1 || lt.Audience[0] != clientID {
		t.Fatalf("logout token %+v, want sid %s for %s", lt, sid, clientID)
	}
}

// nextFor is the logout token for session sid among the next few
// delivered (a person's revocation tells of each of their sessions).
func (o *oidcEnv) nextFor(t *testing.T, rc *receiver, clientID, sid string) {
	t.Helper()
	for range 4 {
		raw := rc.next(t)
		lt, err := o.provider.Verifier(&oidc.Config{ClientID: clientID}).VerifyLogout(t.Context(), raw)
		if err == nil && lt.SessionID == sid {
			o.verifyLogout(t, raw, clientID, sid)
			return
		}
	}
	t.Fatalf("no logout token for session %s", sid)
}

// drain forgets what rc was told so far.
func (rc *receiver) drain() {
	for {
		select {
		case <-rc.tokens:
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

// waitCount waits for the metrics to have counted key n times.
func (o *oidcEnv) waitCount(t *testing.T, key string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		o.metrics.mu.Lock()
		got := o.metrics.counts[key]
		o.metrics.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s counted %d times, want %d", key, got, n)
		}
	}
}

// RP-initiated logout: a hint naming the signed-in person ends the
// session at once and returns the person with state; anything else asks
// first, with a CSRF-checked form; bad requests get a page, never a
// redirect. Every client that got an ID token in the session is told, in
// the background, and a relying party that is slow holds nobody up.
func TestRPInitiatedAndBackchannelLogout(t *testing.T) {
	o := newOIDCEnv(t, openStore(t))
	p := o.person()
	_, idt, raw := o.signIn(t, p, o.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid", "profile"))
	o.signIn(t, p, o.oauth2Config("rp-es", "essecret", "https://wiki.example.com/cb", "openid"))
	sid := claimsOf(t, idt).SID
	end := func(kv ...string) string { return o.issuer + "/oauth/logout?" + set(kv...).Encode() }

	for name, u := range map[string]string{
		"an unregistered post_logout_redirect_uri": end("id_token_hint", raw, "post_logout_redirect_uri", "https://evil.example/"),
		"a post_logout_redirect_uri of no client":  end("post_logout_redirect_uri", "https://rp.example.com/bye"),
		"a hint that is no ID token of ours":       end("id_token_hint", "eyJhbGciOiJub25lIn0.e30."),
		"a client_id the hint is not for":          end("id_token_hint", raw, "client_id", "rp-es"),
	} {
		res, err := p.Get(u)
		if err != nil || res.Page == nil || res.Page.Status != 400 {
			t.Fatalf("%s: %+v %v", name, res, err)
		}
	}
	// The person is still signed in.
	if res := o.authorizeAs(t, p, "prompt", "none"); res.Redirect == nil || res.Redirect.Query().Get("code") == "" {
		t.Fatal("a refused logout request signed the person out")
	}

	// A slow relying party: the person's sign-out does not wait for it.
	o.rp.mu.Lock()
	o.rp.hold = make(chan struct{})
	o.rp.mu.Unlock()
	p.Pages = nil
	res, err := p.SignOut(end("id_token_hint", raw, "post_logout_redirect_uri", "https://rp.example.com/bye", "state", "af0ifjsldkj"))
	if err != nil || res.Redirect == nil || res.Redirect.String() != "https://rp.example.com/bye?state=af0ifjsldkj" || len(p.Pages) != 0 {
		t.Fatalf("logout with a hint: %+v %v (pages %v)", res, err, p.Pages)
	}
	close(o.rp.hold)
	o.verifyLogout(t, o.rp.next(t), "rp", sid)
	o.verifyLogout(t, o.rpES.next(t), "rp-es", sid)
	o.rp.none(t)
	o.wantRedirectError(t, o.authorizeAs(t, p, "prompt", "none"), "login_required")
	o.waitCount(t, "backchannel delivered", 2)

	// Without a hint the person confirms; the form needs its CSRF token.
	_, idt, _ = o.signIn(t, p, o.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid"))
	res, err = p.Get(end("client_id", "rp", "post_logout_redirect_uri", "https://rp.example.com/bye"))
	if err != nil || res.Page == nil || !strings.Contains(res.Page.Body, `value="logout"`) || !strings.Contains(res.Page.Body, "Grafana") {
		t.Fatalf("no confirmation page: %+v %v", res, err)
	}
	form, _ := res.Page.Form()
	forged := url.Values{"decision": {"logout"}, "client_id": {"rp"}}
	if res, _ := p.Post(form.Action, forged); res.Page == nil || res.Page.Status != 403 {
		t.Fatalf("a form without its CSRF token: %+v", res)
	}
	form.Fields.Set("decision", "stay")
	if res, _ := p.Post(form.Action, form.Fields); res.Page == nil || !strings.Contains(res.Page.Body, "still signed in") {
		t.Fatalf("stay: %+v", res)
	}
	o.rp.none(t)
	form.Fields.Set("decision", "logout")
	if res, _ := p.Post(form.Action, form.Fields); res.Redirect == nil || res.Redirect.String() != "https://rp.example.com/bye" {
		t.Fatalf("confirmed: %+v", res)
	}
	o.verifyLogout(t, o.rp.next(t), "rp", claimsOf(t, idt).SID)
	// Signed out already: nothing to confirm, straight back.
	if res, _ := p.Get(end("client_id", "rp", "post_logout_redirect_uri", "https://rp.example.com/bye", "state", "x")); res.Redirect == nil {
		t.Fatalf("signed out already: %+v", res)
	}
	// Without a redirect URI, the signed-out page.
	_, idt, raw = o.signIn(t, p, o.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid"))
	if res, _ := p.Get(end("id_token_hint", raw)); res.Page == nil || !strings.Contains(res.Page.Body, "You are signed out") {
		t.Fatalf("the signed-out page: %+v", res)
	}
	o.verifyLogout(t, o.rp.next(t), "rp", claimsOf(t, idt).SID)
}

// The account page's sign-out, an administrator revoking a grant or the
// person: each tells the relying parties concerned.
func TestBackchannelLogoutFromServerSide(t *testing.T) {
	o := newOIDCEnv(t, openStore(t))
	p := o.person()
	rpConf := o.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid")
	esConf := o.oauth2Config("rp-es", "essecret", "https://wiki.example.com/cb", "openid")

	// The account page's sign-out.
	_, idt, _ := o.signIn(t, p, rpConf)
	res, err := p.Get(o.issuer + "/account")
	if err != nil || res.Page == nil {
		t.Fatal(err)
	}
	form, err := res.Page.FormTo("/logout")
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := p.Post(form.Action, form.Fields); res.Page == nil || !strings.Contains(res.Page.Body, "signed out") {
		t.Fatalf("account sign-out: %+v", res)
	}
	o.verifyLogout(t, o.rp.next(t), "rp", claimsOf(t, idt).SID)

	// An administrator revokes one grant: only its client hears.
	_, idt, _ = o.signIn(t, p, rpConf)
	o.signIn(t, p, esConf)
	grants, err := o.srv.Admin().Grants(t.Context(), store.GrantQuery{Subject: "mark", ClientID: "rp-es"})
	if err != nil || len(grants) == 0 {
		t.Fatal(grants, err)
	}
	for _, g := range grants {
		if err := o.srv.Admin().RevokeGrant(t.Context(), g.ID, "test"); err != nil {
			t.Fatal(err)
		}
	}
	o.verifyLogout(t, o.rpES.next(t), "rp-es", claimsOf(t, idt).SID)
	o.rp.none(t)

	// Revoking the person tells every client of every session and signs
	// them out.
	if _, err := o.srv.Admin().Revoke(t.Context(), &admin.Revocation{Subject: "mark"}); err != nil {
		t.Fatal(err)
	}
	o.nextFor(t, o.rp, "rp", claimsOf(t, idt).SID)
	o.wantRedirectError(t, o.authorizeAs(t, p, "prompt", "none"), "login_required")
	o.rp.drain()

	// A relying party that fails is tried again; one that refuses the
	// token (4xx) is not; both end counted.
	time.Sleep(10 * time.Millisecond)
	p = o.person()
	o.signIn(t, p, rpConf)
	o.rp.mu.Lock()
	o.rp.fail = []int{503}
	o.rp.mu.Unlock()
	_, err = p.SignOut(o.issuer + "/oauth/logout")
	if err != nil {
		t.Fatal(err)
	}
	o.rp.next(t)
	o.signIn(t, p, rpConf)
	o.rp.mu.Lock()
	o.rp.fail = []int{400, 200}
	o.rp.mu.Unlock()
	if _, err := p.SignOut(o.issuer + "/oauth/logout"); err != nil {
		t.Fatal(err)
	}
	o.waitCount(t, "backchannel failed", 1)
	o.rp.none(t)
}

// A session ended on one instance is ended on every other within the
// revocation promise: the store carries the ending.
func TestSessionEndsOnEveryInstance(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		a := newOIDCEnv(t, st, func(c *authserver.Config) { c.SharedStore = true })
		b := newOIDCEnv(t, st, func(c *authserver.Config) { c.SharedStore = true })
		p := a.person()
		a.signIn(t, p, a.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid"))
		// The cookie is every instance's: the same browser at B (the
		// jar keeps cookies by host, which both share) is signed in.
		if res := b.authorizeAs(t, p, "prompt", "none", "scope", "openid"); res.Redirect == nil || res.Redirect.Query().Get("code") == "" {
			t.Fatalf("B does not know A's session: %+v", res)
		}
		// A copy of the cookie (stolen, or another browser profile's)
		// outlives the browser's, which logout clears.
		kept := a.person()
		u, _ := url.Parse(a.issuer)
		kept.HTTP.Jar.SetCookies(u, p.HTTP.Jar.Cookies(u))
		if _, err := p.SignOut(a.issuer + "/oauth/logout"); err != nil {
			t.Fatal(err)
		}
		b.wantRedirectError(t, b.authorizeAs(t, p, "prompt", "none", "scope", "openid"), "login_required")
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			q := b.authorizeAs(t, kept, "prompt", "none", "scope", "openid")
			if q.Redirect != nil && q.Redirect.Query().Get("error") == "login_required" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("B still takes the ended session")
			}
		}
	})
}

// Registration takes OpenID Connect's members, checked.
func TestRegistrationOpenIDMembers(t *testing.T) {
	o := newOIDCEnv(t, openStore(t), func(c *authserver.Config) {
		c.Registration = &authserver.RegistrationConfig{Open: true, Scopes: []string{"openid", "profile"}}
	})
	register := func(body string) (*http.Response, map[string]any) {
		resp, err := http.Post(o.issuer+"/oauth/register", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &m)
		return resp, m
	}
	base := `"redirect_uris":["https://rp2.example.com/cb"],"token_endpoint_auth_method":"none","application_type":"web"`
	for name, body := range map[string]string{
		"http back-channel URI":    `{` + base + `,"backchannel_logout_uri":"http://rp2.example.com/bc"}`,
		"fragment":                 `{` + base + `,"backchannel_logout_uri":"https://rp2.example.com/bc#x"}`,
		"unsigned alg":             `{` + base + `,"id_token_signed_response_alg":"none"}`,
		"a key the issuer has not": `{` + base + `,"id_token_signed_response_alg":"PS256"}`,
		"javascript: logout URI":   `{` + base + `,"post_logout_redirect_uris":["javascript:alert(1)"]}`,
		"session without a URI":    `{` + base + `,"backchannel_logout_session_required":true}`,
	} {
		if resp, m := register(body); resp.StatusCode != 400 || m["error"] != "invalid_client_metadata" {
			t.Errorf("%s: %d %v", name, resp.StatusCode, m)
		}
	}
	resp, m := register(`{` + base + `,"post_logout_redirect_uris":["https://rp2.example.com/bye"],"backchannel_logout_uri":"https://rp2.example.com/bc",` +
		`"backchannel_logout_session_required":true,"id_token_signed_response_alg":"RS256"}`)
	if resp.StatusCode != 201 || m["backchannel_logout_uri"] != "https://rp2.example.com/bc" || m["id_token_signed_response_alg"] != "RS256" ||
		jsonString(m["post_logout_redirect_uris"]) != `["https://rp2.example.com/bye"]` || m["backchannel_logout_session_required"] != true {
		t.Fatalf("registration: %d %v", resp.StatusCode, m)
	}
	c, err := o.srv.Admin().ClientInfo(t.Context(), m["client_id"].(string))
	if err != nil || c.BackchannelLogoutURI != "https://rp2.example.com/bc" || len(c.PostLogoutRedirectURIs) != 1 {
		t.Fatalf("the registered client %+v %v", c, err)
	}
}

// The device grant with openid gives an ID token too, without nonce.
func TestOpenIDDeviceGrant(t *testing.T) {
	o := newOIDCEnv(t, openStore(t))
	m := decode(t, o.post("/oauth/device", set("scope", "openid email"), []string{"rp", "rpsecret"}))
	p := o.person()
	if _, err := p.Device(m["verification_uri_complete"].(string)); err != nil {
		t.Fatal(err)
	}
	tok := decode(t, o.post("/oauth/token", set("grant_type", "urn:ietf:params:oauth:grant-type:device_code", "device_code", m["device_code"].(string)), []string{"rp", "rpsecret"}))
	raw, _ := tok["id_token"].(string)
	idt, err := o.provider.Verifier(&oidc.Config{ClientID: "rp"}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("device grant's ID token: %v (%v)", err, tok)
	}
	if c := claimsOf(t, idt); c.Email != "mark@example.com" || c.SID == "" || c.Nonce != nil {
		t.Fatalf("claims %+v", c)
	}
}

// ID tokens verify from the JWK Set at every moment of a rotation: the
// next RS256 key is published before it signs, and the retired one stays
// while its tokens live.
func TestIDTokensThroughKeyRotation(t *testing.T) {
	o := newOIDCEnv(t, openStore(t))
	conf := o.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid")
	p := o.person()
	_, _, before := o.signIn(t, p, conf)
	verify := func(when string, raws ...string) {
		t.Helper()
		// A relying party that has never seen the keys, and one that has.
		for _, v := range []*oidc.IDTokenVerifier{oidc.NewVerifier(o.issuer, oidc.NewRemoteKeySet(t.Context(), o.issuer+"/oauth/jwks"), &oidc.Config{ClientID: "rp"}),
			o.provider.Verifier(&oidc.Config{ClientID: "rp"})} {
			for _, raw := range raws {
				if _, err := v.Verify(t.Context(), raw); err != nil {
					t.Fatalf("%s: %v", when, err)
				}
			}
		}
	}
	if err := o.keys.Rotate(t.Context(), time.Hour); err != nil {
		t.Fatal(err)
	}
	_, _, published := o.signIn(t, p, conf)
	if kidOf(t, published) != kidOf(t, before) {
		t.Fatal("a key published for later already signs ID tokens")
	}
	verify("the next key published", before, published)
	if err := o.keys.Rotate(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	_, _, after := o.signIn(t, p, conf)
	if kidOf(t, after) == kidOf(t, before) || headerOf(t, after)["alg"] != "RS256" {
		t.Fatalf("after the rotation: %v", headerOf(t, after))
	}
	verify("the new key signing", before, published, after)
}

// An expired ID token is still a hint (RP-Initiated Logout §2): the
// session it names ends without a question.
func TestLogoutWithAnExpiredHint(t *testing.T) {
	o := newOIDCEnv(t, openStore(t), func(c *authserver.Config) { c.AccessTokenTTL = time.Second })
	p := o.person()
	_, idt, raw := o.signIn(t, p, o.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid"))
	time.Sleep(time.Until(idt.Expiry) + 1100*time.Millisecond)
	if _, err := o.provider.Verifier(&oidc.Config{ClientID: "rp"}).Verify(t.Context(), raw); err == nil {
		t.Fatal("the hint has not expired: the test tests nothing")
	}
	p.Pages = nil
	res, err := p.SignOut(o.issuer + "/oauth/logout?" + set("id_token_hint", raw, "post_logout_redirect_uri", "https://rp.example.com/bye").Encode())
	if err != nil || res.Redirect == nil || len(p.Pages) != 0 {
		t.Fatalf("logout with an expired hint: %+v %v %v", res, err, p.Pages)
	}
	o.nextFor(t, o.rp, "rp", claimsOf(t, idt).SID)
}

// A person removed from the configuration is signed out, and the
// applications they signed in to are told, by the instance that
// offboards them.
func TestOffboardingTellsRelyingParties(t *testing.T) {
	st := openStore(t)
	before := newOIDCEnv(t, st)
	if err := before.srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, idt, _ := before.signIn(t, before.person(), before.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid"))
	before.cancelRun()
	<-before.runStopped
	after := newOIDCEnv(t, st, func(c *authserver.Config) { c.Users = nil })
	if err := after.srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	after.nextFor(t, after.rp, "rp", claimsOf(t, idt).SID)
}

// A self-registered client's backchannel_logout_uri is its own claim: the
// guarded client never takes a logout token to a loopback or private
// address for it.
func TestBackchannelLogoutOfARegisteredClientIsGuarded(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	o := newOIDCEnv(t, openStore(t), func(c *authserver.Config) {
		c.Registration = &authserver.RegistrationConfig{Open: true, Scopes: []string{"openid"}}
		c.Logger = zap.New(core)
	})
	hits := newReceiver(t)
	loopback := "https://" + strings.TrimPrefix(hits.srv.URL, "http://") + "/bc"
	resp, err := http.Post(o.issuer+"/oauth/register", "application/json", strings.NewReader(
		`{"redirect_uris":["https://self.example.com/cb"],"client_name":"Self","backchannel_logout_uri":"`+loopback+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("registration: %d %v", resp.StatusCode, reg)
	}
	p := o.person()
	o.signIn(t, p, o.oauth2Config(reg["client_id"].(string), reg["client_secret"].(string), "https://self.example.com/cb", "openid"))
	if _, err := p.SignOut(o.issuer + "/oauth/logout"); err != nil {
		t.Fatal(err)
	}
	o.waitCount(t, "backchannel failed", 1)
	hits.none(t)
	failed := logs.FilterMessage("back-channel logout failed").All()
	if len(failed) != 1 || !strings.Contains(fmt.Sprint(failed[0].ContextMap()["error"]), "loopback, private or link-local") {
		t.Fatalf("the failure logged: %+v", failed)
	}
}
