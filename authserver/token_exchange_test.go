package authserver_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/internal/dpoptest"
	"github.com/tokengate/tokengate/introspect"
)

const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeAccessToken    = "urn:ietf:params:oauth:token-type:access_token"
	inventory          = "https://inventory.example.com"
)

// exchangeEnv has "orders", which may exchange tokens of this issuer into
// tokens for the inventory API (read and write at most).
func exchangeEnv(t *testing.T) *env {
	return newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.Clients = append(c.Clients, &client.Client{ID: "orders", Name: "Orders", SecretHash: client.HashSecretSHA256("orders-secret"),
			GrantTypes: []string{client.GrantTokenExchange}, Exchange: []client.ExchangeTarget{{Resource: inventory, Scopes: []string{"read", "write"}}}})
	})
}

func (e *env) tokenExchange(kv ...string) *http.Response {
	e.t.Helper()
	return e.post("/oauth/token", set(append([]string{"grant_type", grantTokenExchange}, kv...)...), []string{"orders", "orders-secret"})
}

// RFC 8693 as §15 has it: the subject's token, for one of the client's
// resources, at most the subject's scopes there, acted on by the client,
// never outliving the subject token, no refresh token.
func TestTokenExchange(t *testing.T) {
	e := exchangeEnv(t)
	subject := decode(t, e.post("/oauth/token", set("grant_type", "client_credentials", "scope", "read"), []string{"svc", "s3cret"}))["access_token"].(string)
	sub, err := e.validator.Validate(subject, "")
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, e.tokenExchange("subject_token", subject, "subject_token_type", typeAccessToken, "resource", inventory))
	if m["issued_token_type"] != typeAccessToken || m["token_type"] != "Bearer" || m["refresh_token"] != nil || m["scope"] != "read" {
		t.Fatalf("the answer: %v", m)
	}
	c, err := e.validator.Validate(m["access_token"].(string), inventory)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "svc" || c.ClientID != "orders" || c.Act == nil || c.Act.Subject != "orders" || c.ExpiresAt > sub.ExpiresAt || len(c.Audience) != 1 {
		t.Fatalf("the exchanged token: %+v act %+v", c, c.Act)
	}
	// Exchanged again, by an actor: the earlier actor nests.
	actor := decode(t, e.post("/oauth/token", set("grant_type", "client_credentials"), []string{"odd:id", "p@ss:w+rd %"}))["access_token"].(string)
	m = decode(t, e.tokenExchange("subject_token", m["access_token"].(string), "subject_token_type", typeAccessToken, "audience", inventory,
		"actor_token", actor, "actor_token_type", typeAccessToken))
	c2, err := e.validator.Validate(m["access_token"].(string), inventory)
	if err != nil || c2.Act == nil || c2.Act.Subject != "odd:id" || c2.Act.Act == nil || c2.Act.Act.Subject != "orders" {
		t.Fatalf("nested act: %+v %v", c2, err)
	}

	for name, c := range map[string]struct {
		kv     []string
		status int
		code   string
	}{
		"no target":                 {[]string{"subject_token", subject, "subject_token_type", typeAccessToken}, 400, "invalid_request"},
		"another resource":          {[]string{"subject_token", subject, "subject_token_type", typeAccessToken, "resource", "https://payroll.example.com"}, 400, "invalid_target"},
		"resource and audience":     {[]string{"subject_token", subject, "subject_token_type", typeAccessToken, "resource", inventory, "audience", "https://x.example"}, 400, "invalid_target"},
		"a scope it lacks":          {[]string{"subject_token", subject, "subject_token_type", typeAccessToken, "resource", inventory, "scope", "write"}, 400, "invalid_scope"},
		"no subject token":          {[]string{"subject_token_type", typeAccessToken, "resource", inventory}, 400, "invalid_request"},
		"an unknown token type":     {[]string{"subject_token", subject, "subject_token_type", "urn:x:saml", "resource", inventory}, 400, "invalid_request"},
		"a subject token of no one": {[]string{"subject_token", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", "subject_token_type", typeAccessToken, "resource", inventory}, 400, "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) { wantOAuthError(t, e.tokenExchange(c.kv...), c.status, c.code) })
	}
	// A client without the grant may not.
	wantOAuthError(t, e.post("/oauth/token", set("grant_type", grantTokenExchange, "subject_token", subject, "subject_token_type", typeAccessToken,
		"resource", inventory), []string{"svc", "s3cret"}), 400, "unauthorized_client")
	if !slices.Contains(e.srv.Metadata().GrantTypesSupported, grantTokenExchange) {
		t.Fatal("the metadata does not list the token exchange grant")
	}
}

