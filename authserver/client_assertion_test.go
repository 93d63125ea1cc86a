package authserver_test

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/internal/keytest"
	"github.com/tokengate/tokengate/outbound"
)

// signer is a client's private key and its public JWK Set.
type signer struct {
	key  jwk.Key
	jwks []byte
}

func newSigner(t *testing.T) *signer {
	key, set := keytest.ES256(t, "k1")
	return &signer{key, set}
}

// assertion is a client assertion of client for aud, expiring in life.
func (s *signer) assertion(t *testing.T, client, aud, jti string, life time.Duration) string {
	t.Helper()
	tok, _ := jwt.NewBuilder().Issuer(client).Subject(client).Audience([]string{aud}).JwtID(jti).
		IssuedAt(time.Now()).Expiration(time.Now().Add(life)).Build()
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), s.key, jws.WithProtectedHeaders(jws.NewHeaders())))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// serveKeys publishes the signer's JWK Set on an https server of the
// test's own, trusted by the pool it returns, counting the fetches.
func (s *signer) serveKeys(t *testing.T) (*httptest.Server, *x509.CertPool, *atomic.Int64) {
	var fetches atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write(s.jwks)
	}))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, pool, &fetches
}

func TestPrivateKeyJWT(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		sg := newSigner(t)
		e := newEnvWith(t, st, "ES256", func(c *authserver.Config) {
			c.Clients = append(c.Clients, &client.Client{ID: "keyed", Name: "Keyed", JWKS: sg.jwks,
				GrantTypes: []string{client.GrantClientCredentials}, Scopes: []string{"read"}})
		})
		token := func(assertion string, extra ...string) (int, map[string]any) {
			resp := e.post("/oauth/token", form(append([]string{"grant_type", "client_credentials",
				"client_assertion_type", client.AssertionType, "client_assertion", assertion}, extra...)...), nil)
			return resp.StatusCode, decode(t, resp)
		}
		good := sg.assertion(t, "keyed", issuer, "jti-1", time.Minute)
		if st, m := token(good); st != 200 {
			t.Fatalf("a good assertion: %d %v", st, m)
		}
		if st, m := token(good); st != 401 || m["error"] != "invalid_client" {
			t.Fatalf("a replayed assertion: %d %v", st, m)
		}
		if st, _ := token(sg.assertion(t, "keyed", issuer+"/oauth/token", "jti-2", time.Minute), "client_id", "keyed"); st != 200 {
			t.Fatalf("aud = the token endpoint, with client_id: %d", st)
		}
		for name, a := range map[string]string{
			"wrong aud":         sg.assertion(t, "keyed", "https://elsewhere.example", "jti-3", time.Minute),
			"too long":          sg.assertion(t, "keyed", issuer, "jti-4", time.Hour),
			"expired":           sg.assertion(t, "keyed", issuer, "jti-5", -time.Minute),
			"another's key":     newSigner(t).assertion(t, "keyed", issuer, "jti-6", time.Minute),
			"not a JWT":         "nope",
			"unsigned":          "eyJhbGciOiJub25lIn0.eyJpc3MiOiJrZXllZCJ9.",
			"a secret client's": sg.assertion(t, "svc", issuer, "jti-7", time.Minute),
		} {
			if st, m := token(a); st != 401 || m["error"] != "invalid_client" {
				t.Errorf("%s: %d %v", name, st, m)
			}
		}
		if st, _ := token(sg.assertion(t, "keyed", issuer, "jti-8", time.Minute), "client_id", "svc"); st != 401 {
			t.Errorf("client_id differing from iss: %d", st)
		}
		md := decode(t, e.do(mustReq(t, "GET", e.http.URL+"/.well-known/oauth-authorization-server")))
		if methods, _ := json.Marshal(md["token_endpoint_auth_methods_supported"]); !strings.Contains(string(methods), `"private_key_jwt"`) || md["token_endpoint_auth_signing_alg_values_supported"] == nil {
			t.Fatalf("metadata %v", md)
		}
		// A dynamic client may register with its keys.
		r := newRegistrationEnv(t, openStore(t), &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}})
		resp, m := r.register(t, map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
			"jwks": json.RawMessage(sg.jwks)}, "", "192.0.2.1")
		if resp.StatusCode != 201 || m["client_secret"] != nil {
			t.Fatalf("registering with keys: %d %v", resp.StatusCode, m)
		}
		id := m["client_id"].(string)
		if st := r.post("/oauth/token", form("grant_type", "client_credentials", "client_assertion_type", client.AssertionType,
			"client_assertion", sg.assertion(t, id, issuer, "jti-9", time.Minute)), nil).StatusCode; st != 200 {
			t.Fatalf("the registered keyed client: %d", st)
		}
		if resp, _ := r.register(t, map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt"}, "", "192.0.2.1"); resp.StatusCode != 400 {
			t.Fatalf("private_key_jwt without keys: %d", resp.StatusCode)
		}
	})
}

