package client

// RFC 7591 §2 and §3.1: the metadata a client registers itself with (or
// describes itself with in a metadata document), its limits, and the
// client it makes.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/outbound"
	"github.com/tokengate/tokengate/trust"
)

// MaxNameLength is the most characters of a client's name: what
// registration and metadata documents accept, and what a page shows of
// any name.
const MaxNameLength = 200

// maxRegistration bounds a registration request's body.
const maxRegistration = 64 << 10

// Limits of registered metadata (and of metadata documents): each is far
// above what a client needs (an MCP client has a few redirect URIs and a
// short name), and together they bound what one registration costs the
// store: a few KB, not the 64 KB a request may carry.
const (
	maxRedirectURIs   = 20
	maxURILength      = 2000
	maxContacts       = 10
	maxContactLength  = 320 // RFC 5321's longest address
	maxSoftwareLength = 200
	maxScopeLength    = 2000
	maxMetadataBytes  = 16 << 10 // the metadata as registered, jwks included
)

// CheckMetadataLimits refuses metadata past the limits, naming the member
// and the limit.
func CheckMetadataLimits(m *Metadata) error {
	if n := utf8.RuneCountInString(m.ClientName); n > MaxNameLength {
		return fmt.Errorf("client_name has %d characters: at most %d", n, MaxNameLength)
	}
	if len(m.RedirectURIs) > maxRedirectURIs {
		return fmt.Errorf("redirect_uris has %d URIs: at most %d", len(m.RedirectURIs), maxRedirectURIs)
	}
	if len(m.PostLogoutRedirectURIs) > maxRedirectURIs {
		return fmt.Errorf("post_logout_redirect_uris has %d URIs: at most %d", len(m.PostLogoutRedirectURIs), maxRedirectURIs)
	}
	if len(m.Contacts) > maxContacts {
		return fmt.Errorf("contacts has %d entries: at most %d", len(m.Contacts), maxContacts)
	}
	for _, f := range []struct {
		name   string
		values []string
		max    int
	}{
		{"redirect_uris", m.RedirectURIs, maxURILength},
		{"client_uri", []string{m.ClientURI}, maxURILength},
		{"jwks_uri", []string{m.JWKSURI}, maxURILength},
		{"contacts", m.Contacts, maxContactLength},
		{"software_id", []string{m.SoftwareID}, maxSoftwareLength},
		{"software_version", []string{m.SoftwareVersion}, maxSoftwareLength},
		{"scope", []string{m.Scope}, maxScopeLength},
		{"grant_types", m.GrantTypes, maxSoftwareLength},
		{"response_types", m.ResponseTypes, maxSoftwareLength},
		{"token_endpoint_auth_method", []string{m.TokenEndpointAuthMethod}, maxSoftwareLength},
		{"application_type", []string{m.ApplicationType}, maxSoftwareLength},
		{"post_logout_redirect_uris", m.PostLogoutRedirectURIs, maxURILength},
		{"backchannel_logout_uri", []string{m.BackchannelLogoutURI}, maxURILength},
		{"id_token_signed_response_alg", []string{m.IDTokenSignedResponseAlg}, maxSoftwareLength},
	} {
		for _, v := range f.values {
			if len(v) > f.max {
				return fmt.Errorf("%s has a value of %d bytes: at most %d", f.name, len(v), f.max)
			}
		}
	}
	if len(m.GrantTypes) > len(GrantNames) || len(m.ResponseTypes) > 1 {
		return errors.New("grant_types or response_types holds more values than there are")
	}
	if b, _ := json.Marshal(m); len(b) > maxMetadataBytes {
		return fmt.Errorf("the metadata takes %d bytes: at most %d (jwks included; give a jwks_uri for a large key set)", len(b), maxMetadataBytes)
	}
	return nil
}

// AuthMethods are the token endpoint authentication methods a client may
// use (RFC 7591's token_endpoint_auth_method; the metadata lists them).
var AuthMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}

// RegistrationResponse is RFC 7591 §3.2.1's answer (and RFC 7592's).
type RegistrationResponse struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	Metadata
}

