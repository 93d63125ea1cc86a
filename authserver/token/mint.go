package token

// RFC 9068: minting JWT access tokens.

import (
	"bytes"
	"time"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/introspect"
)

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
	// act names who acts for the subject (RFC 8693 §4.1); until, when
	// set, is the latest the token may expire (a subject token's end).
	act   *introspect.Actor
	until time.Time
}

// mintAccessToken signs an RFC 9068 access token with the current key.
func (s *Service) mintAccessToken(p accessTokenParams) (string, *introspect.Claims, error) {
	now := time.Now()
	aud := introspect.Audience(p.client.Audience)
	if p.resource != "" {
		aud = introspect.Audience{p.resource}
	} else if len(aud) == 0 {
		aud = s.issuerAudience
	}
	m := &minted{Claims: introspect.Claims{
		Issuer:    s.cfg.Issuer,
		Subject:   p.subject,
		Audience:  aud,
		IssuedAt:  now.Unix(),
		ExpiresAt: expiry(now, s.cfg.AccessTokenTTL, p.until).Unix(),
		ID:        oauth.RandomToken(16),
		ClientID:  p.client.ID,
		Scope:     p.scope,
		GrantID:   p.grantID,
	}}
	c := &m.Claims
	if !p.authTime.IsZero() {
		c.AuthTime = p.authTime.Unix()
	}
	if p.jkt != "" {
		c.Confirmation = &introspect.Confirmation{JKT: p.jkt}
	}
	c.Act = p.act
	if len(aud) == 1 {
		m.Aud = &aud[0]
	} else {
		m.Aud = []string(aud)
	}
	var token string
	err := oauth.EncodeJSON(m, func(payload []byte) (err error) {
		token, err = s.keys.Sign(bytes.TrimSuffix(payload, []byte{'\n'}), now) // Sign copies it
		return err
	})
	return token, c, err
}

// expiry is an access token's: ttl from now, but never past until (when
// set).
func expiry(now time.Time, ttl time.Duration, until time.Time) time.Time {
	exp := now.Add(ttl)
	if !until.IsZero() && until.Before(exp) {
		return until
	}
	return exp
}

// minted is how an access token's claims are encoded: aud is the one
// audience as a string (as most resource servers expect) or the list,
// written without introspect.Audience's MarshalJSON, whose answer each
// token would allocate. The outer field, shallower, wins over the
// embedded one of the same name.
type minted struct {
	introspect.Claims
	Aud any `json:"aud"`
}
