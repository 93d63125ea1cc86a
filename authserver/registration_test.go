package authserver_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/idna"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
)

func newRegistrationEnv(t *testing.T, st store.Store, reg *authserver.RegistrationConfig) *env {
	t.Helper()
	return newEnvWith(t, st, "ES256", func(c *authserver.Config) { c.Registration = reg })
}

// register posts client metadata from address ip, with a bearer token if
// given, and returns the answer.
func (e *env) register(t *testing.T, body any, bearer, ip string) (*http.Response, map[string]any) {
	t.Helper()
	return e.sendJSON("POST", e.http.URL+"/oauth/register", body, bearer, ip)
}

// sendJSON sends body (JSON, or []byte as is) with a bearer token if
// given, from address ip, and decodes the answer.
func (e *env) sendJSON(method, u string, body any, bearer, ip string) (*http.Response, map[string]any) {
	raw, ok := body.([]byte)
	if !ok {
		raw, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, u, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-Client-IP", ip)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp := e.do(req)
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp, m
}

var idChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestDynamicRegistration(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		e := newRegistrationEnv(t, st, &authserver.RegistrationConfig{Open: true, Scopes: []string{"read", "write"}})
		resp, m := e.register(t, map[string]any{"client_name": "Agent", "redirect_uris": []string{"http://127.0.0.1/cb"},
			"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}, "scope": "read",
			"application_type": "native", "x_unknown_member": true}, "", "192.0.2.1")
		if resp.StatusCode != 201 {
			t.Fatalf("register: %d %v", resp.StatusCode, m)
		}
		id, _ := m["client_id"].(string)
		if !idChars.MatchString(id) || m["client_secret"] != nil || m["registration_access_token"] == nil ||
			m["registration_client_uri"] != issuer+"/oauth/register/"+id || m["token_endpoint_auth_method"] != "none" ||
			m["client_name"] != "Agent" || m["application_type"] != "native" {
			t.Fatalf("answer %v", m)
		}
		// It asked for read and may step up to write later: the answer says
		// what it may obtain.
		if m["scope"] != "read write" {
			t.Fatalf("registered scope %v, want the registration's: read write", m["scope"])
		}
		for _, k := range []string{"redirect_uris", "grant_types", "response_types", "client_id_issued_at"} {
			if m[k] == nil {
				t.Errorf("answer lacks %s: %v", k, m)
			}
		}
		// A confidential one gets a secret that works at the token endpoint.
		resp, c := e.register(t, map[string]any{"client_name": "Worker", "grant_types": []string{"client_credentials"}}, "", "192.0.2.1")
		if resp.StatusCode != 201 || !idChars.MatchString(c["client_secret"].(string)) || c["client_secret_expires_at"] != float64(0) {
			t.Fatalf("confidential: %d %v", resp.StatusCode, c)
		}
		tok := e.post("/oauth/token", form("grant_type", "client_credentials"), []string{c["client_id"].(string), c["client_secret"].(string)})
		if tok.StatusCode != 200 {
			t.Fatalf("the registered client's token: %d", tok.StatusCode)
		}
		// The metadata says where to register; the admin API says how it came.
		if md := decode(t, e.do(mustReq(t, "GET", e.http.URL+"/.well-known/oauth-authorization-server"))); md["registration_endpoint"] != issuer+"/oauth/register" {
			t.Fatalf("metadata %v", md)
		}
		ci, err := e.srv.Admin().ClientInfo(t.Context(), id)
		if err != nil || ci.Source != "dynamic" {
			t.Fatalf("admin view %+v %v", ci, err)
		}
		// The consent page says the application registered itself, and where
		// it sends the person.
		p := e.person()
		res, err := p.Get(e.authURL("response_type", "code", "client_id", id, "redirect_uri", "http://127.0.0.1:5555/cb", "scope", "read",
			"state", "s", "code_challenge", challenge(verifier), "code_challenge_method", "S256"))
		if err != nil {
			t.Fatal(err)
		}
		login, err := res.Page.Form()
		if err != nil {
			t.Fatal(err)
		}
		login.Fields.Set("username", "mark")
		login.Fields.Set("password", markPassword)
		res, err = p.Post(login.Action, login.Fields)
		if err != nil || res.Page == nil {
			t.Fatalf("after sign-in: %v %+v", err, res)
		}
		if !strings.Contains(res.Page.Body, "This application registered itself") || !strings.Contains(res.Page.Body, "<strong>127.0.0.1:5555</strong>") {
			t.Fatalf("consent page for a self-registered client:\n%s", res.Page.Body)
		}
	})
}