// An exchanged token dies with its subject's grant, and a revoked subject
// token is not exchanged.
func TestTokenExchangeFollowsTheSubjectsGrant(t *testing.T) {
	e := exchangeEnv(t)
	p := e.person()
	tok := decode(t, e.exchange(e.codeFor(t, p, e.stdAuth())))
	m := decode(t, e.tokenExchange("subject_token", tok["access_token"].(string), "subject_token_type", typeAccessToken, "resource", inventory))
	exchanged := m["access_token"].(string)
	if c, err := e.validator.Validate(exchanged, inventory); err != nil || c.Subject != "mark" || c.GrantID == "" {
		t.Fatalf("a person's token exchanged: %+v %v", c, err)
	}
	// The grant says who acts with it: to the admin and to the person.
	decode(t, e.tokenExchange("subject_token", tok["access_token"].(string), "subject_token_type", typeAccessToken, "resource", inventory))
	grants, err := e.srv.Admin().Grants(t.Context(), store.GrantQuery{Subject: "mark"})
	if err != nil || len(grants) != 1 || !slices.Equal(grants[0].Actors, []string{"orders"}) || grants[0].Via != "" {
		t.Fatalf("the grant's actors: %+v %v", grants, err)
	}
	if page := e.account(t, p); !strings.Contains(page.Body, "<dt>Acting for you with it</dt><dd>Orders</dd>") || strings.Contains(page.Body, "by your organisation") {
		t.Fatalf("the account page does not show who acts for the person:\n%s", page.Body)
	}
	// A grant their organisation gave (an identity assertion) says so.
	now := time.Now()
	agent := &store.Grant{ID: "g-agent", ClientID: "svc", Subject: "mark", Scope: "read", Via: store.ViaIDJAG, Login: "password",
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), EndsBy: now.Add(time.Hour)}
	if err := e.store.PutGrant(t.Context(), agent); err != nil {
		t.Fatal(err)
	}
	if page := e.account(t, p); !strings.Contains(page.Body, ", by your organisation</dd>") {
		t.Fatalf("the account page does not show a delegated grant as such:\n%s", page.Body)
	}
	// The webapp revokes its refresh token: the grant, and every token
	// of it, exchanged ones included.
	if resp := e.post("/oauth/revoke", set("token", tok["refresh_token"].(string)), []string{"webapp", "appsecret"}); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	if _, err := e.validator.Validate(exchanged, inventory); err == nil {
		t.Fatal("the exchanged token outlives its subject's grant")
	} else if te, ok := err.(*introspect.TokenError); !ok || te.Reason != introspect.ReasonRevoked {
		t.Fatalf("refused for another reason: %v", err)
	}
	wantOAuthError(t, e.tokenExchange("subject_token", tok["access_token"].(string), "subject_token_type", typeAccessToken, "resource", inventory),
		400, "invalid_request")
}

// A DPoP-bound subject token is exchanged only with a proof of its key;
// the exchanged token is then bound to it too.
func TestTokenExchangeOfABoundToken(t *testing.T) {
	e := exchangeEnv(t)
	key := dpoptest.New(t, jwa.ES256())
	status, m := e.dpopToken(t, "svc", "s3cret", key.Proof(t, "POST", issuer+"/oauth/token", ""))
	bound, _ := m["access_token"].(string)
	if status != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("the bound subject token: %d %v", status, m)
	}
	exchange := func(proof string) (int, map[string]any) {
		req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(set("grant_type", grantTokenExchange, "subject_token", bound,
			"subject_token_type", typeAccessToken, "resource", inventory).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("orders", "orders-secret")
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		w := httptest.NewRecorder()
		e.srv.Handler("/oauth/token").ServeHTTP(w, req)
		return w.Code, decode(t, w.Result())
	}
	if status, m := exchange(""); status != 400 || m["error"] != "invalid_request" {
		t.Fatalf("without its proof: %d %v", status, m)
	}
	other := dpoptest.New(t, jwa.ES256())
	if status, m := exchange(other.Proof(t, "POST", issuer+"/oauth/token", "")); status != 400 || m["error"] != "invalid_request" {
		t.Fatalf("with another key's proof: %d %v", status, m)
	}
	status, m = exchange(key.Proof(t, "POST", issuer+"/oauth/token", ""))
	if status != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("with its proof: %d %v", status, m)
	}
	if c, err := e.validator.Validate(m["access_token"].(string), inventory); err != nil || c.Confirmation == nil || c.Confirmation.JKT != key.JKT() {
		t.Fatalf("the exchanged token's binding: %+v %v", c, err)
	}
}

