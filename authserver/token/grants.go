package token

// The grants people gave applications: recorded at approval, listed for the
// account page, the admin API and the console, revoked one at a time.

import (
	"context"
	"errors"
	"slices"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/store"
)

// LiveGrants are the store's grants of q (live records, within EndsBy)
// less those revoked: a person's or client's revocation cuts off what was
// issued before it, and a grant issues nothing after it, so its creation
// decides.
func (s *Service) LiveGrants(ctx context.Context, q store.GrantQuery) ([]*store.Grant, error) {
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
func (s *Service) RevokeGrant(ctx context.Context, id, by string) (*store.Grant, error) {
	g, err := s.store.Grant(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.revoke(ctx, store.RevokeGrant, id, s.maxTokenLifetime()); err != nil {
		return nil, err
	}
	s.audit(ctx, "grant revoked", zap.String("grant_id", id), zap.String("client_id", g.ClientID), zap.String("sub", g.Subject), zap.String("by", by))
	s.forgetGrant(ctx, id)
	s.logouts.GrantEnded(g)
	return g, nil
}

// forgetGrant drops a grant from the lists once it is revoked or its
// redemption failed; the revocation (if any) is what protects, so a store
// failure here is only logged.
func (s *Service) forgetGrant(ctx context.Context, id string) {
	if err := s.store.DeleteGrant(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("forgetting a revoked grant", zap.String("grant_id", id), zap.Error(err))
	}
}
