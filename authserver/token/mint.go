package token

// RFC 9068: minting JWT access tokens.

import (
	"encoding/json"
	"time"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/introspect"
)

// randomToken returns n random bytes, base64url-encoded.

type accessTokenParams struct {
	client   *client.Client
	subject  string
	scope    string
	grantID  string
	authTime time.Time
	// resource, when set, is the token's only audience (RFC 8707).
	resource string
	// jkt, when set, binds the token to that DPoP key (cnf.jkt).
	jkt string
}

// mintAccessToken signs an RFC 9068 access token with the current key.
func (s *Service) mintAccessToken(p accessTokenParams) (string, *introspect.Claims, error) {
	now := time.Now()
	aud := introspect.Audience(p.client.Audience)
	if p.resource != "" {
		aud = introspect.Audience{p.resource}
	} else if len(aud) == 0 {
		aud = introspect.Audience{s.cfg.Issuer}
	}
	c := &introspect.Claims{
		Issuer:    s.cfg.Issuer,
		Subject:   p.subject,
		Audience:  aud,
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(s.cfg.AccessTokenTTL).Unix(),
		ID:        oauth.RandomToken(16),
		ClientID:  p.client.ID,
		Scope:     p.scope,
		GrantID:   p.grantID,
	}
	if !p.authTime.IsZero() {
		c.AuthTime = p.authTime.Unix()
	}
	if p.jkt != "" {
		c.Confirmation = &introspect.Confirmation{JKT: p.jkt}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", nil, err
	}
	token, err := s.keys.Sign(payload, now)
	return token, c, err
}
