package client_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver/client"
)

// An administrator's registration becomes a client through the one set
// of client rules; what is the server's to set cannot be sent.
func TestInfoNewClient(t *testing.T) {
	ok := client.Info{Name: "Billing", GrantTypes: []string{"client_credentials"}, Scope: "read write"}
	c, secret, e := ok.NewClient("id1")
	if e != nil {
		t.Fatal(e)
	}
	if c.ID != "id1" || secret == "" || !client.VerifySecret(c.SecretHash, secret) || !slices.Equal(c.Scopes, []string{"read", "write"}) ||
		!slices.Equal(c.GrantTypes, []string{client.GrantClientCredentials}) {
		t.Fatalf("client %+v, secret %q", c, secret)
	}
	if back := client.InfoOf(c, client.SourceRegistered); back.Scope != "read write" || back.GrantTypes[0] != "client_credentials" || back.Source != "registered" {
		t.Fatalf("shown as %+v", back)
	}
	for name, tc := range map[string]struct {
		info client.Info
		want string
	}{
		"no name":               {client.Info{GrantTypes: []string{"client_credentials"}}, "name is required"},
		"client_id sent":        {client.Info{ID: "mine", Name: "x", GrantTypes: []string{"client_credentials"}}, "the server's to set"},
		"secret sent":           {client.Info{Secret: "s", Name: "x", GrantTypes: []string{"client_credentials"}}, "the server's to set"},
		"created_at sent":       {client.Info{CreatedAt: time.Now(), Name: "x", GrantTypes: []string{"client_credentials"}}, "the server's to set"},
		"unknown grant":         {client.Info{Name: "x", GrantTypes: []string{"password"}}, `unknown grant "password"`},
		"public cc":             {client.Info{Name: "x", Public: true, GrantTypes: []string{"client_credentials"}}, "client_credentials needs a confidential client"},
		"website":               {client.Info{Name: "x", Website: "ftp://x", GrantTypes: []string{"client_credentials"}}, "website"},
		"code without redirect": {client.Info{Name: "x", GrantTypes: []string{"authorization_code"}}, "needs at least one redirect_uri"},
	} {
		if _, _, e := tc.info.NewClient("id2"); e == nil || e.Code != "invalid_request" || !strings.Contains(e.Description, tc.want) {
			t.Errorf("%s: %v, want invalid_request with %q", name, e, tc.want)
		}
	}
}