// An ID token this issuer gave a client is a subject token for that client
// alone: the person's token at the resource, as much scope as the client's
// exchange line allows (an ID token carries none), of the ID token's grant
// and session, so that signing out or revoking ends it.
func TestTokenExchangeOfAnIDToken(t *testing.T) {
	const typeIDToken = "urn:ietf:params:oauth:token-type:id_token"
	o := newOIDCEnv(t, openStore(t), func(c *authserver.Config) {
		for _, cl := range c.Clients {
			if cl.ID == "rp" || cl.ID == "rp-es" {
				cl.GrantTypes = append(cl.GrantTypes, client.GrantTokenExchange)
				cl.Exchange = []client.ExchangeTarget{{Resource: inventory, Scopes: []string{"read", "write"}}}
			}
		}
	})
	p := o.person()
	conf := o.oauth2Config("rp", "rpsecret", "https://rp.example.com/cb", "openid", "offline_access")
	tok, _, raw := o.signIn(t, p, conf)
	exchange := func(id, secret string, kv ...string) *http.Response {
		return o.post("/oauth/token", set(append([]string{"grant_type", grantTokenExchange, "resource", inventory}, kv...)...), []string{id, secret})
	}
	m := decode(t, exchange("rp", "rpsecret", "subject_token", raw, "subject_token_type", typeIDToken))
	if m["scope"] != "read write" || m["issued_token_type"] != typeAccessToken {
		t.Fatalf("the answer: %v", m)
	}
	c, err := o.validator.Validate(m["access_token"].(string), inventory)
	at, _ := o.validator.Validate(tok.AccessToken, "")
	if err != nil || c.Subject != "mark" || c.ClientID != "rp" || c.Act == nil || c.Act.Subject != "rp" || c.GrantID == "" || at == nil || c.GrantID != at.GrantID {
		t.Fatalf("the exchanged token: %+v %v", c, err)
	}
	if m := decode(t, exchange("rp", "rpsecret", "subject_token", raw, "subject_token_type", typeIDToken, "scope", "read")); m["scope"] != "read" {
		t.Fatalf("narrowed: %v", m)
	}
	for name, c := range map[string]struct {
		id, secret string
		kv         []string
	}{
		"another client's ID token":           {"rp-es", "essecret", []string{"subject_token", raw, "subject_token_type", typeIDToken}},
		"an ID token said to be access token": {"rp", "rpsecret", []string{"subject_token", raw, "subject_token_type", typeAccessToken}},
		"an access token said to be ID token": {"rp", "rpsecret", []string{"subject_token", tok.AccessToken, "subject_token_type", typeIDToken}},
	} {
		t.Run(name, func(t *testing.T) { wantOAuthError(t, exchange(c.id, c.secret, c.kv...), 400, "invalid_request") })
	}

	// Its grant revoked (the refresh token), neither the exchanged token
	// nor the ID token is any good.
	if resp := o.post("/oauth/revoke", set("token", tok.RefreshToken), []string{"rp", "rpsecret"}); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	if _, err := o.validator.Validate(m["access_token"].(string), inventory); err == nil {
		t.Fatal("the exchanged token outlives the ID token's grant")
	}
	wantOAuthError(t, exchange("rp", "rpsecret", "subject_token", raw, "subject_token_type", typeIDToken), 400, "invalid_request")

	// The session ended (the person signs out at the account page's
	// kind of logout): a later grant's ID token of it is refused too.
	_, _, raw = o.signIn(t, p, conf)
	if resp := exchange("rp", "rpsecret", "subject_token", raw, "subject_token_type", typeIDToken); resp.StatusCode != 200 {
		t.Fatalf("a new sign-in's ID token: %s", resp.Status)
	}
	if res, err := p.SignOut(o.issuer + "/oauth/logout?" + set("id_token_hint", raw).Encode()); err != nil || res.Page == nil {
		t.Fatalf("logout: %+v %v", res, err)
	}
	wantOAuthError(t, exchange("rp", "rpsecret", "subject_token", raw, "subject_token_type", typeIDToken), 400, "invalid_request")
}
