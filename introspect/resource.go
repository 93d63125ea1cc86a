package introspect

// RFC 9728: a protected resource describes itself (which authorization
// server guards it, which scopes it knows) at a well-known URL, and points
// clients there from its challenges.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/jose"
	"github.com/tokengate/tokengate/outbound"
)

// WellKnownResourcePath is the well-known suffix of RFC 9728 §3.
const WellKnownResourcePath = "/.well-known/oauth-protected-resource"

// ProtectedResource is one resource behind bearer_auth.
type ProtectedResource struct {
	// Resource is the resource identifier, as configured (and so
	// byte-identical in the document and in tokens' aud).
	Resource string
	// Name is shown to people (resource_name).
	Name string
	// Scopes are the scopes the route requires.
	Scopes []string
	// MoreScopes are scopes some of its requests need besides (an MCP
	// tool's): listed in scopes_supported, never asked for by a 401.
	MoreScopes []string
	// Issuer is the authorization server guarding it.
	Issuer string
	// SigningAlgs are the algorithms its tokens are signed with.
	SigningAlgs []string
	// DPoPRequired says it takes DPoP-bound tokens only (RFC 9449 §7.4's
	// dpop_bound_access_tokens_required).
	DPoPRequired bool

	path, url string
	document  []byte
}

// ValidateResource checks a resource identifier: an absolute https URL
// (http for loopback hosts), with no query or fragment, its scheme and host
// in lower case, so that one resource has one spelling (RFC 8707 §2, RFC
// 9728 §1.2) and tokens' aud can be compared byte for byte.
func ValidateResource(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("resource %q must be an absolute URL such as https://mcp.example.com/mcp", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "?#") {
		return fmt.Errorf("resource %q must not have a query or fragment", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && outbound.IsLoopbackHost(u.Hostname()):
	default:
		return fmt.Errorf("resource %q must use https (http only for loopback hosts)", raw)
	}
	if !strings.HasPrefix(raw, strings.ToLower(u.Scheme+"://"+u.Host)) {
		return fmt.Errorf("resource %q must have its scheme and host in lower case: %s", raw, strings.ToLower(u.Scheme+"://"+u.Host)+u.EscapedPath())
	}
	return nil
}

// Prepare checks the resource and builds its document; call it once,
// before serving.
func (p *ProtectedResource) Prepare() error {
	if err := ValidateResource(p.Resource); err != nil {
		return err
	}
	if p.Issuer == "" {
		return errors.New("a protected resource needs its authorization server's issuer")
	}
	u, _ := url.Parse(p.Resource)
	// RFC 9728 §3.1: the well-known segment goes between the host and the
	// resource's path; a resource without a path has the bare form.
	p.path = WellKnownResourcePath + strings.TrimSuffix(u.EscapedPath(), "/")
	p.url = u.Scheme + "://" + u.Host + p.path
	doc := struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported,omitempty"`
		BearerMethods        []string `json:"bearer_methods_supported"`
		Name                 string   `json:"resource_name,omitempty"`
		SigningAlgs          []string `json:"resource_signing_alg_values_supported,omitempty"`
		DPoPAlgs             []string `json:"dpop_signing_alg_values_supported"`
		DPoPRequired         bool     `json:"dpop_bound_access_tokens_required"`
	}{p.Resource, []string{p.Issuer}, oauth.AppendMissing(slices.Clone(p.Scopes), p.MoreScopes...), []string{"header"}, p.Name, p.SigningAlgs, jose.Asymmetric, p.DPoPRequired}
	var err error
	p.document, err = json.Marshal(doc)
	return err
}

// MetadataPath is the path the document is served at.
func (p *ProtectedResource) MetadataPath() string { return p.path }

// MetadataURL is the document's URL, for challenges (resource_metadata).
func (p *ProtectedResource) MetadataURL() string { return p.url }

// Document is the RFC 9728 §2 metadata, as JSON.
func (p *ProtectedResource) Document() []byte { return p.document }
