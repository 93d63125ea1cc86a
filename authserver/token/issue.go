package token

// RFC 6749 §5.1: what every grant shares: minting the token pair, the audit line, revoking a grant.

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
	"go.uber.org/zap"
)

func (s *Service) auditIssued(req *tokenRequest, claims *introspect.Claims) {
	s.metrics.TokenIssued(req.grant, req.client.ID)
	s.uses.Note(req.client)
	event := "token issued"
	if req.grant == client.GrantRefreshToken {
		event = "token refreshed"
	}
	// Room for the requester's address, which the audit line adds.
	fields := append(make([]zap.Field, 0, 7),
		zap.String("client_id", req.client.ID),
		zap.String("sub", claims.Subject),
		zap.String("grant_type", req.grant),
		zap.String("grant_id", claims.GrantID),
		zap.String("scope", claims.Scope),
		zap.String("jti", claims.ID))
	s.audit(req.r.Context(), event, fields...)
}

// grantState is what tokens of one authorization share.
type grantState struct {
	id, subject, scope string
	authTime           time.Time
	// resource is the RFC 8707 resource the grant is for ("" for none).
	resource string
	// openID is the person's identity when the grant has openid (nil
	// otherwise), and nonce its authorization request's.
	openID *store.OpenID
	nonce  string
}

// issueTokens answers a grant with an access token for scope and the
// refresh token already stored for it, if any.
func (s *Service) issueTokens(req *tokenRequest, g grantState, scope, refresh string) (*TokenResponse, *oauth.Error) {
	if e := s.offboardedGrant(req.r.Context(), req, g); e != nil {
		return nil, e
	}
	resp, e := s.accessTokenResponse(req, accessTokenParams{client: req.client, subject: g.subject, scope: scope, grantID: g.id,
		authTime: g.authTime, resource: g.resource}, refresh)
	if e != nil || g.openID == nil || !oauth.HasScope(scope, ScopeOpenID) {
		return resp, e
	}
	if resp.IDToken, e = s.idToken(req.client, g, scope, resp.AccessToken); e != nil {
		return nil, e
	}
	return resp, nil
}

// accessTokenResponse mints the access token of every grant's answer,
// bound to the request's DPoP key when it proved one (RFC 9449 §5).
func (s *Service) accessTokenResponse(req *tokenRequest, p accessTokenParams, refresh string) (*TokenResponse, *oauth.Error) {
	tokenType := "Bearer"
	if req.dpop != nil {
		p.jkt, tokenType = req.dpop.JKT, "DPoP"
	}
	tok, claims, err := s.mintAccessToken(p)
	if err != nil {
		return nil, s.failures.Internal("minting an access token", err)
	}
	s.auditIssued(req, claims)
	return &TokenResponse{AccessToken: tok, TokenType: tokenType, ExpiresIn: claims.ExpiresAt - claims.IssuedAt,
		Scope: p.scope, RefreshToken: refresh}, nil
}

// revokeGrant revokes every token of a grant: refresh tokens at once, access
// tokens through the revocation state bearer_auth consults.
func (s *Service) revokeGrant(ctx context.Context, grantID, why string, req *tokenRequest) *oauth.Error {
	if err := s.revoke(ctx, store.RevokeGrant, grantID, s.maxTokenLifetime()); err != nil {
		return s.failures.Store("revoking a grant", err)
	}
	s.audit(ctx, "grant revoked", zap.String("reason", why), zap.String("client_id", req.client.ID), zap.String("grant_id", grantID))
	s.forgetGrant(ctx, grantID)
	return nil
}

// GrantToken is the form of codes, device codes and refresh tokens:
// "<grant ID>.<secret>". The grant ID names the record (and, in a Redis
// Cluster, its slot); the store keeps only the secret's hash.
type GrantToken struct {
	// Grant names the grant (its record).
	Grant  string
	secret string
}

// NewGrantToken draws a fresh secret for grant.
func NewGrantToken(grant string) GrantToken { return GrantToken{grant, oauth.RandomToken(32)} }

// parseGrantToken reads a presented token; false for anything else (a JWT
// has two dots, a grant token one).
func parseGrantToken(raw string) (GrantToken, bool) {
	grant, secret, ok := strings.Cut(raw, ".")
	if !ok || grant == "" || secret == "" || strings.Contains(secret, ".") {
		return GrantToken{}, false
	}
	return GrantToken{grant, secret}, true
}

// grantToken reads the grant token a token request carries in param:
// invalid_request when it is missing, invalid (the grant's own
// invalid_grant) when it is no grant token.
func (req *tokenRequest) grantToken(param string, invalid *oauth.Error) (GrantToken, *oauth.Error) {
	raw := req.form.Get(param)
	if raw == "" {
		return GrantToken{}, oauth.ErrInvalidRequest("%s is missing", param)
	}
	t, ok := parseGrantToken(raw)
	if !ok {
		return GrantToken{}, invalid
	}
	return t, nil
}

// firstRefreshToken draws a grant's first refresh token, when the client
// may refresh. The store keeps it in the same step that redeems the code or
// device authorization; if a check then fails, it is never handed out and
// nobody knows its secret.
func (s *Service) firstRefreshToken(req *tokenRequest, grantID string) (*store.Successor, string, *oauth.Error) {
	if !slices.Contains(req.client.GrantTypes, client.GrantRefreshToken) {
		return nil, "", nil
	}
	next, token, err := s.newRefreshToken(grantID, store.FirstGen)
	if err != nil {
		return nil, "", s.failures.Internal("drawing a refresh token", err)
	}
	next.JKT = req.boundKey()
	return next, token, nil
}

// boundKey is the DPoP key a request's refresh tokens are bound to: a
// public client's, when it proved one (RFC 9449 §5; a confidential
// client's refresh tokens are bound to its authentication already).
func (req *tokenRequest) boundKey() string {
	if req.dpop == nil || !req.client.Public {
		return ""
	}
	return req.dpop.JKT
}

// String is the token as the client holds it.
func (t GrantToken) String() string { return t.Grant + "." + t.secret }

// Hash is what the store keeps of the secret.
func (t GrantToken) Hash() string { return oauth.HashToken(t.secret) }
