package token

// OpenID Connect Core 1.0 §2, §3.1.3.6 and §5.4: ID tokens, their at_hash, and
// the claims each scope releases; reading one back as a logout's hint.

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"slices"
	"time"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// The scopes of OpenID Connect Core §3.1.2.1 and §5.4.
const (
	ScopeOpenID  = "openid"
	ScopeProfile = "profile"
	ScopeEmail   = "email"
)

// UserClaims are the claims about the person that scope releases (§5.4):
// with profile name and preferred_username, with email email and
// email_verified. sub is the caller's.
type UserClaims struct {
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Email             string `json:"email,omitempty"`
	// EmailVerified is a JSON boolean whenever email is given.
	EmailVerified *bool `json:"email_verified,omitempty"`
}

// ReleasedClaims are id's claims that scope releases.
func ReleasedClaims(id *store.OpenID, scope string) UserClaims {
	var c UserClaims
	if id == nil {
		return c
	}
	if oauth.HasScope(scope, ScopeProfile) {
		c.Name, c.PreferredUsername = id.Name, id.PreferredUsername
	}
	if oauth.HasScope(scope, ScopeEmail) && id.Email != "" {
		verified := id.EmailVerified
		c.Email, c.EmailVerified = id.Email, &verified
	}
	return c
}

// idTokenClaims are an ID token's claims (§2).
type idTokenClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	// AuthorizedParty is the client, which aud holds alone (§2: azp).
	AuthorizedParty string `json:"azp"`
	Expires         int64  `json:"exp"`
	IssuedAt        int64  `json:"iat"`
	AuthTime        int64  `json:"auth_time,omitempty"`
	Nonce           string `json:"nonce,omitempty"`
	AccessTokenHash string `json:"at_hash,omitempty"`
	SID             string `json:"sid,omitempty"`
	// GrantID (gid, as in access tokens) ties a token exchanged for
	// this ID token to its grant (grant_token_exchange.go).
	GrantID string `json:"gid,omitempty"`
	UserClaims
}

// idToken is the ID token of a grant with openid, for its client, beside
// accessToken: signed with the client's id_token_alg (RS256 unless it
// names another), typ JWT, living as long as the access token.
func (s *Service) idToken(c *client.Client, g grantState, scope, accessToken string) (string, *oauth.Error) {
	now := time.Now()
	alg := keys.IDTokenAlgOf(c.IDTokenAlg)
	claims := idTokenClaims{Issuer: s.cfg.Issuer, Subject: g.subject, Audience: []string{c.ID}, AuthorizedParty: c.ID,
		Expires: now.Add(s.cfg.AccessTokenTTL).Unix(), IssuedAt: now.Unix(), Nonce: g.nonce, AccessTokenHash: tokenHash(alg, accessToken),
		SID: g.openID.SID, GrantID: g.id, UserClaims: ReleasedClaims(g.openID, scope)}
	if !g.authTime.IsZero() {
		claims.AuthTime = g.authTime.Unix()
	}
	var token string
	err := oauth.EncodeJSON(&claims, func(payload []byte) (err error) {
		token, err = s.keys.SignAs(alg, keys.TypeIDToken, bytes.TrimSuffix(payload, []byte{'\n'}), now)
		return err
	})
	if err != nil {
		return "", s.failures.Internal("minting an ID token", err)
	}
	return token, nil
}

// tokenHash is at_hash (§3.1.3.6): the left half of the access token's
// hash under the hash of the ID token's algorithm (SHA-512 for EdDSA, as
// relying parties compute it for Ed25519), base64url.
func tokenHash(alg, token string) string {
	var h hash.Hash = sha256.New()
	if alg == "EdDSA" {
		h = sha512.New()
	}
	h.Write([]byte(token))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// IDTokenHint is what an ID token this issuer signed says of its session,
// read back as RP-initiated logout's id_token_hint.
type IDTokenHint struct {
	Subject  string
	SID      string
	Audience []string
}

// errNotOurIDToken is an id_token_hint that is no ID token of this issuer.
var errNotOurIDToken = errors.New("id_token_hint is not an ID token this server issued")

// ReadIDTokenHint verifies an ID token this issuer signed, expired or not
// (RP-Initiated Logout §2: a session's hint may well be old), by the keys
// still published, whatever has been revoked since (a hint names the
// session to end).
func (s *Service) ReadIDTokenHint(raw string) (*IDTokenHint, error) {
	c, err := s.idTokenHints.Validate(raw)
	if err != nil || len(c.Audience) == 0 || slices.Contains(c.Audience, "") {
		return nil, errNotOurIDToken
	}
	sid, _ := c.Claim("sid")
	return &IDTokenHint{Subject: c.Subject, SID: sid, Audience: c.Audience}, nil
}
