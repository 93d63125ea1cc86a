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
	ac, err := s.store.ConsumeCode(ctx, hashToken(code))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrInvalidGrant("the authorization code is not valid: it expired, or was never issued")
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
	return s.issueTokens(ctx, req, grantState{id: ac.GrantID, subject: ac.Subject, scope: ac.Scope, authTime: ac.AuthTime}, ac.Scope)
}

// refreshTokenGrant is RFC 6749 §6 with rotation: every refresh returns a
// new refresh token and retires the old; reuse of a retired one revokes the
// whole grant (RFC 9700 §4.14.2).
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
	old, err := s.store.RefreshToken(ctx, grantID, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, invalid
	case errors.Is(err, store.ErrAlreadyUsed):
		return nil, g.reused(ctx, req, grantID)
	case err != nil:
		return nil, s.storeError("reading a refresh token", err)
	}
	if old.ClientID != req.client.ID {
		return nil, ErrInvalidGrant("the refresh token was issued to another client")
	}
	if rv := s.cfg.Validator.Revoked; rv != nil && rv.IsRefreshRevoked(grantID, old.ClientID, old.Subject, old.IssuedAt) {
		return nil, invalid
	}
	scope := old.Scope
	if requested := req.form.Get("scope"); strings.TrimSpace(requested) != "" {
		var e *Error
		if scope, e = resolveScope(requested, strings.Fields(old.Scope)); e != nil {
			return nil, ErrInvalidScope("a refresh may narrow the scope, not widen it: the grant has %q", old.Scope)
		}
	}
	gs := grantState{id: grantID, subject: old.Subject, scope: old.Scope, authTime: old.AuthTime, rotating: hash}
	resp, e := s.issueTokens(ctx, req, gs, scope)
	if e == errReused {
		return nil, g.reused(ctx, req, grantID)
	}
	return resp, e
}

func (g refreshTokenGrant) reused(ctx context.Context, req *tokenRequest, grantID string) *Error {
	if e := g.s.revokeGrant(ctx, grantID, "refresh token reused", req); e != nil {
		return e
	}
	return ErrInvalidGrant("the refresh token was already used; the grant is revoked and the user must authorize again")
}

// errReused marks a rotation that lost to an earlier use of the same token.
var errReused = &Error{Code: "invalid_grant", Description: "refresh token reused"}

// grantState is what tokens of one authorization share.
type grantState struct {
	id, subject, scope string
	authTime           time.Time
	// rotating is the hash of the refresh token being rotated, if any.
	rotating string
}

// issueTokens mints an access token with scope and, when the client may
// refresh, the grant's next refresh token (its scope stays the grant's,
// RFC 6749 §6).
func (s *Server) issueTokens(ctx context.Context, req *tokenRequest, g grantState, scope string) (*TokenResponse, *Error) {
	resp := &TokenResponse{TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTokenTTL / time.Second), Scope: scope}
	if slices.Contains(req.client.GrantTypes, GrantRefreshToken) {
		secret := randomToken(32)
		now := time.Now().UTC()
		next := &store.RefreshToken{GrantID: g.id, Hash: hashToken(secret), ClientID: req.client.ID, Subject: g.subject,
			Scope: g.scope, AuthTime: g.authTime, IssuedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenTTL)}
		var err error
		if g.rotating != "" {
			_, err = s.store.RotateRefreshToken(ctx, g.id, g.rotating, next)
		} else {
			err = s.store.CreateRefreshToken(ctx, next)
		}
		switch {
		case errors.Is(err, store.ErrAlreadyUsed):
			return nil, errReused
		case errors.Is(err, store.ErrNotFound):
			return nil, ErrInvalidGrant("the refresh token expired")
		case err != nil:
			return nil, s.storeError("storing a refresh token", err)
		}
		resp.RefreshToken = g.id + "." + secret
	}
	tok, claims, err := s.mintAccessToken(accessTokenParams{client: req.client, subject: g.subject, scope: scope, grantID: g.id, authTime: g.authTime})
	if err != nil {
		return nil, s.internalError("minting an access token", err)
	}
	resp.AccessToken = tok
	s.auditIssued(req, claims.Subject, scope, claims.ID)
	return resp, nil
}

// revokeGrant revokes every token of a grant: refresh tokens at once, access
// tokens through the revocation state bearer_auth consults.
func (s *Server) revokeGrant(ctx context.Context, grantID, why string, req *tokenRequest) *Error {
	if err := s.revoke(ctx, store.RevokeGrant, grantID, s.maxTokenLifetime()); err != nil {
		return s.storeError("revoking a grant", err)
	}
	s.log.Warn("grant revoked", zap.String("reason", why), zap.String("client_id", req.client.ID), zap.String("grant_id", grantID))
	return nil
}
