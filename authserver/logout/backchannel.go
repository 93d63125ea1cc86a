package logout

// OpenID Connect Back-Channel Logout 1.0 §2.4-§2.8: logout tokens, POSTed to
// each relying party's backchannel_logout_uri.

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/outbound"
)

// EventBackchannelLogout is the event a logout token carries (§2.4).
const EventBackchannelLogout = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenTTL is a logout token's life: it is delivered at once (or
// within the retries), and a relying party need not remember its jti long.
const logoutTokenTTL = 2 * time.Minute

// workers deliver at once: one slow relying party does not hold up the
// others' logouts.
const workers = 4

// Run delivers logout tokens until ctx ends.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-s.queue:
					s.run(ctx, j)
				}
			}
		})
	}
	wg.Wait()
}

// run finds the notices of j and delivers them.
func (s *Service) run(ctx context.Context, j job) {
	ns, err := s.notices(ctx, j)
	if err != nil {
		s.metrics.BackchannelLogout("failed")
		s.log.Error("back-channel logout: listing the person's grants", zap.String("sub", j.subject), zap.Error(err))
		return
	}
	for _, n := range ns {
		s.deliver(ctx, n)
	}
}

// logoutClaims are a logout token's claims (§2.4): no nonce, so that it
// is never taken for an ID token.
type logoutClaims struct {
	Issuer   string                     `json:"iss"`
	Audience []string                   `json:"aud"`
	IssuedAt int64                      `json:"iat"`
	Expires  int64                      `json:"exp"`
	ID       string                     `json:"jti"`
	Subject  string                     `json:"sub,omitempty"`
	SID      string                     `json:"sid,omitempty"`
	Events   map[string]json.RawMessage `json:"events"`
}

// deliver tells n's client, if it has a backchannel_logout_uri, retrying
// a failed attempt (the relying party down, or answering 5xx) after each
// of cfg.Retries; a 4xx answer is final (§2.8: it refused the token), and
// so is an address the guarded client refuses.
func (s *Service) deliver(ctx context.Context, n notice) {
	c, _, err := s.clients.Lookup(ctx, n.clientID)
	if err != nil || c.BackchannelLogoutURI == "" || (c.BackchannelLogoutSessionRequired && n.sid == "") {
		return // deleted since, or not listening: nobody to tell
	}
	fetch := s.trusted
	if client.SelfDescribed(c) {
		fetch = s.guarded
	}
	log := s.log.With(zap.String("client_id", c.ID), zap.String("sub", n.subject))
	for attempt := 0; ; attempt++ {
		token, err := s.logoutToken(c, n)
		if err == nil {
			_, err = fetch.PostForm(ctx, c.BackchannelLogoutURI, url.Values{"logout_token": {token}}, "", "")
		}
		var se *outbound.StatusError
		if errors.As(err, &se) && se.Code >= 200 && se.Code < 300 {
			err = nil // 204 No Content, say: received
		}
		if err == nil {
			s.metrics.BackchannelLogout("delivered")
			log.Info("back-channel logout delivered")
			return
		}
		// A refusal (4xx), or an address no client may make tokengate
		// reach, is the same next time.
		final := errors.As(err, &se) && se.Code >= 400 && se.Code < 500 || errors.Is(err, outbound.ErrForbiddenAddress)
		if final || attempt >= len(s.cfg.Retries) {
			s.metrics.BackchannelLogout("failed")
			log.Warn("back-channel logout failed", zap.Int("attempts", attempt+1), zap.Error(err))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.Retries[attempt]):
		}
	}
}

// logoutToken is the logout token of n for c, signed like c's ID tokens.
func (s *Service) logoutToken(c *client.Client, n notice) (string, error) {
	now := time.Now()
	claims := logoutClaims{Issuer: s.cfg.Issuer, Audience: []string{c.ID}, IssuedAt: now.Unix(), Expires: now.Add(logoutTokenTTL).Unix(),
		ID: oauth.RandomToken(16), Subject: n.subject, SID: n.sid, Events: map[string]json.RawMessage{EventBackchannelLogout: json.RawMessage("{}")}}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return s.keys.SignAs(keys.IDTokenAlgOf(c.IDTokenAlg), keys.TypeLogoutToken, payload, now)
}