func mustReq(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestRegistrationValidation(t *testing.T) {
	e := newRegistrationEnv(t, openStore(t), &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}})
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"javascript redirect", map[string]any{"redirect_uris": []string{"javascript:alert(1)//"}}, 400, "invalid_redirect_uri"},
		{"wildcard", map[string]any{"redirect_uris": []string{"https://*.example.com/cb"}}, 400, "invalid_redirect_uri"},
		{"fragment", map[string]any{"redirect_uris": []string{"https://app.example.com/cb#x"}}, 400, "invalid_redirect_uri"},
		{"http not loopback", map[string]any{"redirect_uris": []string{"http://app.example.com/cb"}}, 400, "invalid_redirect_uri"},
		{"no redirect for the code grant", map[string]any{"client_name": "x"}, 400, "invalid_redirect_uri"},
		{"password grant", map[string]any{"grant_types": []string{"password"}, "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"public client_credentials", map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "none"}, 400, "invalid_client_metadata"},
		{"implicit", map[string]any{"response_types": []string{"token"}, "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"scope beyond the allowed", map[string]any{"scope": "read admin", "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"unknown auth method", map[string]any{"token_endpoint_auth_method": "tls_client_auth", "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"unknown application_type", map[string]any{"application_type": "desktop", "redirect_uris": []string{"http://127.0.0.1/cb"}}, 400, "invalid_client_metadata"},
		{"not JSON", []byte("client_name=x"), 400, "invalid_client_metadata"},
		{"too large", []byte(`{"client_name":"` + strings.Repeat("x", 70_000) + `"}`), 413, "invalid_client_metadata"},
		// Every member is capped, and the whole: a registration costs the
		// store a few KB, not the 64 KB a request may carry.
		{"a 60,000 character name", map[string]any{"client_name": strings.Repeat("x", 60_000), "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"a 201 character name", map[string]any{"client_name": strings.Repeat("é", 201), "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"60 long redirect URIs", map[string]any{"redirect_uris": longURIs(60, 900)}, 400, "invalid_client_metadata"},
		{"a 3,000 byte redirect URI", map[string]any{"redirect_uris": longURIs(1, 3000)}, 400, "invalid_client_metadata"},
		{"20 long redirect URIs", map[string]any{"redirect_uris": longURIs(20, 1900)}, 400, "invalid_client_metadata"},
		{"11 contacts", map[string]any{"contacts": strings.Split(strings.Repeat("a@b.example ", 11), " ")[:11], "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"a long contact", map[string]any{"contacts": []string{strings.Repeat("a", 400) + "@b.example"}, "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"a long software_id", map[string]any{"software_id": strings.Repeat("s", 201), "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"a long software_version", map[string]any{"software_version": strings.Repeat("1", 201), "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"a long client_uri", map[string]any{"client_uri": "https://a.example/" + strings.Repeat("p", 2000), "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
		{"response_types repeated", map[string]any{"response_types": []string{"code", "code", "code"}, "redirect_uris": []string{"https://a.example/cb"}}, 400, "invalid_client_metadata"},
	}
	for i, tc := range tests {
		resp, m := e.register(t, tc.body, "", fmt.Sprintf("198.51.100.%d", i+1))
		if resp.StatusCode != tc.status || m["error"] != tc.code || len(m["error_description"].(string)) < 10 {
			t.Errorf("%s: %d %v, want %d %s", tc.name, resp.StatusCode, m, tc.status, tc.code)
		}
	}
}

// longURIs is n distinct redirect URIs of about size bytes each.
func longURIs(n, size int) []string {
	var out []string
	for i := range n {
		u := fmt.Sprintf("https://agent.example/%d/", i)
		out = append(out, u+strings.Repeat("p", max(0, size-len(u))))
	}
	return out
}

// A normal MCP client always fits: ten redirect URIs, a name under 100
// characters, contacts, software ids, a key set.
func TestRegistrationOfANormalClientFits(t *testing.T) {
	e := newRegistrationEnv(t, openStore(t), &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}})
	var uris []string
	for i := range 10 {
		uris = append(uris, fmt.Sprintf("http://127.0.0.1:%d/oauth/callback", 33400+i))
	}
	resp, m := e.register(t, map[string]any{"client_name": strings.Repeat("Claude Desktop Agent ", 4), "redirect_uris": uris,
		"contacts": []string{"ops@agent.example", "security@agent.example"}, "software_id": "com.example.agent", "software_version": "2.14.1",
		"client_uri": "https://agent.example/about", "application_type": "native", "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"}}, "", "192.0.2.40")
	if resp.StatusCode != 201 {
		t.Fatalf("a normal MCP client: %d %v", resp.StatusCode, m)
	}
}

// Registrations have a global budget (max_clients) that no spread of
// addresses gets past, refused saying so; a registration that never
// obtains a token is removed after unused_client_ttl, client_ttl or not.
func TestRegistrationBudgetAndUnusedClients(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		e := newRegistrationEnv(t, st, &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}, MaxClients: 3, UnusedClientTTL: time.Hour})
		meta := map[string]any{"grant_types": []string{"client_credentials"}}
		var ids []map[string]any
		for i := range 3 {
			resp, m := e.register(t, meta, "", fmt.Sprintf("2001:db8:%x::1", i))
			if resp.StatusCode != 201 {
				t.Fatalf("registration %d: %d %v", i+1, resp.StatusCode, m)
			}
			ids = append(ids, m)
		}
		resp, m := e.register(t, meta, "", "2001:db8:ff::1")
		if resp.StatusCode != 503 || !strings.Contains(m["error_description"].(string), "max_clients") {
			t.Fatalf("past the budget, from yet another network: %d %v", resp.StatusCode, m)
		}
		// One obtains a token; all were made long ago.
		used := ids[0]
		if st := e.post("/oauth/token", form("grant_type", "client_credentials"), []string{used["client_id"].(string), used["client_secret"].(string)}).StatusCode; st != 200 {
			t.Fatalf("a token for the used client: %d", st)
		}
		waitUse(t, e, used["client_id"].(string))
		for _, m := range ids {
			if err := e.store.UpdateClient(t.Context(), m["client_id"].(string), func(c *store.Client) error {
				c.CreatedAt = time.Now().Add(-2 * time.Hour)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.srv.ExpireRegistrations(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n, _ := e.store.CountClients(t.Context()); n != 1 {
			t.Fatalf("%d clients after expiring the unused ones, want the used one alone", n)
		}
		if _, err := e.store.Client(t.Context(), used["client_id"].(string)); err != nil {
			t.Fatalf("the used registration was removed: %v", err)
		}
		if resp, m := e.register(t, meta, "", "2001:db8:ff::1"); resp.StatusCode != 201 {
			t.Fatalf("with room in the budget again: %d %v", resp.StatusCode, m)
		}
	})
}

func TestRegistrationInitialAccessTokenAndManagement(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		e := newRegistrationEnv(t, st, &authserver.RegistrationConfig{InitialAccessToken: "let-me-in", Scopes: []string{"read"}})
		meta := map[string]any{"client_name": "Agent", "redirect_uris": []string{"https://agent.example/cb"}}
		for _, bearer := range []string{"", "wrong"} {
			if resp, _ := e.register(t, meta, bearer, "192.0.2.9"); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
				t.Errorf("registering with %q: %d", bearer, resp.StatusCode)
			}
		}
		resp, m := e.register(t, meta, "let-me-in", "192.0.2.9")
		if resp.StatusCode != 201 {
			t.Fatalf("with the token: %d %v", resp.StatusCode, m)
		}
		uri, rat := m["registration_client_uri"].(string), m["registration_access_token"].(string)
		local := strings.Replace(uri, issuer, e.http.URL, 1)
		manage := func(method, token string, body any) (*http.Response, map[string]any) {
			return e.sendJSON(method, local, body, token, "192.0.2.9")
		}
		if resp, _ := manage("GET", "nope", nil); resp.StatusCode != 401 {
			t.Fatalf("read with a wrong token: %d", resp.StatusCode)
		}
		if resp, got := manage("GET", rat, nil); resp.StatusCode != 200 || got["client_name"] != "Agent" {
			t.Fatalf("read: %d %v", resp.StatusCode, got)
		}
		used := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UTC()
		if err := e.store.UpdateClient(t.Context(), m["client_id"].(string), func(c *store.Client) error { c.LastUsedAt = used; return nil }); err != nil {
			t.Fatal(err)
		}
		if resp, got := manage("PUT", rat, map[string]any{"client_name": "Agent 2", "redirect_uris": []string{"https://agent.example/cb2"}}); resp.StatusCode != 200 || got["client_name"] != "Agent 2" {
			t.Fatalf("update: %d %v", resp.StatusCode, got)
		}
		// The update keeps client_ttl's clock: the client's last use.
		if c, err := e.store.Client(t.Context(), m["client_id"].(string)); err != nil || !c.LastUsedAt.Equal(used) {
			t.Fatalf("after the update: %+v %v, want last used %s", c, err, used)
		}
		if resp, _ := manage("DELETE", rat, nil); resp.StatusCode != 204 {
			t.Fatalf("delete: %d", resp.StatusCode)
		}
		if resp, _ := manage("GET", rat, nil); resp.StatusCode != 401 {
			t.Fatalf("read after delete: %d", resp.StatusCode)
		}
	})
}

// Registrations are limited per address: the 21st in an hour is refused
// with when to retry; another address is not affected.
func TestRegistrationRateLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		e := newRegistrationEnv(t, st, &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}})
		meta := map[string]any{"redirect_uris": []string{"https://agent.example/cb"}}
		for i := range 20 {
			if resp, m := e.register(t, meta, "", "203.0.113.5"); resp.StatusCode != 201 {
				t.Fatalf("registration %d: %d %v", i+1, resp.StatusCode, m)
			}
		}
		resp, m := e.register(t, meta, "", "203.0.113.5")
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(m["error_description"].(string), "retry after") {
			t.Fatalf("the 21st: %d %v", resp.StatusCode, m)
		}
		if resp, _ := e.register(t, meta, "", "203.0.113.6"); resp.StatusCode != 201 {
			t.Fatalf("another address: %d", resp.StatusCode)
		}
	})
}