// NewRegistrationResponse is the answer describing c, whose RFC 7592
// configuration endpoint is configURI; the caller adds the secret and
// the registration access token when it made them.
func NewRegistrationResponse(c *Client, configURI string) *RegistrationResponse {
	resp := &RegistrationResponse{ClientID: c.ID, ClientIDIssuedAt: c.CreatedAt.Unix(), RegistrationClientURI: configURI}
	if c.Metadata != nil {
		resp.Metadata = *c.Metadata
	}
	if c.SecretHash != "" {
		zero := int64(0)
		resp.ClientSecretExpiresAt = &zero
	}
	return resp
}

func errRegistration(code, format string, args ...any) *oauth.Error {
	return oauth.NewError(code, http.StatusBadRequest, format, args...)
}

// FromMetadata validates RFC 7591 metadata (filling in its defaults) and
// makes the client it describes, which may obtain scopes (the
// registration's, whatever the metadata asks of them) and have its ID
// tokens signed with one of idTokenAlgs.
func FromMetadata(m *Metadata, scopes, idTokenAlgs []string) (*Client, *oauth.Error) {
	if err := CheckMetadataLimits(m); err != nil {
		return nil, errRegistration("invalid_client_metadata", "%v", err)
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{GrantAuthorizationCode}
	}
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{"code"}
	}
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if !slices.Contains(AuthMethods, m.TokenEndpointAuthMethod) {
		return nil, errRegistration("invalid_client_metadata", "token_endpoint_auth_method %q is not supported: use %s", m.TokenEndpointAuthMethod, strings.Join(AuthMethods, ", "))
	}
	public := m.TokenEndpointAuthMethod == "none"
	c := &Client{ID: NewID(), Name: strings.TrimSpace(m.ClientName), Website: m.ClientURI, Public: public,
		RedirectURIs: m.RedirectURIs, Source: SourceDynamic, CreatedAt: time.Now().UTC(), RequireDPoP: m.DPoPBoundAccessTokens}
	if m.TokenEndpointAuthMethod == "private_key_jwt" {
		switch {
		case (len(m.JWKS) > 0) == (m.JWKSURI != ""):
			return nil, errRegistration("invalid_client_metadata", "private_key_jwt needs the client's keys: give jwks or jwks_uri (one of them)")
		case m.JWKSURI != "":
			if err := outbound.CheckURL(m.JWKSURI, false); err != nil {
				return nil, errRegistration("invalid_client_metadata", "jwks_uri: %v", err)
			}
		case len(m.JWKS) > 0:
			ks, err := trust.ReadKeySet(m.JWKS)
			if err != nil {
				return nil, errRegistration("invalid_client_metadata", "jwks: %v", err)
			}
			if ks.Set.Len() == 0 {
				return nil, errRegistration("invalid_client_metadata", "jwks holds no signing key tokengate can use: %v", errors.Join(ks.Dropped...))
			}
		}
		c.JWKS, c.JWKSURI = m.JWKS, m.JWKSURI
	} else if len(m.JWKS) > 0 || m.JWKSURI != "" {
		return nil, errRegistration("invalid_client_metadata", "jwks and jwks_uri go with token_endpoint_auth_method private_key_jwt")
	}
	for _, g := range m.GrantTypes {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken:
		case GrantClientCredentials: // for a confidential client only: Validate's rule
		default:
			return nil, errRegistration("invalid_client_metadata", "grant_types may hold authorization_code, refresh_token and client_credentials, not %q", g)
		}
		if !slices.Contains(c.GrantTypes, g) {
			c.GrantTypes = append(c.GrantTypes, g)
		}
	}
	// OpenID Connect Registration §2's values, which MCP clients send; a
	// code-flow client of either kind may use every redirect URI form
	// allowed below, so the kind is recorded, not enforced further.
	if m.ApplicationType != "" && m.ApplicationType != "web" && m.ApplicationType != "native" {
		return nil, errRegistration("invalid_client_metadata", "application_type must be web or native, not %q", m.ApplicationType)
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return nil, errRegistration("invalid_client_metadata", "response_types may only hold code, not %q", rt)
		}
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) && len(m.RedirectURIs) == 0 {
		return nil, errRegistration("invalid_redirect_uri", "redirect_uris is required for the authorization_code grant")
	}
	for _, u := range m.RedirectURIs {
		if err := ValidateExactRedirectURI(u); err != nil {
			return nil, errRegistration("invalid_redirect_uri", "redirect_uri %q: %v", u, err)
		}
	}
	if m.ClientURI != "" {
		if err := ValidateWebsite(m.ClientURI); err != nil {
			return nil, errRegistration("invalid_client_metadata", "client_uri: %v", err)
		}
	}
	if e := openIDMetadata(c, m, idTokenAlgs); e != nil {
		return nil, e
	}
	// A registered client may obtain every scope of the registration's (the
	// person consents to each request). MCP clients register with the scope
	// of the first challenge they meet and step up later (403
	// insufficient_scope) without registering again, so the scope asked for
	// is checked, then replaced by that list, as the answer says (RFC 7591
	// §3.2.1 lets the server replace a value).
	allowed := scopes
	for _, sc := range strings.Fields(m.Scope) {
		if !slices.Contains(allowed, sc) {
			return nil, errRegistration("invalid_client_metadata", "scope %q is not one registered clients may have: ask for some of %q", sc, strings.Join(allowed, " "))
		}
	}
	c.Scopes = slices.Clone(allowed)
	m.Scope = strings.Join(c.Scopes, " ")
	if c.Name == "" {
		c.Name = c.ID
		if len(c.RedirectURIs) > 0 {
			if u, err := url.Parse(c.RedirectURIs[0]); err == nil && u.Host != "" {
				c.Name = u.Host
			}
		}
	}
	c.Metadata = m
	// The secret is drawn once the registration is accepted.
	probe := *c
	if !c.Public && !UsesAssertion(c) {
		probe.SecretHash = sha256Prefix
	}
	if err := Validate(&probe); err != nil {
		return nil, errRegistration("invalid_client_metadata", "%v", err)
	}
	return c, nil
}

