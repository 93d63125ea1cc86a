package introspect_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/introspect"
)

func TestValidateResource(t *testing.T) {
	for _, ok := range []string{"https://mcp.example.com/mcp", "https://api.example.com", "http://127.0.0.1:8081/mcp", "http://localhost:3000/"} {
		if err := introspect.ValidateResource(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"mcp.example.com/mcp", "/mcp", "https://mcp.example.com/mcp?x=1", "https://mcp.example.com/mcp#top",
		"http://mcp.example.com/mcp", "https://MCP.example.com/mcp", "HTTPS://mcp.example.com/mcp", "ftp://mcp.example.com/"} {
		if err := introspect.ValidateResource(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// The document sits at the path-inserted well-known URL (RFC 9728 §3.1),
// the bare one for a resource without a path, and names what a client
// needs; challenges point at it.
func TestProtectedResource(t *testing.T) {
	for resource, path := range map[string]string{
		"https://mcp.example.com/mcp": "/.well-known/oauth-protected-resource/mcp",
		"https://mcp.example.com/a/b": "/.well-known/oauth-protected-resource/a/b",
		"https://mcp.example.com":     "/.well-known/oauth-protected-resource",
		"https://mcp.example.com/":    "/.well-known/oauth-protected-resource",
		"http://127.0.0.1:8081/mcp/":  "/.well-known/oauth-protected-resource/mcp",
	} {
		p := &introspect.ProtectedResource{Resource: resource, Issuer: "https://auth.example.com"}
		if err := p.Prepare(); err != nil {
			t.Fatal(err)
		}
		if p.MetadataPath() != path {
			t.Errorf("%s: metadata at %s, want %s", resource, p.MetadataPath(), path)
		}
	}
	p := &introspect.ProtectedResource{Resource: "https://mcp.example.com/mcp", Name: "Droplet MCP", Scopes: []string{"mcp", "read"},
		Issuer: "https://auth.example.com", SigningAlgs: []string{"ES256"}, DPoPRequired: true}
	if err := p.Prepare(); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(p.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	want := `{"authorization_servers":["https://auth.example.com"],"bearer_methods_supported":["header"],"dpop_bound_access_tokens_required":true,` +
		`"dpop_signing_alg_values_supported":["ES256","ES384","ES512","EdDSA","PS256","PS384","PS512","RS256","RS384","RS512"],` +
		`"resource":"https://mcp.example.com/mcp","resource_name":"Droplet MCP","resource_signing_alg_values_supported":["ES256"],"scopes_supported":["mcp","read"]}`
	if got, _ := json.Marshal(doc); string(got) != want {
		t.Errorf("document %s\nwant     %s", got, want)
	}
	meta := `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`
	w := httptest.NewRecorder()
	p.WriteChallenge(w, "mcp", &introspect.Failure{Status: http.StatusUnauthorized, Description: "no token"})
	if h := w.Header().Get("WWW-Authenticate"); !strings.Contains(h, meta) || !strings.Contains(h, `scope="mcp read"`) {
		t.Errorf("401 challenge %q", h)
	}
	w = httptest.NewRecorder()
	p.WriteChallenge(w, "mcp", &introspect.Failure{Status: http.StatusForbidden, Code: "insufficient_scope", Description: "more", Scope: "mcp read"})
	if h := w.Header().Get("WWW-Authenticate"); !strings.Contains(h, meta) || !strings.Contains(h, `error="insufficient_scope"`) {
		t.Errorf("403 challenge %q", h)
	}
}
