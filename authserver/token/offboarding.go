package token

// Offboarding: people removed from the configuration lose access everywhere.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// Offboarding: a person removed from the configuration loses access on
// every instance. The store records the configured usernames
// (store.RecordUsers); at start-up a name recorded before and configured no
// more is revoked as a subject (every access and refresh token issued to
// it until now), and stays known as removed for GrantMaxAge, so that a
// grant an instance with the old configuration handed out meanwhile is
// refused too when it is refreshed. Sessions name a subject that must be
// a configured user (currentUser).

// Offboard records the configured users (names) in the store and revokes
// those removed since the last record. Start runs it: a config that is
// only checked (`tokengate validate`) must not offboard anyone.
func (s *Service) Offboard(ctx context.Context, names []string) error {
	names = slices.Sorted(slices.Values(names))
	removed, newly, err := s.store.RecordUsers(ctx, names, time.Now().UTC(), s.cfg.GrantMaxAge)
	if err != nil {
		return fmt.Errorf("recording the configured users: %w", err)
	}
	for _, name := range newly {
		if err := s.revoke(ctx, store.RevokeSubject, name, s.maxTokenLifetime()); err != nil {
			return fmt.Errorf("revoking the tokens of removed user %s: %w", name, err)
		}
		s.audit(ctx, "user offboarded", zap.String("sub", name), zap.String("reason", "removed from the configuration"))
		s.logouts.SubjectEnded(name)
	}
	off := map[string]bool{}
	for _, name := range removed {
		off[name] = true
	}
	s.offboarded.Store(&off)
	return nil
}

// offboardedGrant refuses a grant of a removed user and revokes it.
func (s *Service) offboardedGrant(ctx context.Context, req *tokenRequest, g grantState) *oauth.Error {
	if off := s.offboarded.Load(); off == nil || !(*off)[g.subject] {
		return nil
	}
	if e := s.revokeGrant(ctx, g.id, "user removed from the configuration", req); e != nil {
		return e
	}
	return oauth.ErrInvalidGrant("the user of this grant no longer exists; the grant is revoked")
}