// openIDMetadata takes OpenID Connect's registration members into c.
func openIDMetadata(c *Client, m *Metadata, idTokenAlgs []string) *oauth.Error {
	for _, u := range m.PostLogoutRedirectURIs {
		if err := ValidateExactRedirectURI(u); err != nil {
			return errRegistration("invalid_client_metadata", "post_logout_redirect_uri %q: %v", u, err)
		}
	}
	if u := m.BackchannelLogoutURI; u != "" {
		if err := outbound.CheckURL(u, false); err != nil || strings.Contains(u, "#") {
			return errRegistration("invalid_client_metadata", "backchannel_logout_uri %q must be an https URL without a fragment", u)
		}
	}
	if m.BackchannelLogoutSessionRequired && m.BackchannelLogoutURI == "" {
		return errRegistration("invalid_client_metadata", "backchannel_logout_session_required needs a backchannel_logout_uri")
	}
	if a := m.IDTokenSignedResponseAlg; a != "" && !slices.Contains(idTokenAlgs, a) {
		return errRegistration("invalid_client_metadata", "id_token_signed_response_alg %q is not one this server signs ID tokens with: use one of %s",
			a, strings.Join(idTokenAlgs, ", "))
	}
	c.PostLogoutRedirectURIs, c.BackchannelLogoutURI = m.PostLogoutRedirectURIs, m.BackchannelLogoutURI
	c.BackchannelLogoutSessionRequired, c.IDTokenAlg = m.BackchannelLogoutSessionRequired, m.IDTokenSignedResponseAlg
	return nil
}

// ReadMetadata reads a registration request's JSON body, at most
// maxRegistration bytes.
func ReadMetadata(w http.ResponseWriter, r *http.Request) (*Metadata, *oauth.Error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, errRegistration("invalid_client_metadata", "send the client metadata as application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistration))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &oauth.Error{Code: "invalid_client_metadata", Description: "the registration is larger than 64 KB", Status: http.StatusRequestEntityTooLarge}
	}
	m := new(Metadata)
	if err != nil || json.Unmarshal(body, m) != nil {
		return nil, errRegistration("invalid_client_metadata", "the body is not a JSON object of client metadata (RFC 7591 §2)")
	}
	return m, nil
}
