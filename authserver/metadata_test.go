package authserver_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
)

func newServerAt(t *testing.T, st store.Store, iss string) (*authserver.Server, error) {
	return authserver.New(t.Context(), authserver.Config{Issuer: iss, Store: st})
}

func TestMetadata(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.http.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m authserver.Metadata
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Issuer != issuer || m.TokenEndpoint != issuer+"/oauth/token" || m.JWKSURI != issuer+"/oauth/jwks" {
		t.Fatalf("metadata %+v", m)
	}
	if strings.Join(m.GrantTypesSupported, " ") != "authorization_code client_credentials refresh_token urn:ietf:params:oauth:grant-type:device_code urn:ietf:params:oauth:grant-type:jwt-bearer urn:ietf:params:oauth:grant-type:token-exchange" ||
		m.DeviceAuthorizationEndpoint != issuer+"/oauth/device" {
		t.Fatalf("grant_types_supported %v", m.GrantTypesSupported)
	}
	if m.AuthorizationEndpoint != issuer+"/oauth/authorize" || strings.Join(m.ResponseTypesSupported, " ") != "code" ||
		strings.Join(m.CodeChallengeMethodsSupported, " ") != "S256" || !m.AuthorizationResponseISSSupported {
		t.Fatalf("authorization metadata %+v", m)
	}
}

func TestIssuerValidation(t *testing.T) {
	for iss, ok := range map[string]bool{
		"https://auth.example.com":      true,
		"https://auth.example.com/t1":   true,
		"http://localhost:8080":         true,
		"http://127.0.0.1:9000":         true,
		"":                              false,
		"auth.example.com":              false,
		"http://auth.example.com":       false,
		"https://auth.example.com/":     false,
		"https://auth.example.com?x=1":  false,
		"https://auth.example.com#frag": false,
	} {
		_, err := authserver.ValidateIssuer(iss)
		if (err == nil) != ok {
			t.Errorf("ValidateIssuer(%q) = %v, want ok=%v", iss, err, ok)
		}
	}
}

func TestClientValidation(t *testing.T) {
	base := func() *client.Client {
		return &client.Client{ID: "c", SecretHash: client.HashSecretSHA256("x"), GrantTypes: []string{client.GrantAuthorizationCode},
			RedirectURIs: []string{"https://app.example.com/cb"}, Scopes: []string{"read"}}
	}
	tests := map[string]func(c *client.Client){
		"public with client_credentials": func(c *client.Client) {
			c.Public, c.SecretHash, c.GrantTypes = true, "", []string{client.GrantClientCredentials}
		},
		"relative redirect URI":       func(c *client.Client) { c.RedirectURIs = []string{"/cb"} },
		"redirect URI with fragment":  func(c *client.Client) { c.RedirectURIs = []string{"https://a.example/cb#x"} },
		"http redirect URI":           func(c *client.Client) { c.RedirectURIs = []string{"http://a.example/cb"} },
		"code grant without redirect": func(c *client.Client) { c.RedirectURIs = nil },
		"unknown grant":               func(c *client.Client) { c.GrantTypes = []string{"password"} },
		"no grant":                    func(c *client.Client) { c.GrantTypes = nil },
		"confidential without secret": func(c *client.Client) { c.SecretHash = "" },
		"bad scope":                   func(c *client.Client) { c.Scopes = []string{`a"b`} },
	}
	if err := client.Validate(base()); err != nil {
		t.Fatalf("valid client refused: %v", err)
	}
	for name, mutate := range tests {
		c := base()
		mutate(c)
		if err := client.Validate(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := base()
	ok.RedirectURIs = []string{"http://127.0.0.1/callback", "http://[::1]/cb", "com.example.app:/oauth"}
	if err := client.Validate(ok); err != nil {
		t.Errorf("loopback and private-use redirect URIs refused: %v", err)
	}
}