// A registered client's jwks_uri is fetched through the guarded client and
// kept a while: two assertions, one fetch. Keys of its set that cannot be
// used are left out, not the set.
func TestPrivateKeyJWTWithJWKSURI(t *testing.T) {
	sg := newSigner(t)
	for _, k := range keytest.Unusable(t) {
		sg.jwks = keytest.WithKeys(t, sg.jwks, k)
	}
	keys, pool, fetches := sg.serveKeys(t)
	r := newRegistrationEnv(t, openStore(t), &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"},
		Fetcher: outbound.New(outbound.Options{RootCAs: pool, AllowPrivateHosts: []string{"127.0.0.1"}})})
	resp, m := r.register(t, map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
		"jwks_uri": keys.URL + "/jwks.json"}, "", "192.0.2.1")
	if resp.StatusCode != 201 {
		t.Fatalf("registering with a jwks_uri: %d %v", resp.StatusCode, m)
	}
	id := m["client_id"].(string)
	for _, jti := range []string{"u-1", "u-2"} {
		st := r.post("/oauth/token", form("grant_type", "client_credentials", "client_assertion_type", client.AssertionType,
			"client_assertion", sg.assertion(t, id, issuer, jti, time.Minute)), nil).StatusCode
		if st != 200 {
			t.Fatalf("assertion %s: %d", jti, st)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("the key set was fetched %d times for two assertions", n)
	}
	// The same mixed set, registered inline.
	resp, m = r.register(t, map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
		"jwks": json.RawMessage(sg.jwks)}, "", "192.0.2.2")
	if resp.StatusCode != 201 {
		t.Fatalf("registering a set with unusable keys beside a good one: %d %v", resp.StatusCode, m)
	}
	st := r.post("/oauth/token", form("grant_type", "client_credentials", "client_assertion_type", client.AssertionType,
		"client_assertion", sg.assertion(t, m["client_id"].(string), issuer, "u-3", time.Minute)), nil).StatusCode
	if st != 200 {
		t.Fatalf("an assertion of the inline mixed set: %d", st)
	}
}

// A config client's jwks_uri is the operator's URL: fetched through the
// trusted client, so a loopback key server (plain http included) works. A
// dynamic client naming the same URL still meets the guard: the config
// client's cached set is not its way past it.
func TestConfigClientJWKSURI(t *testing.T) {
	sg := newSigner(t)
	keys, pool, fetches := sg.serveKeys(t)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(sg.jwks) }))
	defer plain.Close()
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.ConfigFetcher = outbound.New(outbound.Options{Trusted: true, RootCAs: pool})
		c.Registration = &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"},
			Fetcher: outbound.New(outbound.Options{RootCAs: pool})}
		for id, u := range map[string]string{"keyed-https": keys.URL + "/jwks.json", "keyed-http": plain.URL + "/jwks.json"} {
			c.Clients = append(c.Clients, &client.Client{ID: id, Name: id, JWKSURI: u,
				GrantTypes: []string{client.GrantClientCredentials}, Scopes: []string{"read"}})
		}
	})
	token := func(id, jti string) (int, map[string]any) {
		resp := e.post("/oauth/token", form("grant_type", "client_credentials", "client_assertion_type", client.AssertionType,
			"client_assertion", sg.assertion(t, id, issuer, jti, time.Minute)), nil)
		return resp.StatusCode, decode(t, resp)
	}
	for _, jti := range []string{"c-1", "c-2"} {
		if st, m := token("keyed-https", jti); st != 200 {
			t.Fatalf("config client over https, %s: %d %v", jti, st, m)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("the key set was fetched %d times for two assertions", n)
	}
	if st, m := token("keyed-http", "c-3"); st != 200 {
		t.Fatalf("config client over loopback http: %d %v", st, m)
	}
	resp, m := e.register(t, map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
		"jwks_uri": keys.URL + "/jwks.json"}, "", "192.0.2.1")
	if resp.StatusCode != 201 {
		t.Fatalf("registering with a jwks_uri: %d %v", resp.StatusCode, m)
	}
	st, m := token(m["client_id"].(string), "c-4")
	if st != 401 || !strings.Contains(m["error_description"].(string), "loopback") {
		t.Fatalf("a dynamic client's loopback jwks_uri: %d %v", st, m)
	}
	if fetches.Load() != 1 {
		t.Fatal("the guarded fetch reached the loopback server")
	}
	// Config errors name the field.
	for u, want := range map[string]string{"http://keys.example.com/jwks": "must use https", "jwks.json": "absolute URL"} {
		_, err := authserver.New(t.Context(), authserver.Config{Issuer: issuer, Store: openStore(t), Clients: []*client.Client{{ID: "k", Name: "k",
			JWKSURI: u, GrantTypes: []string{client.GrantClientCredentials}}}})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Field != "jwks_uri" || !strings.Contains(err.Error(), want) {
			t.Errorf("jwks_uri %q: %v", u, err)
		}
	}
}