// Registered clients unused for client_ttl are removed with their tokens;
// a token issued to one records its use (off the request path).
func TestRegistrationClientTTL(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		e := newRegistrationEnv(t, st, &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}, ClientTTL: time.Hour})
		meta := map[string]any{"grant_types": []string{"client_credentials"}}
		_, used := e.register(t, meta, "", "192.0.2.1")
		_, idle := e.register(t, meta, "", "192.0.2.1")
		tok := decode(t, e.post("/oauth/token", form("grant_type", "client_credentials"), []string{idle["client_id"].(string), idle["client_secret"].(string)}))["access_token"].(string)
		waitUse(t, e, idle["client_id"].(string)) // that use is written down off the request path
		// Both were registered long ago; one was used since.
		for _, m := range []map[string]any{used, idle} {
			c, err := e.store.Client(t.Context(), m["client_id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			c.CreatedAt = time.Now().Add(-2 * time.Hour)
			c.LastUsedAt = time.Time{}
			if m["client_id"] == used["client_id"] {
				c.LastUsedAt = time.Now().Add(-10 * time.Minute)
			}
			if err := e.store.PutClient(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.srv.ExpireRegistrations(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Client(t.Context(), idle["client_id"].(string)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the idle registration is still there: %v", err)
		}
		if _, err := e.validator.Validate(tok); err == nil {
			t.Fatal("the removed client's token still validates")
		}
		if _, err := e.store.Client(t.Context(), used["client_id"].(string)); err != nil {
			t.Fatalf("the used registration was removed: %v", err)
		}
	})
}

// waitUse waits until a token issued to client id has been recorded.
func waitUse(t *testing.T, e *env, id string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := e.store.Client(t.Context(), id)
		if err == nil && !c.LastUsedAt.IsZero() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a token issued to a registered client did not record its use")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RFC 7592's PUT replaces a registration as a new one is checked: a switch
// from private_key_jwt to a secret method answers with a new secret that
// works (and the keys stop working); a switch back deletes the secret.
func TestRegistrationUpdateSwitchesCredentials(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		sg := newSigner(t)
		e := newRegistrationEnv(t, st, &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}})
		keyed := map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(sg.jwks)}
		resp, m := e.register(t, keyed, "", "192.0.2.30")
		if resp.StatusCode != 201 {
			t.Fatalf("registering: %d %v", resp.StatusCode, m)
		}
		id, rat := m["client_id"].(string), m["registration_access_token"].(string)
		local := strings.Replace(m["registration_client_uri"].(string), issuer, e.http.URL, 1)
		byAssertion := func(jti string) int {
			return e.post("/oauth/token", form("grant_type", "client_credentials", "client_assertion_type", client.AssertionType,
				"client_assertion", sg.assertion(t, id, issuer, jti, time.Minute)), nil).StatusCode
		}
		bySecret := func(secret string) int {
			return e.post("/oauth/token", form("grant_type", "client_credentials"), []string{id, secret}).StatusCode
		}

		put := func(body map[string]any) (*http.Response, map[string]any) {
			return e.sendJSON("PUT", local, body, rat, "192.0.2.30")
		}
		method := func(m string) map[string]any {
			return map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": m}
		}
		resp, got := put(method("client_secret_basic"))
		secret, _ := got["client_secret"].(string)
		if resp.StatusCode != 200 || secret == "" || got["client_secret_expires_at"] == nil {
			t.Fatalf("switching to client_secret_basic: %d %v, want a new secret", resp.StatusCode, got)
		}
		if st := bySecret(secret); st != 200 {
			t.Fatalf("the new secret: %d", st)
		}
		if st := byAssertion("a-1"); st != 401 {
			t.Fatalf("the keys after switching away from them: %d", st)
		}
		// Another secret method keeps the secret; a PUT that says nothing
		// new does not hand it out again.
		resp, got = put(method("client_secret_post"))
		if resp.StatusCode != 200 || got["client_secret"] != nil || bySecret(secret) != 200 {
			t.Fatalf("client_secret_post: %d %v", resp.StatusCode, got)
		}

		resp, got = put(keyed)
		if resp.StatusCode != 200 || got["client_secret"] != nil || got["client_secret_expires_at"] != nil {
			t.Fatalf("switching back to private_key_jwt: %d %v", resp.StatusCode, got)
		}
		if st := bySecret(secret); st != 401 {
			t.Fatalf("the old secret beside the keys: %d", st)
		}
		if st := byAssertion("a-2"); st != 200 {
			t.Fatalf("the keys again: %d", st)
		}
		// A PUT that leaves the client unable to authenticate is refused.
		resp, got = put(method("private_key_jwt"))
		if resp.StatusCode != 400 || got["error"] != "invalid_client_metadata" {
			t.Fatalf("private_key_jwt without keys: %d %v", resp.StatusCode, got)
		}
	})
}

