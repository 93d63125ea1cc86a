package authserver_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/internal/dpoptest"
)

// tokenWithProof posts a token request with a DPoP header, if given.
func (e *env) tokenWithProof(t *testing.T, f url.Values, proof string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.http.URL+"/oauth/token", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp := e.do(req)
	return resp.StatusCode, decode(t, resp)
}

// A public client's refresh tokens are bound to the key it proved at the
// exchange: a refresh without the proof, or with another key, fails
// invalid_dpop_proof and leaves the token usable; with the key it works,
// and the new refresh token is bound too.
func TestDPoPRefreshBinding(t *testing.T) {
	eachStore(t, func(t *testing.T, db store.Store) {
		e := newEnvWith(t, db, "ES256")
		k := dpoptest.New(t, jwa.ES256())
		tokenURL := issuer + "/oauth/token"
		code := e.codeFor(t, e.person(), e.authURL("response_type", "code", "client_id", "native", "redirect_uri", "http://127.0.0.1:5000/callback",
			"scope", "read", "state", "s", "code_challenge", challenge(verifier), "code_challenge_method", "S256"))
		st, m := e.tokenWithProof(t, form("grant_type", "authorization_code", "code", code, "client_id", "native",
			"redirect_uri", "http://127.0.0.1:5000/callback", "code_verifier", verifier), k.Proof(t, "POST", tokenURL, ""))
		if st != 200 || m["token_type"] != "DPoP" || m["refresh_token"] == nil {
			t.Fatalf("the exchange with a proof: %d %v", st, m)
		}
		rt := m["refresh_token"].(string)
		refresh := form("grant_type", "refresh_token", "refresh_token", rt, "client_id", "native")
		for name, proof := range map[string]string{"no proof": "", "another key": dpoptest.New(t, jwa.ES256()).Proof(t, "POST", tokenURL, "")} {
			if st, m := e.tokenWithProof(t, refresh, proof); st != 400 || m["error"] != "invalid_dpop_proof" {
				t.Fatalf("refresh with %s: %d %v", name, st, m)
			}
		}
		st, m = e.tokenWithProof(t, refresh, k.Proof(t, "POST", tokenURL, ""))
		if st != 200 || m["token_type"] != "DPoP" {
			t.Fatalf("refresh with the key, after the refused attempts: %d %v", st, m)
		}
		next := form("grant_type", "refresh_token", "refresh_token", m["refresh_token"].(string), "client_id", "native")
		if st, m := e.tokenWithProof(t, next, ""); st != 400 || m["error"] != "invalid_dpop_proof" {
			t.Fatalf("the successor without the key: %d %v", st, m)
		}
	})
}

// dpopToken posts a client_credentials request of svc's with the DPoP
// headers given.
func (e *env) dpopToken(t *testing.T, client, secret string, proofs ...string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	w := httptest.NewRecorder()
	e.srv.Handler("/oauth/token").ServeHTTP(w, req)
	return w.Code, decode(t, w.Result())
}

// A token request with a DPoP proof gets a token bound to the proof's key
// (cnf.jkt, token_type DPoP), which introspection reports; a proof works
// once, on every store; a client that must use DPoP is refused without.
func TestDPoPTokenEndpoint(t *testing.T) {
	eachStore(t, func(t *testing.T, db store.Store) {
		e := newEnvWith(t, db, "ES256", func(c *authserver.Config) {
			c.Clients = append(c.Clients, &client.Client{ID: "bound", Name: "Bound", SecretHash: client.HashSecretSHA256("b"),
				GrantTypes: []string{client.GrantClientCredentials}, Scopes: []string{"read"}, RequireDPoP: true, ResourceServer: true})
		})
		k := dpoptest.New(t, jwa.ES256())
		proof := k.Proof(t, "POST", issuer+"/oauth/token", "")
		st, m := e.dpopToken(t, "svc", "s3cret", proof)
		if st != 200 || m["token_type"] != "DPoP" {
			t.Fatalf("with a proof: %d %v", st, m)
		}
		c, err := e.validator.Validate(m["access_token"].(string))
		if err != nil || c.Confirmation == nil || c.Confirmation.JKT != k.JKT() {
			t.Fatalf("the token's cnf: %+v %v", c, err)
		}
		// Introspection reports the binding.
		intro := e.post("/oauth/introspect", form("token", m["access_token"].(string)), []string{"bound", "b"})
		if im := decode(t, intro); im["token_type"] != "DPoP" || im["cnf"].(map[string]any)["jkt"] != k.JKT() {
			t.Fatalf("introspection: %v", im)
		}
		if st, m := e.dpopToken(t, "svc", "s3cret", proof); st != 400 || m["error"] != "invalid_dpop_proof" {
			t.Fatalf("the same proof again: %d %v", st, m)
		}
		for name, proofs := range map[string][]string{
			"a proof for another URL": {k.Proof(t, "POST", "https://evil.example.com/oauth/token", "")},
			"two proofs":              {k.Proof(t, "POST", issuer+"/oauth/token", ""), k.Proof(t, "POST", issuer+"/oauth/token", "")},
			"garbage":                 {"nope"},
		} {
			if st, m := e.dpopToken(t, "svc", "s3cret", proofs...); st != 400 || m["error"] != "invalid_dpop_proof" {
				t.Errorf("%s: %d %v", name, st, m)
			}
		}
		if st, m := e.dpopToken(t, "svc", "s3cret"); st != 200 || m["token_type"] != "Bearer" {
			t.Fatalf("without a proof: %d %v", st, m)
		}
		if st, m := e.dpopToken(t, "bound", "b"); st != 400 || m["error"] != "invalid_dpop_proof" {
			t.Fatalf("require_dpop without a proof: %d %v", st, m)
		}
		if st, _ := e.dpopToken(t, "bound", "b", k.Proof(t, "POST", issuer+"/oauth/token", "")); st != 200 {
			t.Fatalf("require_dpop with a proof: %d", st)
		}
		md := decode(t, e.do(mustReq(t, "GET", e.http.URL+"/.well-known/oauth-authorization-server")))
		if algs, _ := md["dpop_signing_alg_values_supported"].([]any); len(algs) == 0 {
			t.Fatalf("metadata %v", md)
		}
	})
}

// A client that registers with dpop_bound_access_tokens must prove its key
// on every token request (RFC 9449 §5.2).
func TestDPoPBoundRegistration(t *testing.T) {
	e := newRegistrationEnv(t, openStore(t), &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}})
	resp, m := e.register(t, map[string]any{"grant_types": []string{"client_credentials"}, "dpop_bound_access_tokens": true}, "", "192.0.2.1")
	if resp.StatusCode != 201 || m["dpop_bound_access_tokens"] != true {
		t.Fatalf("register: %d %v", resp.StatusCode, m)
	}
	id, secret := m["client_id"].(string), m["client_secret"].(string)
	if st, m := e.dpopToken(t, id, secret); st != 400 || m["error"] != "invalid_dpop_proof" {
		t.Fatalf("without a proof: %d %v", st, m)
	}
	if st, m := e.dpopToken(t, id, secret, dpoptest.New(t, jwa.ES256()).Proof(t, "POST", issuer+"/oauth/token", "")); st != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("with a proof: %d %v", st, m)
	}
}
