package authserver

// The grants people gave applications: recorded at approval, listed for the
// account page, the admin API and the console, revoked one at a time.

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
)

// Logins a grant records (store.Grant.Login) besides a provider's name.
const (
	LoginPassword = "password"
	LoginUpstream = "upstream"
)

// newGrant is the record of a grant the person just approved, stored
// before its code or device authorization can be redeemed: the token
// endpoint then only notes its uses, in the step that redeems or rotates.
// The record lives as long as a token from an unredeemed code could
// (codeExpiry and one access token); redemption extends it to the
// refresh token's life.
func (s *Server) newGrant(id string, client *client.Client, user *authUser, scope, resource string, codeExpiry time.Time) *store.Grant {
	now := time.Now().UTC()
	authTime := user.authTime
	if authTime.IsZero() {
		authTime = now
	}
	return &store.Grant{ID: id, ClientID: client.ID, Subject: user.subject, Scope: scope, Resource: resource,
		Login: user.login, CreatedAt: now, ExpiresAt: codeExpiry.Add(s.cfg.AccessTokenTTL), EndsBy: authTime.Add(s.cfg.GrantMaxAge)}
}

// LiveGrants are the store's grants of q (live records, within EndsBy)
// less those revoked: a person's or client's revocation cuts off what was
// issued before it, and a grant issues nothing after it, so its creation
// decides.
func (s *Server) LiveGrants(ctx context.Context, q store.GrantQuery) ([]*store.Grant, error) {
	list, err := s.store.Grants(ctx, q)
	return slices.DeleteFunc(list, func(g *store.Grant) bool {
		return s.revocations.IsRefreshRevoked(g.ID, g.ClientID, g.Subject, g.CreatedAt)
	}), err
}

// RevokeGrant revokes a grant: every refresh and access token issued
// from it, on every instance within the revocation promise; the consent
// was the grant's, so the application must ask again. It drops the grant
// from the lists; store.ErrNotFound when there is none. by says who did
// it, for the audit line.
func (s *Server) RevokeGrant(ctx context.Context, id, by string) (*store.Grant, error) {
	g, err := s.store.Grant(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.revoke(ctx, store.RevokeGrant, id, s.maxTokenLifetime()); err != nil {
		return nil, err
	}
	s.audit(ctx, "grant revoked", zap.String("grant_id", id), zap.String("client_id", g.ClientID), zap.String("sub", g.Subject), zap.String("by", by))
	s.forgetGrant(ctx, id)
	return g, nil
}

// forgetGrant drops a grant from the lists once it is revoked or its
// redemption failed; the revocation (if any) is what protects, so a store
// failure here is only logged.
func (s *Server) forgetGrant(ctx context.Context, id string) {
	if err := s.store.DeleteGrant(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("forgetting a revoked grant", zap.String("grant_id", id), zap.Error(err))
	}
}
