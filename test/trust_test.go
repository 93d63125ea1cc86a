package test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/issuertest"
)

// A route that accepts tokengate's own tokens and another issuer's (a JWT
// and, through introspection, an opaque one), and a route of an issuer
// that cannot be reached.
const trustCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		client robot {
			secret robot-secret
			grant client_credentials
			scope read
			audience https://api.example.com
		}
		trust REMOTE {
			audience https://api.example.com
			introspection {
				client_id gateway
				client_secret {env.GW_SECRET}
				cache_ttl 500ms
			}
		}
		trust DOWN {
			audience https://api.example.com
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
http://127.0.0.1:{{.API}} {
	handle /down/* {
		bearer_auth {
			issuer DOWN
		}
		respond "unreachable"
	}
	handle {
		bearer_auth {
			issuer self REMOTE
			audience https://api.example.com
			scope read
		}
		reverse_proxy {{.Upstream}} {
			header_up X-User {http.auth.user.id}
			header_up X-Email {http.auth.user.claims.email}
			header_up X-Groups {http.auth.user.claims.groups}
		}
	}
}
`

func TestTrustedIssuer(t *testing.T) {
	remote := issuertest.New(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens there any more
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(strings.NewReplacer("REMOTE", remote.URL, "DOWN", down.URL).Replace(trustCaddyfile), "GW_SECRET=gw-secret")

	call := func(path, tok string) (int, *http.Request) { return up.through(t, g.APIURL()+path, tok) }
	// The other issuer's JWT, its claims reaching the upstream.
	st, seen := call("/things", remote.Token(t, "JWT", map[string]any{"email": "mark@example.com", "groups": []string{"eng", "ops"}}))
	if st != 200 || seen.Header.Get("X-User") != "u-1" || seen.Header.Get("X-Email") != "mark@example.com" || seen.Header.Get("X-Groups") != "eng ops" {
		t.Fatalf("the trusted issuer's token: %d %v", st, seen)
	}
	// tokengate's own, on the same route.
	own, err := ccToken(t, g, "robot", "robot-secret")
	if err != nil {
		t.Fatal(err)
	}
	if st, seen := call("/things", own); st != 200 || seen.Header.Get("X-User") != "robot" || seen.Header.Get("X-Email") != "" {
		t.Fatalf("tokengate's own token: %d %v", st, seen)
	}
	for name, tok := range map[string]string{
		"another audience":    remote.Token(t, "JWT", map[string]any{"aud": "https://other.example.com"}),
		"without the scope":   remote.Token(t, "JWT", map[string]any{"scope": "write"}),
		"an untrusted issuer": issuertest.New(t).Token(t, "JWT", nil),
	} {
		if st, seen := call("/things", tok); st == 200 || seen != nil {
			t.Errorf("%s: %d, and the upstream saw it: %v", name, st, seen != nil)
		}
	}
	// An opaque token, introspected; revoked at the issuer, refused once
	// the cached answer is over.
	remote.SetActive("opaque-1", map[string]any{"active": true, "scope": "read", "sub": "u-2", "aud": "https://api.example.com",
		"exp": time.Now().Add(time.Hour).Unix()})
	if st, seen := call("/things", "opaque-1"); st != 200 || seen.Header.Get("X-User") != "u-2" {
		t.Fatalf("an introspected token: %d %v", st, seen)
	}
	remote.SetActive("opaque-1", nil)
	time.Sleep(600 * time.Millisecond)
	if st, _ := call("/things", "opaque-1"); st != 401 {
		t.Fatalf("revoked at the issuer, after cache_ttl: %d", st)
	}
	// An issuer that cannot be reached: 503 on its tokens, never a pass.
	if st, _ := call("/down/x", remote.Token(t, "JWT", map[string]any{"iss": down.URL})); st != 503 {
		t.Fatalf("an unreachable issuer's token: %d", st)
	}
}

// A route naming an issuer no trust block describes, or an introspection
// secret from an unset variable, stops the start with the fix.
func TestTrustProvisionErrors(t *testing.T) {
	g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
	for name, tc := range map[string]struct{ caddyfile, want string }{
		"untrusted issuer": {strings.NewReplacer("REMOTE", "https://sso.example.com", "DOWN", "https://down.example.com", "issuer self REMOTE", "issuer self https://other.example.com").Replace(trustCaddyfile),
			"issuer https://other.example.com is not trusted: add trust https://other.example.com"},
		"unset secret": {strings.NewReplacer("REMOTE", "https://sso.example.com", "DOWN", "https://down.example.com").Replace(trustCaddyfile),
			"client_secret \"{env.GW_SECRET}\" is empty once placeholders are replaced"},
	} {
		path := filepath.Join(g.dir, "Caddyfile."+strings.ReplaceAll(name, " ", "-"))
		writeFile(t, path, render(t, tc.caddyfile, g.Ports))
		secret := "GW_SECRET=x"
		if name == "unset secret" {
			secret = "GW_SECRET="
		}
		out, err := run(t, []string{secret, "XDG_DATA_HOME=" + g.dir}, "validate", "--config", path, "--adapter", "caddyfile")
		out = strings.ReplaceAll(out, `\"`, `"`)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: validate said (%v):\n%s\nwant it to mention %q", name, err, out, tc.want)
		}
	}
}
