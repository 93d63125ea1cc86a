package token

// RFC 6749 §1.5 and §10.4, RFC 9700 §4.14.2: the form of refresh tokens, which carry
// their generation under the server's MAC so that a grant's state stays
// one record however often it rotates.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/tokengate/tokengate/authserver/store"
)

// A refresh token is a grant token, "<grant ID>.<secret>", whose secret
// is, base64url-encoded:
//
//	generation (8 bytes, big-endian) ‖ random (16) ‖ MAC (16)
//
// where MAC is HMAC-SHA256 under refreshMACKey of the grant ID, a zero
// byte, the generation and the random bytes, cut to 128 bits. The
// generation says where in its grant's chain the token stands, and the
// MAC that the server said so: a genuine token of an earlier generation
// is a used one (reuse: the grant is revoked) without the store keeping a
// record of it, and a made-up one is refused before the store is asked,
// so that knowing a grant's ID is not enough to end it.
//
// Secrets from before generations are 32 random bytes: they decode to
// another length and are presented as generation 0 (store.Presented).
const (
	refreshGenLen    = 8
	refreshRandomLen = 16
	refreshMACLen    = 16
	refreshSecretLen = refreshGenLen + refreshRandomLen + refreshMACLen
	legacySecretLen  = 32
)

// refreshMACLabel separates the refresh tokens' MAC key from the other
// uses of the issuer's cookie secret.
const refreshMACLabel = "tokengate refresh token generations v1"

// macKey is the refresh tokens' MAC key and the cookie secret it was
// derived from, so that a ring reload with a new secret is noticed.
type macKey struct{ from, key []byte }

// refreshMACKey is the refresh tokens' MAC key, derived from the
// issuer's cookie secret, which every instance shares and which stays the
// same for the life of the store's data. It fails closed when the key
// ring is not loaded.
func (s *Service) refreshMACKey() ([]byte, error) {
	secret := s.keys.CookieSecret()
	if len(secret) == 0 {
		return nil, errors.New("the key ring holds no secret to sign refresh tokens with")
	}
	if k := s.refreshKey.Load(); k != nil && bytes.Equal(k.from, secret) {
		return k.key, nil
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(refreshMACLabel))
	k := &macKey{from: secret, key: m.Sum(nil)}
	s.refreshKey.Store(k)
	return k.key, nil
}

// refreshMAC is the MAC of a refresh secret's generation and random part
// (body) for grantID.
func refreshMAC(key []byte, grantID string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(grantID))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)[:refreshMACLen]
}

// newRefreshToken draws the refresh token of generation gen of the grant:
// what the store keeps and what the client is given.
func (s *Service) newRefreshToken(grantID string, gen uint64) (*store.Successor, string, error) {
	key, err := s.refreshMACKey()
	if err != nil {
		return nil, "", err
	}
	raw := make([]byte, refreshSecretLen)
	binary.BigEndian.PutUint64(raw, gen)
	body := raw[:refreshGenLen+refreshRandomLen]
	_, _ = rand.Read(body[refreshGenLen:]) // never fails (crypto/rand panics instead)
	copy(raw[len(body):], refreshMAC(key, grantID, body))
	t := GrantToken{Grant: grantID, secret: base64.RawURLEncoding.EncodeToString(raw)}
	now := time.Now().UTC()
	return &store.Successor{Hash: t.Hash(), IssuedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenTTL), MaxAge: s.cfg.GrantMaxAge}, t.String(), nil
}

// presented reads a refresh token as the store is asked about it: false
// for a secret of neither form, or one whose MAC is not the server's.
func (s *Service) presented(t GrantToken) (store.Presented, bool, error) {
	raw, err := base64.RawURLEncoding.DecodeString(t.secret)
	switch {
	case err != nil:
		return store.Presented{}, false, nil
	case len(raw) == legacySecretLen:
		return store.Presented{Hash: t.Hash()}, true, nil
	case len(raw) != refreshSecretLen:
		return store.Presented{}, false, nil
	}
	key, err := s.refreshMACKey()
	if err != nil {
		return store.Presented{}, false, err
	}
	body := raw[:refreshGenLen+refreshRandomLen]
	gen := binary.BigEndian.Uint64(body)
	if gen < store.FirstGen || !hmac.Equal(raw[len(body):], refreshMAC(key, t.Grant, body)) {
		return store.Presented{}, false, nil
	}
	return store.Presented{Hash: t.Hash(), Gen: gen}, true, nil
}
