package authserver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/store"
)

// authorizationCodeGrant is RFC 6749 §4.1.3 with RFC 7636's verifier.
type authorizationCodeGrant struct{ s *Server }

func (g authorizationCodeGrant) handle(ctx context.Context, req *tokenRequest) (*TokenResponse, *Error) {
	s := g.s
	code := req.form.Get("code")
	if code == "" {
		return nil, ErrInvalidRequest("code is missing")
	}
	invalid := ErrInvalidGrant("the authorization code is not valid: it expired, or was never issued")
	grantID, secret, ok := strings.Cut(code, ".")
	if !ok || grantID == "" || secret == "" {
		return nil, invalid
	}
	// The grant's first refresh token is stored in the same step that
	// redeems the code. If a check below then fails, it was never handed
	// out: nobody knows its secret.
	var first *store.Successor
	var refresh string
	if slices.Contains(req.client.GrantTypes, GrantRefreshToken) {
		first, refresh = s.newRefreshToken(grantID)
	}
	ac, err := s.store.ConsumeCode(ctx, grantID, hashToken(secret), req.client.ID, first)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, invalid
	case errors.Is(err, store.ErrAlreadyUsed):
		// A replayed code means it leaked: revoke everything it gave
		// (RFC 6749 §4.1.2, RFC 9700 §4.5.2).
		if e := s.revokeGrant(ctx, ac.GrantID, "authorization code replayed", req); e != nil {
			return nil, e
		}
		return nil, ErrInvalidGrant("the authorization code was already used; every token issued from it is now revoked")
	case err != nil:
		return nil, s.storeError("redeeming an authorization code", err)
	}
	if ac.ClientID != req.client.ID {
		return nil, ErrInvalidGrant("the authorization code was issued to another client")
	}
	redirectURI := req.form.Get("redirect_uri")
	if (ac.RedirectURIGiven || redirectURI != "") && redirectURI != ac.RedirectURI {
		return nil, ErrInvalidGrant("redirect_uri must be the one the authorization request used")
	}
	verifier := req.form.Get("code_verifier")
	switch {
	case ac.CodeChallenge != "" && verifier == "":
		return nil, ErrInvalidGrant("code_verifier is missing: the authorization request used PKCE")
	case ac.CodeChallenge != "" && !pkceVerifier.MatchString(verifier):
		return nil, ErrInvalidGrant("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
	case ac.CodeChallenge != "" && !verifyPKCE(ac.CodeChallenge, verifier):
		return nil, ErrInvalidGrant("code_verifier does not match the code_challenge")
	case ac.CodeChallenge == "" && verifier != "":
		// A verifier for a code issued without a challenge is a PKCE
		// downgrade attempt (RFC 9700 §2.1.1).
		return nil, ErrInvalidGrant("code_verifier was sent but the authorization request had no code_challenge")
	}
	return s.issueTokens(req, grantState{id: ac.GrantID, subject: ac.Subject, scope: ac.Scope, authTime: ac.AuthTime}, ac.Scope, refresh)
}

// refreshTokenGrant is RFC 6749 §6 with rotation: every refresh returns a
// new refresh token and retires the old; reuse of a retired one revokes the
// whole grant (RFC 9700 §4.14.2). A client retrying within
// Config.RefreshRetryGrace of its first refresh, whose answer was lost and
// whose new token was never used, is not reusing: it gets a fresh
// successor instead (store.Successor). No rotation outlives the grant's
// Config.GrantMaxAge.
type refreshTokenGrant struct{ s *Server }

