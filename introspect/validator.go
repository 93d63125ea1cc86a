package introspect

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// MaxTokenLen bounds the tokens we look at; ours are well under 2 KB.
const MaxTokenLen = 8 << 10

// KeySource resolves a key ID to the issuer's public key and the one
// algorithm that key signs with.
type KeySource interface {
	PublicKey(kid string) (jwa.SignatureAlgorithm, any, bool)
}

// Reason classifies why a token was refused, for metrics and logs.
type Reason string

const (
	ReasonMalformed     Reason = "malformed"
	ReasonSignature     Reason = "bad_signature"
	ReasonUnknownKey    Reason = "unknown_key"
	ReasonType          Reason = "wrong_type"
	ReasonIssuer        Reason = "wrong_issuer"
	ReasonAudience      Reason = "wrong_audience"
	ReasonExpired       Reason = "expired"
	ReasonNotYetValid   Reason = "not_yet_valid"
	ReasonRevoked       Reason = "revoked"
	ReasonMissingClaims Reason = "missing_claims"
	// ReasonStale: the revocation state is too old to trust (the store
	// has been unreachable too long); the answer is "unavailable", not
	// "invalid".
	ReasonStale Reason = "revocations_stale"
)

// TokenError is why a token is not valid. Its message is safe to show the
// token's holder: it never repeats the token.
type TokenError struct {
	Reason      Reason
	Description string
}

func (e *TokenError) Error() string { return e.Description }

func refuse(r Reason, format string, args ...any) *TokenError {
	return &TokenError{Reason: r, Description: fmt.Sprintf(format, args...)}
}

// Validator checks access tokens of one issuer.
type Validator struct {
	Keys   KeySource
	Issuer string
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// Revoked is the in-memory revocation state; nil means none.
	Revoked *Revocations
	// UnknownKey, if set, is called when a token names a key ID we do not
	// know (another instance may have rotated); it reports whether the
	// keys were reloaded, and must itself limit how often it does so.
	UnknownKey func(kid string) bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Cache, if set, remembers verified tokens (see TokenCache).
	Cache *TokenCache
}

// Validate verifies token and returns its claims, which the caller must not
// modify (they may be shared through the cache). audience, when not empty,
// must be among the token's aud. Errors are *TokenError.
func (v *Validator) Validate(token, audience string) (*Claims, error) {
	if len(token) > MaxTokenLen {
		return nil, refuse(ReasonMalformed, "the token is longer than %d bytes", MaxTokenLen)
	}
	var key [sha256.Size]byte
	if v.Cache != nil {
		key = sha256.Sum256([]byte(token))
		if c := v.Cache.get(&key); c != nil {
			if err := v.checkClaims(c, audience); err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	raw := []byte(token)
	hdrB64, _, _, err := jwsbb.SplitCompact(raw)
	if err != nil {
		return nil, refuse(ReasonMalformed, "the token is not a JWT")
	}
	hdr := jwsbb.HeaderParseCompact(hdrB64)
	if _, err := jwsbb.HeaderGetString(hdr, "alg"); err != nil {
		return nil, refuse(ReasonMalformed, "the token's header is not valid")
	}
	typ, _ := jwsbb.HeaderGetString(hdr, "typ")
	if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		// RFC 9068 §4: only tokens typed as access tokens, so an ID token
		// or another JWT signed by the same key cannot pass as one.
		return nil, refuse(ReasonType, "the token is not an access token (typ %q, want at+jwt)", typ)
	}
	kid, err := jwsbb.HeaderGetString(hdr, "kid")
	if err != nil || kid == "" {
		return nil, refuse(ReasonUnknownKey, "the token names no signing key (kid)")
	}
	alg, pub, ok := v.Keys.PublicKey(kid)
	if !ok && v.UnknownKey != nil && v.UnknownKey(kid) {
		alg, pub, ok = v.Keys.PublicKey(kid)
	}
	if !ok {
		return nil, refuse(ReasonUnknownKey, "the token was signed with a key this issuer does not know")
	}
	// The algorithm is the key's, never the header's: VerifyCompactFast
	// refuses a header alg that differs (alg:none, HS256 with a public key).
	payload, err := jws.VerifyCompactFast(pub, raw, alg)
	if err != nil {
		if errors.Is(err, jws.ErrCritPresent()) || errors.Is(err, jws.ErrB64Present()) {
			return nil, refuse(ReasonMalformed, "the token carries header parameters this issuer never sets")
		}
		return nil, refuse(ReasonSignature, "the token's signature is not valid")
	}
	c := new(Claims)
	if err := json.Unmarshal(payload, c); err != nil {
		return nil, refuse(ReasonMalformed, "the token's claims are not valid JSON")
	}
	if err := v.checkClaims(c, audience); err != nil {
		return nil, err
	}
	if v.Cache != nil {
		v.Cache.put(&key, c, v.now().Unix())
	}
	return c, nil
}

func (v *Validator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Validator) checkClaims(c *Claims, audience string) *TokenError {
	if c.Issuer != v.Issuer {
		return refuse(ReasonIssuer, "the token was issued by %q, not %q", c.Issuer, v.Issuer)
	}
	if c.Subject == "" || c.ClientID == "" || c.ID == "" || c.ExpiresAt == 0 || c.IssuedAt == 0 {
		return refuse(ReasonMissingClaims, "the token lacks required claims (sub, client_id, jti, exp, iat)")
	}
	t := v.now()
	leeway := int64(v.Leeway / time.Second)
	if t.Unix() >= c.ExpiresAt+leeway {
		return refuse(ReasonExpired, "the token expired at %s", time.Unix(c.ExpiresAt, 0).UTC().Format(time.RFC3339))
	}
	if c.NotBefore > t.Unix()+leeway || c.IssuedAt > t.Unix()+leeway {
		return refuse(ReasonNotYetValid, "the token is not valid yet")
	}
	if audience != "" && !slices.Contains(c.Audience, audience) {
		return refuse(ReasonAudience, "the token is not meant for %q", audience)
	}
	if v.Revoked != nil {
		if v.Revoked.Stale() {
			return refuse(ReasonStale, "revocations cannot be checked: the token store has been unreachable too long")
		}
		if v.Revoked.IsRevoked(c) {
			return refuse(ReasonRevoked, "the token was revoked")
		}
	}
	return nil
}
