package authserver

import (
	"encoding/json"
	"net/http"
	"slices"
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
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	AuthorizationResponseISSSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// Metadata describes what this server offers, derived from the endpoints and
// grants it actually serves.
func (s *Server) Metadata() *Metadata {
	m := &Metadata{
		Issuer:                            s.cfg.Issuer,
		TokenEndpoint:                     s.endpointURL(PathToken),
		JWKSURI:                           s.endpointURL(PathJWKS),
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               s.grantTypes(),
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "none"},
	}
	for _, c := range s.clients {
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
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &Error{Code: "invalid_request", Description: "use GET for the metadata", Status: http.StatusMethodNotAllowed})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(s.Metadata())
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &Error{Code: "invalid_request", Description: "use GET for the JWK Set", Status: http.StatusMethodNotAllowed})
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Short, because a rotation publishes the new key moments before use
	// unless it was scheduled with a delay.
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(s.keys.JWKS())
}