func (g refreshTokenGrant) handle(ctx context.Context, req *tokenRequest) (*TokenResponse, *Error) {
	s := g.s
	raw := req.form.Get("refresh_token")
	if raw == "" {
		return nil, ErrInvalidRequest("refresh_token is missing")
	}
	grantID, secret, ok := strings.Cut(raw, ".")
	invalid := ErrInvalidGrant("the refresh token is not valid: it expired, was revoked, or was never issued")
	if !ok || grantID == "" || secret == "" {
		return nil, invalid
	}
	hash := hashToken(secret)
	requested := strings.TrimSpace(req.form.Get("scope"))
	if requested != "" {
		// A narrowing request is checked before the token is spent, so
		// that a wrong scope does not cost the client its grant; this
		// rarer case pays one read more.
		old, err := s.store.RefreshToken(ctx, grantID, hash)
		if errors.Is(err, store.ErrAlreadyUsed) {
			err = nil // a retry or a reuse: the rotation below tells them apart
		}
		if e := g.check(ctx, req, old, err, grantID); e != nil {
			return nil, e
		}
		if _, e := resolveScope(requested, strings.Fields(old.Scope)); e != nil {
			return nil, ErrInvalidScope("a refresh may narrow the scope, not widen it: the grant has %q", old.Scope)
		}
	}
	next, refresh := s.newRefreshToken(grantID)
	next.Grace = max(0, s.cfg.RefreshRetryGrace)
	old, err := s.store.RotateRefreshToken(ctx, grantID, hash, req.client.ID, *next)
	if e := g.check(ctx, req, old, err, grantID); e != nil {
		// If the grant turned out revoked, the successor just stored is
		// never handed out and is refused like its grant anyway.
		return nil, e
	}
	scope := old.Scope
	if requested != "" {
		scope, _ = resolveScope(requested, strings.Fields(old.Scope))
	}
	gs := grantState{id: grantID, subject: old.Subject, scope: old.Scope, authTime: old.AuthTime}
	return s.issueTokens(req, gs, scope, refresh)
}

// check turns the store's answer about a refresh token into the protocol's.
func (g refreshTokenGrant) check(ctx context.Context, req *tokenRequest, old *store.RefreshToken, err error, grantID string) *Error {
	invalid := ErrInvalidGrant("the refresh token is not valid: it expired, was revoked, or was never issued")
	switch {
	case errors.Is(err, store.ErrNotFound):
		return invalid
	case errors.Is(err, store.ErrAlreadyUsed):
		if e := g.s.revokeGrant(ctx, grantID, "refresh token reused", req); e != nil {
			return e
		}
		return ErrInvalidGrant("the refresh token was already used; the grant is revoked and the user must authorize again")
	case err != nil:
		return g.s.storeError("redeeming a refresh token", err)
	case old.ClientID != req.client.ID:
		return ErrInvalidGrant("the refresh token was issued to another client")
	case !old.AuthTime.IsZero() && time.Since(old.AuthTime) > g.s.cfg.GrantMaxAge:
		// Only a grant from before grant_max_age was shortened gets here:
		// the store caps every other token's expiry at the grant's end.
		return ErrInvalidGrant("the grant is older than grant_max_age allows: the user must authorize again")
	}
	if g.s.revocations.IsRefreshRevoked(grantID, old.ClientID, old.Subject, old.IssuedAt) {
		return invalid
	}
	return nil
}

// grantState is what tokens of one authorization share.
type grantState struct {
	id, subject, scope string
	authTime           time.Time
}

// newRefreshToken draws a refresh token of the grant: what the store keeps
// and what the client is given.
func (s *Server) newRefreshToken(grantID string) (*store.Successor, string) {
	secret := randomToken(32)
	now := time.Now().UTC()
	return &store.Successor{Hash: hashToken(secret), IssuedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenTTL), MaxAge: s.cfg.GrantMaxAge},
		grantID + "." + secret
}

// issueTokens answers a grant with an access token for scope and the
// refresh token already stored for it, if any.
func (s *Server) issueTokens(req *tokenRequest, g grantState, scope, refresh string) (*TokenResponse, *Error) {
	if e := s.offboardedGrant(req.r.Context(), req, g); e != nil {
		return nil, e
	}
	tok, claims, err := s.mintAccessToken(accessTokenParams{client: req.client, subject: g.subject, scope: scope, grantID: g.id, authTime: g.authTime})
	if err != nil {
		return nil, s.internalError("minting an access token", err)
	}
	s.auditIssued(req, claims)
	return &TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTokenTTL / time.Second),
		Scope: scope, RefreshToken: refresh}, nil
}

// revokeGrant revokes every token of a grant: refresh tokens at once, access
// tokens through the revocation state bearer_auth consults.
func (s *Server) revokeGrant(ctx context.Context, grantID, why string, req *tokenRequest) *Error {
	if err := s.revoke(ctx, store.RevokeGrant, grantID, s.maxTokenLifetime()); err != nil {
		return s.storeError("revoking a grant", err)
	}
	s.audit(ctx, "grant revoked", zap.String("reason", why), zap.String("client_id", req.client.ID), zap.String("grant_id", grantID))
	return nil
}
