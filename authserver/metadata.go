package authserver

// RFC 8414: authorization server metadata, OpenID Connect Discovery 1.0 §3's
// provider metadata, and the JWK Set endpoint (RFC 7517).

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/token"
	"github.com/tokengate/tokengate/authserver/web"
	"github.com/tokengate/tokengate/jose"
)

// Metadata is the RFC 8414 authorization server metadata.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	DPoPSigningAlgs                   []string `json:"dpop_signing_alg_values_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	AuthorizationResponseISSSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported,omitempty"`
}

// Metadata describes what this server offers, derived from the endpoints and
// grants it actually serves.
func (s *Server) Metadata() *Metadata {
	m := &Metadata{
		Issuer:                            s.cfg.Issuer,
		AuthorizationEndpoint:             s.endpointURL(web.PathAuthorize),
		TokenEndpoint:                     s.endpointURL(PathToken),
		JWKSURI:                           s.endpointURL(PathJWKS),
		DeviceAuthorizationEndpoint:       s.endpointURL(PathDeviceAuthorization),
		RevocationEndpoint:                s.endpointURL(PathRevoke),
		IntrospectionEndpoint:             s.endpointURL(PathIntrospect),
		ResponseTypesSupported:            []string{"code"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		AuthorizationResponseISSSupported: true,
		GrantTypesSupported:               s.tokens.GrantTypes(),
		TokenEndpointAuthMethodsSupported: client.AuthMethods,
		TokenEndpointAuthSigningAlgs:      jose.Asymmetric,
		DPoPSigningAlgs:                   jose.Asymmetric,
	}
	if s.cfg.Registration != nil {
		m.RegistrationEndpoint = s.endpointURL(PathRegister)
		m.ClientIDMetadataDocumentSupported = s.clients.AcceptsDocuments()
	}
	for _, c := range s.cfg.Clients {
		m.ScopesSupported = oauth.AppendMissing(m.ScopesSupported, c.Scopes...)
	}
	slices.Sort(m.ScopesSupported)
	return m
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	s.serveJSONDocument(w, r, "the metadata", s.Metadata())
}

// serveJSONDocument serves one of the discovery documents, which change
// only with the configuration and so are cached for a few minutes.
func (s *Server) serveJSONDocument(w http.ResponseWriter, r *http.Request, what string, v any) {
	doc, err := json.Marshal(v)
	if err != nil {
		oauth.WriteError(w, s.obs.failures.Internal("encoding "+what, err))
		return
	}
	oauth.ServeDocument(w, r, "application/json", "public, max-age=300", doc)
}

// OpenIDConfiguration is OpenID Connect Discovery 1.0 §3's provider
// metadata: RFC 8414's, and what a relying party needs besides.
type OpenIDConfiguration struct {
	Metadata
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgs                []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	BackchannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool     `json:"backchannel_logout_session_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	ClaimsParameterSupported          bool     `json:"claims_parameter_supported"`
}

// OpenIDConfiguration describes this server as an OpenID Provider: every
// ID token algorithm a client may have (RS256 first, Discovery §3's
// requirement), the OpenID scopes beside the clients', and the claims
// those release.
func (s *Server) OpenIDConfiguration() *OpenIDConfiguration {
	m := *s.Metadata()
	m.ScopesSupported = oauth.AppendMissing(m.ScopesSupported, token.ScopeOpenID, token.ScopeProfile, token.ScopeEmail, "offline_access")
	slices.Sort(m.ScopesSupported)
	algs := oauth.AppendMissing([]string{keys.IDTokenAlg}, s.rt.keys.Algs()...)
	return &OpenIDConfiguration{Metadata: m,
		UserinfoEndpoint:                  s.endpointURL(PathUserinfo),
		EndSessionEndpoint:                s.endpointURL(web.PathEndSession),
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgs:                algs,
		ClaimsSupported:                   []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "sid", "name", "preferred_username", "email", "email_verified"},
		ResponseModesSupported:            []string{"query"},
		PromptValuesSupported:             []string{"none", "login", "consent", "select_account"},
		BackchannelLogoutSupported:        true,
		BackchannelLogoutSessionSupported: true,
	}
}

func (s *Server) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	s.serveJSONDocument(w, r, "the OpenID configuration", s.OpenIDConfiguration())
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	// Cached briefly, because a rotation publishes the new key moments
	// before use unless it was scheduled with a delay.
	oauth.ServeDocument(w, r, "application/jwk-set+json", "public, max-age=60", s.rt.keys.JWKS())
}
