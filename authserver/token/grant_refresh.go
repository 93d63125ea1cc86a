package token

// RFC 6749 §6 and RFC 9700 §4.14.2: the refresh token grant, with rotation and reuse detection.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// refreshTokenGrant is RFC 6749 §6 with rotation: every refresh returns a
// new refresh token and retires the old; reuse of a retired one revokes the
// whole grant (RFC 9700 §4.14.2). A client retrying within
// Config.RefreshRetryGrace of its first refresh, whose answer was lost and
// whose new token was never used, is not reusing: it gets a fresh
// successor instead (store.Successor). No rotation outlives the grant's
// Config.GrantMaxAge.
type refreshTokenGrant struct{ s *Service }

func (g refreshTokenGrant) handle(req *tokenRequest) (*TokenResponse, *oauth.Error) {
	ctx := req.storeContext()
	s := g.s
	rt, e := req.grantToken("refresh_token", invalidRefreshToken())
	if e != nil {
		return nil, e
	}
	grantID := rt.Grant
	p, ok, err := s.presented(rt)
	if err != nil {
		return nil, s.failures.Internal("reading a refresh token", err)
	}
	if !ok {
		// Made up, or damaged: nothing the grant's state need hear of.
		return nil, invalidRefreshToken()
	}
	requested := strings.TrimSpace(req.form.Get("scope"))
	resource, e := s.resources.Requested(req.form)
	if e != nil {
		return nil, e
	}
	if requested != "" || resource != "" {
		// A narrowing request (or one naming a resource) is checked
		// before the token is spent, so that a wrong scope or resource
		// does not cost the client its grant; this rarer case pays one
		// read more.
		old, err := s.store.RefreshToken(ctx, grantID, p)
		if errors.Is(err, store.ErrAlreadyUsed) {
			err = nil // a retry or a reuse: the rotation below tells them apart
		}
		if e := g.check(ctx, req, old, err, grantID); e != nil {
			return nil, e
		}
		if _, e := client.ResolveScope(requested, strings.Fields(old.Scope)); requested != "" && e != nil {
			return nil, oauth.ErrInvalidScope("a refresh may narrow the scope, not widen it: the grant has %q", old.Scope)
		}
		if e := sameResource(resource, old.Resource); e != nil {
			return nil, e
		}
	}
	next, refresh, err := s.newRefreshToken(grantID, p.Gen+1)
	if err != nil {
		return nil, s.failures.Internal("drawing a refresh token", err)
	}
	next.Grace = max(0, s.cfg.RefreshRetryGrace)
	next.JKT = req.boundKey()
	old, err := s.store.RotateRefreshToken(ctx, grantID, p, req.client.ID, *next)
	if e := g.check(ctx, req, old, err, grantID); e != nil {
		// If the grant turned out revoked, the successor just stored is
		// never handed out and is refused like its grant anyway.
		return nil, e
	}
	scope := old.Scope
	if requested != "" {
		scope, _ = client.ResolveScope(requested, strings.Fields(old.Scope))
	}
	// A refresh's ID token repeats no nonce (OpenID Connect Core §12.2).
	gs := grantState{id: grantID, subject: old.Subject, scope: old.Scope, authTime: old.AuthTime, resource: old.Resource, openID: old.OpenID}
	return s.issueTokens(req, gs, scope, refresh)
}

// check turns the store's answer about a refresh token into the protocol's.
func (g refreshTokenGrant) check(ctx context.Context, req *tokenRequest, old *store.RefreshToken, err error, grantID string) *oauth.Error {
	invalid := invalidRefreshToken()
	switch {
	case errors.Is(err, store.ErrNotFound):
		return invalid
	case errors.Is(err, store.ErrKeyMismatch):
		return oauth.ErrInvalidDPoPProof("this refresh token is bound to a DPoP key: send a DPoP proof signed with that key")
	case errors.Is(err, store.ErrAlreadyUsed):
		if e := g.s.revokeGrant(ctx, grantID, "refresh token reused", req); e != nil {
			return e
		}
		return oauth.ErrInvalidGrant("the refresh token was already used; the grant is revoked and the user must authorize again")
	case err != nil:
		return g.s.failures.Store("redeeming a refresh token", err)
	case old.ClientID != req.client.ID:
		return oauth.ErrInvalidGrant("the refresh token was issued to another client")
	case !old.AuthTime.IsZero() && time.Since(old.AuthTime) > g.s.cfg.GrantMaxAge:
		// Only a grant from before grant_max_age was shortened gets here:
		// the store caps every other token's expiry at the grant's end.
		return oauth.ErrInvalidGrant("the grant is older than grant_max_age allows: the user must authorize again")
	}
	if g.s.revocations.IsRefreshRevoked(grantID, old.ClientID, old.Subject, old.IssuedAt) {
		return invalid
	}
	return nil
}

// invalidRefreshToken is the answer to a refresh token that is not one of
// a live grant, whatever the reason: a client learns nothing it could
// probe with.
func invalidRefreshToken() *oauth.Error {
	return oauth.ErrInvalidGrant("the refresh token is not valid: it expired, was revoked, or was never issued")
}
