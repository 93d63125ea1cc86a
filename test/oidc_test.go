package test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokengate/tokengate/internal/nodetest"
)

// provider is panva's oidc-provider running on a port of the test's.
type provider struct {
	t      *testing.T
	dir    string
	port   int
	issuer string
	stop   func()
}

// startProvider runs oidc-provider (test/oidc/provider.mjs) signing with a
// fresh key named keyID; env adds to its environment (RP_REDIRECT).
func startProvider(t *testing.T, port int, keyID string, env ...string) *provider {
	t.Helper()
	p := &provider{t: t, dir: nodetest.Dir(t, "oidc"), port: port}
	if p.port == 0 {
		p.port = freePort(t)
	}
	cmd := nodetest.Command(p.dir, "provider.mjs", append([]string{"KEY_ID=" + keyID}, env...), itoa(p.port))
	stdout, _ := cmd.StdoutPipe()
	log := new(syncBuffer)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	p.stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(p.stop)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- iss
			}
		}
	}()
	select {
	case p.issuer = <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("oidc-provider did not start:\n%s", log)
	}
	return p
}

// token gets a client credentials token of the provider's for resource.
func (p *provider) token(resource string) string {
	p.t.Helper()
	cfg := clientcredentials.Config{ClientID: "robot", ClientSecret: "robot-secret", TokenURL: p.issuer + "/token", Scopes: []string{"read"},
		EndpointParams: url.Values{"resource": {resource}}}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		p.t.Fatalf("the provider's token for %s: %v", resource, err)
	}
	return tok.AccessToken
}

// revoke revokes a token of robot's at the provider.
func (p *provider) revoke(token string) {
	p.t.Helper()
	req, _ := http.NewRequest("POST", p.issuer+"/token/revocation", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("robot", "robot-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		p.t.Fatalf("revoking at the provider: %v %v", err, resp)
	}
	resp.Body.Close()
}

// A route of tokengate's that trusts oidc-provider: its JWT access tokens
// verified in process, its opaque ones introspected, its claims passed
// upstream.
const oidcTrustCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		trust PROVIDER {
			audience https://api.example.com
			introspection {
				client_id gateway
				client_secret gw-secret
				cache_ttl 1s
			}
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
http://127.0.0.1:{{.API}} {
	bearer_auth {
		issuer PROVIDER
		scope read
	}
	reverse_proxy {{.Upstream}} {
		header_up X-User {http.auth.user.id}
		header_up X-Email {http.auth.user.claims.email}
		header_up X-Groups {http.auth.user.claims.groups}
	}
}
`

// tokengate accepting oidc-provider's access tokens, as an API behind it
// would: JWTs with the provider's keys (refused for another audience,
// followed through a key rotation), opaque tokens through introspection
// (a revocation at the provider honoured after the cache TTL), and the
// provider down.
func TestOIDCProviderTokens(t *testing.T) {
	op := startProvider(t, 0, "key-1")
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	started := time.Now()
	g.start(strings.ReplaceAll(oidcTrustCaddyfile, "PROVIDER", op.issuer))
	call := func(tok string) (int, *http.Request) {
		before := len(up.seen())
		resp, _ := get(t, http.DefaultClient, "GET", g.APIURL()+"/things", "Authorization", "Bearer "+tok)
		if seen := up.seen(); len(seen) > before {
			return resp.StatusCode, seen[len(seen)-1]
		}
		return resp.StatusCode, nil
	}

	jwt := op.token("https://api.example.com")
	st, seen := call(jwt)
	if st != 200 || seen.Header.Get("X-User") != "robot" || seen.Header.Get("X-Email") != "robot@example.com" || seen.Header.Get("X-Groups") != "eng ops" {
		t.Fatalf("the provider's JWT: %d %v", st, seen)
	}
	if st, _ := call(op.token("https://other.example.com")); st != 401 {
		t.Fatalf("the provider's JWT for another audience: %d", st)
	}
	opaque := op.token("https://opaque.example.com")
	if st, seen := call(opaque); st != 200 || seen.Header.Get("X-Email") != "robot@example.com" {
		t.Fatalf("the provider's opaque token: %d %v", st, seen)
	}
	op.revoke(opaque)
	if st, _ := call(opaque); st != 200 {
		t.Fatalf("a revoked opaque token within the cache TTL: %d (the cached answer stands)", st)
	}
	time.Sleep(1100 * time.Millisecond)
	if st, _ := call(opaque); st != 401 {
		t.Fatalf("a revoked opaque token after the cache TTL: %d", st)
	}

	// The provider goes down: its JWTs still verify (the keys are held),
	// a token only it could vouch for is a 503.
	unseen := op.token("https://opaque.example.com")
	op.stop()
	if st, _ := call(jwt); st != 200 {
		t.Fatalf("a JWT with the provider down: %d", st)
	}
	if st, _ := call(unseen); st != 503 {
		t.Fatalf("an opaque token with the provider down: %d", st)
	}

	// It comes back with a new key: a token under it makes tokengate fetch
	// the keys again (once 30 s have passed since the last fetch).
	time.Sleep(time.Until(started.Add(31 * time.Second)))
	op = startProvider(t, op.port, "key-2")
	if st, _ := call(op.token("https://api.example.com")); st != 200 {
		t.Fatalf("a token under the provider's new key: %d\n%s", st, g.log)
	}
}
