package token

// OpenID Connect Core 1.0 §5.3: the UserInfo endpoint, with RFC 6750's (and
// RFC 9449's) way of presenting the access token.

import (
	"context"
	"errors"
	"net/http"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
)

// userinfoResponse is §5.3.2's answer: sub and the claims the token's
// scopes release.
type userinfoResponse struct {
	Subject string `json:"sub"`
	UserClaims
}

// ServeUserinfo is the UserInfo endpoint (GET or POST): the access token
// is checked as bearer_auth checks it (in memory, DPoP-bound tokens with
// their proof), and must carry openid.
func (s *Service) ServeUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		oauth.WriteError(w, oauth.MethodNotAllowed(w, http.MethodGet, http.MethodPost))
		return
	}
	// Browser-based relying parties call it from their own origin.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	c, f := s.validator.Authorize(r, []string{ScopeOpenID})
	if c != nil {
		// The binding comes before the scope, as at bearer_auth.
		if bf := s.userinfoDPoP.CheckBinding(r, s.userinfoURL, c); bf != nil {
			f = bf
		}
	}
	if f != nil {
		introspect.WriteChallenge(w, s.cfg.Issuer, f)
		return
	}
	id, err := s.identity(r.Context(), c)
	if err != nil {
		oauth.WriteError(w, s.failures.Store("reading a grant's claims", err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	oauth.WriteJSON(w, http.StatusOK, &userinfoResponse{Subject: c.Subject, UserClaims: ReleasedClaims(id, c.Scope)})
}

// userinfoURL is the URL DPoP proofs for the UserInfo endpoint name.
func (s *Service) userinfoURL(*http.Request) string { return s.cfg.UserinfoEndpoint }

// identity is what the token's person's claims are: a configured user's
// from the configuration (no store round trip), anyone else's (a login
// provider's people) as their grant keeps them, cached; none for a token
// of no grant (a client's own).
func (s *Service) identity(ctx context.Context, c *introspect.Claims) (*store.OpenID, error) {
	if s.people != nil {
		if id, ok := s.people(c.Subject); ok {
			return &id, nil
		}
	}
	if c.GrantID == "" {
		return nil, nil
	}
	if id, ok := s.grantClaims.get(c.GrantID); ok {
		return id, nil
	}
	g, err := s.store.Grant(ctx, c.GrantID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // forgotten: sub is all there is to say
	}
	if err != nil {
		return nil, err
	}
	s.grantClaims.put(c.GrantID, g.OpenID)
	return g.OpenID, nil
}
