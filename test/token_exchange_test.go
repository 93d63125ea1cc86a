package test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tokengate/tokengate/internal/nodetest"
)

// exchangeCaddyfile has a service (svc) whose tokens "orders" may
// exchange for the inventory API ({{.API}}), behind bearer_auth.
const exchangeCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		client svc {
			secret svc-secret
			grant client_credentials
			scope read write
		}
		client orders {
			secret orders-secret
			grant token_exchange
			exchange http://127.0.0.1:{{.API}} read
			exchange_from self
		}
	}
}

http://127.0.0.1:{{.Auth}} {
	oauth2_server
}

http://127.0.0.1:{{.API}} {
	bearer_auth {
		audience http://127.0.0.1:{{.API}}
		scope read
	}
	reverse_proxy {{.Upstream}} {
		header_up X-User {http.auth.user.id}
	}
}
`

// panva's oauth4webapi exchanges a service's token through the real
// binary (genericTokenEndpointRequest, OpenID discovery), and the exchanged token
// works at the resource as the subject, acted on by the exchanging client.
func TestTokenExchangeWithOAuth4WebAPI(t *testing.T) {
	dir := nodetest.Dir(t, "oidc")
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(exchangeCaddyfile)
	subject, err := ccToken(t, g, "svc", "svc-secret")
	if err != nil {
		t.Fatal(err)
	}
	_, lines, stderr := startNodeClient(t, dir, "exchange-client.mjs", g.AuthURL(), "orders", "orders-secret", subject, g.APIURL())
	var m map[string]any
	if err := json.Unmarshal([]byte(readResult(t, lines, stderr, nil)), &m); err != nil {
		t.Fatal(err)
	}
	tok, _ := m["access_token"].(string)
	if m["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || m["scope"] != "read" || m["refresh_token"] != nil || tok == "" {
		t.Fatalf("the exchange: %v", m)
	}
	c, err := decodeClaims(tok)
	if err != nil || c["sub"] != "svc" || c["client_id"] != "orders" || c["aud"] != g.APIURL() {
		t.Fatalf("the exchanged token's claims: %v %v", c, err)
	}
	if act, _ := c["act"].(map[string]any); act["sub"] != "orders" {
		t.Fatalf("act: %v", c["act"])
	}
	code, seen := up.through(t, g.APIURL()+"/items", tok)
	if code != http.StatusOK || seen.Header.Get("X-User") != "svc" {
		t.Fatalf("the resource with the exchanged token: %d %v", code, seen)
	}
	// The subject's own token is not for the resource: only the
	// exchanged one is.
	if code, _ := up.through(t, g.APIURL()+"/items", subject); code != http.StatusUnauthorized {
		t.Fatalf("the subject token at the resource: %d", code)
	}
}