// Pages show hosts in ASCII and names without the characters that hide or
// reorder text: a look-alike host reads as its punycode, a name's U+202E
// and U+200B are gone.
func TestPagesShowWhatApplicationsClaimSafely(t *testing.T) {
	e := newRegistrationEnv(t, openStore(t), &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}})
	const lookalike = "g\u043e\u043egle.com" // Cyrillic о twice
	resp, m := e.register(t, map[string]any{"client_name": "Goo\u202egle\u200b Docs", "client_uri": "https://" + lookalike + "/about",
		"redirect_uris": []string{"https://" + lookalike + "/cb"}, "token_endpoint_auth_method": "none"}, "", "192.0.2.50")
	if resp.StatusCode != 201 {
		t.Fatalf("registering: %d %v", resp.StatusCode, m)
	}
	ascii, err := idna.Lookup.ToASCII(lookalike)
	if err != nil || !strings.HasPrefix(ascii, "xn--") {
		t.Fatalf("punycode of %s: %s %v", lookalike, ascii, err)
	}
	p := e.person()
	res, err := p.Get(e.authURL("response_type", "code", "client_id", m["client_id"].(string), "redirect_uri", "https://"+lookalike+"/cb",
		"scope", "read", "code_challenge", challenge(verifier), "code_challenge_method", "S256"))
	if err != nil || res.Page == nil {
		t.Fatalf("sign-in page: %v %+v", err, res)
	}
	login, err := res.Page.Form()
	if err != nil {
		t.Fatal(err)
	}
	login.Fields.Set("username", "mark")
	login.Fields.Set("password", markPassword)
	if res, err = p.Post(login.Action, login.Fields); err != nil || res.Page == nil || !res.Page.Has("decision") {
		t.Fatalf("consent page: %v %+v", err, res)
	}
	body := res.Page.Body
	for _, want := range []string{"<h2>Google Docs</h2>", "sends you back to <strong>" + ascii + "</strong>", "https://" + ascii + "/about"} {
		if !strings.Contains(body, want) {
			t.Errorf("the consent page does not show %q:\n%s", want, body)
		}
	}
	// (The form's hidden fields carry the request as it came.)
	shown := regexp.MustCompile(`<input[^>]*>`).ReplaceAllString(body, "")
	for _, hidden := range []string{lookalike, "\u202e", "\u200b"} {
		if strings.Contains(shown, hidden) {
			t.Errorf("the consent page shows %q", hidden)
		}
	}
}
