package token

// RFC 7009: token revocation, and the revocations administrators make.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
)

// revoke records a revocation in the store (which tells the other
// instances) and applies it here at once, not waiting for the store's feed
// to bring it back. lifetime is how long tokens it can affect may live.
func (s *Service) revoke(ctx context.Context, kind store.RevocationKind, value string, lifetime time.Duration) error {
	now := time.Now().UTC()
	rv := store.Revocation{Kind: kind, Value: value, At: now, ExpiresAt: now.Add(lifetime)}
	if err := s.store.Revoke(ctx, rv); err != nil {
		return err
	}
	s.revocations.Apply(rv)
	return nil
}

// maxTokenLifetime is how long any token issued now may live.
func (s *Service) maxTokenLifetime() time.Duration {
	return max(s.cfg.RefreshTokenTTL, s.cfg.AccessTokenTTL) + time.Minute
}

// RevokeToken revokes an access token (by its jti) or a refresh token (its
// whole grant). With owner set, only a token of that client is revoked
// (RFC 7009 §2.1). It returns how many tokens it revoked: 0 for a token
// that is unknown, expired, already revoked or someone else's.
func (s *Service) RevokeToken(ctx context.Context, token, owner, hint string) (int, error) {
	isJWT := strings.Count(token, ".") == 2
	// The hint only orders the attempts; the token's form decides.
	if hint == "refresh_token" || !isJWT {
		if n, err := s.revokeRefreshToken(ctx, token, owner); n > 0 || err != nil || !isJWT {
			return n, err
		}
	}
	return s.revokeAccessToken(ctx, token, owner)
}

func (s *Service) revokeAccessToken(ctx context.Context, token, owner string) (int, error) {
	c, err := s.validator.Validate(token, "")
	if err != nil {
		var te *introspect.TokenError
		if errors.As(err, &te) && te.Reason == introspect.ReasonStale {
			return 0, errors.New("revocations are stale")
		}
		return 0, nil // invalid, expired or already revoked: nothing to do
	}
	if owner != "" && c.ClientID != owner {
		return 0, nil
	}
	if owner != "" {
		// Every instance holds every jti revocation in memory until the
		// token expires: a client minting and revoking at full speed would
		// grow that without bound. Past its budget, a client's revocation
		// revokes more instead (RFC 7009 §2.1 allows it): the token's whole
		// grant, or, for a token without one, every token the client holds
		// until now. One entry either way, so the state stays flat.
		n, _, err := s.store.Incr(ctx, "revoke:"+owner, revocationWindow)
		if err != nil {
			return 0, err
		}
		if n > revocationBudget {
			kind, value := store.RevokeClient, owner
			if c.GrantID != "" {
				kind, value = store.RevokeGrant, c.GrantID
			}
			if err := s.revoke(ctx, kind, value, s.maxTokenLifetime()); err != nil {
				return 0, err
			}
			s.audit(ctx, "token revoked", zap.String("jti", c.ID), zap.String("client_id", c.ClientID), zap.String("sub", c.Subject),
				zap.String("grant_id", c.GrantID), zap.String("revoked_as", string(kind)), zap.String("reason", "over the client's revocation budget"))
			return 1, nil
		}
	}
	if err := s.revoke(ctx, store.RevokeToken, c.ID, time.Until(time.Unix(c.ExpiresAt, 0))+time.Minute); err != nil {
		return 0, err
	}
	s.audit(ctx, "token revoked", zap.String("jti", c.ID), zap.String("client_id", c.ClientID), zap.String("sub", c.Subject), zap.String("grant_id", c.GrantID))
	return 1, nil
}

// A client may revoke revocationBudget access tokens one by one per
// revocationWindow; more are revoked with their grant or client (see
// revokeAccessToken). Each instance then holds at most
// revocationBudget × access_token_ttl / revocationWindow token entries per
// client (6,000 at the default hour, ~1.3 MB), however fast it revokes.
const (
	revocationBudget = 100
	revocationWindow = time.Minute
)

func (s *Service) revokeRefreshToken(ctx context.Context, token, owner string) (int, error) {
	t, ok := parseGrantToken(token)
	if !ok {
		return 0, nil
	}
	p, ok, err := s.presented(t)
	if !ok || err != nil {
		return 0, err
	}
	grantID := t.Grant
	rt, err := s.store.RefreshToken(ctx, grantID, p)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil && !errors.Is(err, store.ErrAlreadyUsed) {
		return 0, err
	}
	if owner != "" && rt.ClientID != owner {
		return 0, nil
	}
	if err := s.revoke(ctx, store.RevokeGrant, grantID, s.maxTokenLifetime()); err != nil {
		return 0, err
	}
	s.audit(ctx, "grant revoked", zap.String("reason", "refresh token revoked"), zap.String("client_id", rt.ClientID), zap.String("sub", rt.Subject), zap.String("grant_id", grantID))
	return 1, nil
}

// RevokeJTI revokes one access token by its jti, for an admin who has only
// the ID (from a log line). Its expiry is unknown, so the entry lives as
// long as an access token can.
func (s *Service) RevokeJTI(ctx context.Context, jti string) error {
	if err := s.revoke(ctx, store.RevokeToken, jti, s.cfg.AccessTokenTTL+time.Minute); err != nil {
		return err
	}
	s.audit(ctx, "token revoked", zap.String("jti", jti), zap.String("by", "admin"))
	return nil
}

// RevokeClient revokes every token issued to a client until now.
func (s *Service) RevokeClient(ctx context.Context, clientID string) error {
	if err := s.revoke(ctx, store.RevokeClient, clientID, s.maxTokenLifetime()); err != nil {
		return err
	}
	s.audit(ctx, "client's tokens revoked", zap.String("client_id", clientID))
	return nil
}

// RevokeSubject revokes every token issued to a user until now.
func (s *Service) RevokeSubject(ctx context.Context, subject string) error {
	if err := s.revoke(ctx, store.RevokeSubject, subject, s.maxTokenLifetime()); err != nil {
		return err
	}
	s.audit(ctx, "user's tokens revoked", zap.String("sub", subject))
	s.logouts.SubjectEnded(subject)
	return nil
}

// ServeRevoke is RFC 7009's revocation endpoint: a client revokes one of
// its own tokens. Unknown tokens (and other clients') get 200 too, so the
// answer reveals nothing.
func (s *Service) ServeRevoke(w http.ResponseWriter, r *http.Request) {
	form, e := oauth.ReadForm(w, r)
	if e == nil {
		var cl *client.Client
		if cl, e = s.clientAuth.Authenticate(r, form); e == nil {
			e = s.revokeFor(r, cl, form)
		}
	}
	if e != nil {
		oauth.WriteError(w, e)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Service) revokeFor(r *http.Request, cl *client.Client, form url.Values) *oauth.Error {
	token := form.Get("token")
	if token == "" {
		return oauth.ErrInvalidRequest("token is missing")
	}
	ctx, cancel := oauth.RequestContext(r)
	defer cancel()
	if _, err := s.RevokeToken(ctx, token, cl.ID, form.Get("token_type_hint")); err != nil {
		return s.failures.Store("revoking a token", err)
	}
	return nil
}
