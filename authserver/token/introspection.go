package token

// RFC 7662: token introspection.

import (
	"errors"
	"net/http"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/introspect"
)

// IntrospectionResponse is RFC 7662 §2.2's answer.
type IntrospectionResponse struct {
	Active    bool                `json:"active"`
	Scope     string              `json:"scope,omitempty"`
	ClientID  string              `json:"client_id,omitempty"`
	Subject   string              `json:"sub,omitempty"`
	ExpiresAt int64               `json:"exp,omitempty"`
	IssuedAt  int64               `json:"iat,omitempty"`
	Issuer    string              `json:"iss,omitempty"`
	Audience  introspect.Audience `json:"aud,omitempty"`
	JTI       string              `json:"jti,omitempty"`
	TokenType string              `json:"token_type,omitempty"`
	// Confirmation is the key a DPoP-bound token is bound to (RFC 9449
	// §6.2: cnf.jkt).
	Confirmation *introspect.Confirmation `json:"cnf,omitempty"`
}

// ServeIntrospect is RFC 7662's endpoint. Callers authenticate as a
// client; a client may introspect its own tokens, a resource server any.
// The verdict is bearer_auth's: the same validator, in memory.
func (s *Service) ServeIntrospect(w http.ResponseWriter, r *http.Request) {
	form, e := oauth.ReadForm(w, r)
	var cl *client.Client
	if e == nil {
		cl, e = s.clientAuth.Authenticate(r, form)
	}
	if e == nil && cl.Public {
		e = oauth.ErrInvalidClient("introspection needs a confidential client (or one marked resource_server)")
	}
	token := form.Get("token")
	if e == nil && token == "" {
		e = oauth.ErrInvalidRequest("token is missing")
	}
	if e != nil {
		oauth.WriteError(w, e)
		return
	}
	c, err := s.validator.Validate(token, "")
	var te *introspect.TokenError
	if errors.As(err, &te) && te.Reason == introspect.ReasonStale {
		oauth.WriteError(w, oauth.ErrTemporarilyUnavailable("revocations cannot be checked right now; retry shortly"))
		return
	}
	if err != nil || (c.ClientID != cl.ID && !cl.ResourceServer) {
		oauth.WriteJSON(w, http.StatusOK, &IntrospectionResponse{Active: false})
		return
	}
	tokenType := "Bearer"
	if c.Confirmation != nil {
		tokenType = "DPoP"
	}
	oauth.WriteJSON(w, http.StatusOK, &IntrospectionResponse{Active: true, Scope: c.Scope, ClientID: c.ClientID, Subject: c.Subject,
		ExpiresAt: c.ExpiresAt, IssuedAt: c.IssuedAt, Issuer: c.Issuer, Audience: c.Audience, JTI: c.ID, TokenType: tokenType,
		Confirmation: c.Confirmation})
}
