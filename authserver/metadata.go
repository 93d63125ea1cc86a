package authserver

// RFC 8414: authorization server metadata, and the JWK Set endpoint (RFC 7517).

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
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
		for _, sc := range c.Scopes {
			if !slices.Contains(m.ScopesSupported, sc) {
				m.ScopesSupported = append(m.ScopesSupported, sc)
			}
		}
	}
	slices.Sort(m.ScopesSupported)
	return m
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	doc, err := json.Marshal(s.Metadata())
	if err != nil {
		oauth.WriteError(w, s.obs.failures.Internal("encoding the metadata", err))
		return
	}
	oauth.ServeDocument(w, r, "application/json", "public, max-age=300", doc)
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	// Cached briefly, because a rotation publishes the new key moments
	// before use unless it was scheduled with a delay.
	oauth.ServeDocument(w, r, "application/jwk-set+json", "public, max-age=60", s.rt.keys.JWKS())
}
