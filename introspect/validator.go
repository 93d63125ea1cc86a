package introspect

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/lestrrat-go/jwx/v3/jwa"
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
	// ReasonStale means the revocation state is too old to trust (the store
	// has been unreachable too long); the answer is "unavailable", not
	// "invalid".
	ReasonStale Reason = "revocations_stale"
	// ReasonUnavailable means the issuer's keys (or its introspection) cannot
	// be reached; the answer is "unavailable", never a pass.
	ReasonUnavailable Reason = "issuer_unavailable"
)

// TokenError is why a token is not valid. Its message is safe to show the
// token's holder: it never repeats the token.
type TokenError struct {
	Reason Reason
	// Description is for whoever sent the token: it never names the
	// issuer's internal URLs.
	Description string
	// Err is the cause, for the log (a fetch's error, with its URL).
	Err error
}

func (e *TokenError) Error() string { return e.Description }
func (e *TokenError) Unwrap() error { return e.Err }

func refuse(r Reason, format string, args ...any) *TokenError {
	return &TokenError{Reason: r, Description: fmt.Sprintf(format, args...)}
}

// Validator checks access tokens of one issuer: tokengate's own, or (with
// Types, ScopeClaim and a KeySource over its JWK Set) another's.
type Validator struct {
	Keys   KeySource
	Issuer string
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// Revoked is the in-memory revocation state; nil means none.
	Revoked *Revocations
	// UnknownKey, if set, is called when a token names a key ID we do not
	// know (another instance may have rotated, or the issuer did); it
	// reports whether the keys were reloaded, and must itself limit how
	// often it does so. An error means the keys cannot be had at all: the
	// token is then refused as unavailable, never as invalid.
	UnknownKey func(kid string) (bool, error)
	// Types are the typ headers accepted (compared without case, with or
	// without "application/"). Default: at+jwt alone (RFC 9068 §4). A
	// token typed at+jwt must carry RFC 9068's claims; another (JWT, as
	// many issuers type their access tokens) only sub and exp.
	Types []string
	// ScopeClaim is where the scopes are: "scope" (default), "scp", or a
	// dotted path such as realm_access.roles; a space-separated string or
	// an array of strings.
	ScopeClaim string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// AcceptExpired takes tokens past their exp, for reading what an old
	// token says (an id_token_hint may well be old: RP-Initiated Logout
	// §2), never for letting a request through.
	AcceptExpired bool
	// Cache, if set, remembers verified tokens (see TokenCache).
	Cache *TokenCache

	headers headerCache
}

// Validate verifies token and returns its claims, which the caller must not
// modify (they may be shared through the cache). When audiences names any
// (empty ones aside), one of them must be among the token's aud. Errors
// are *TokenError.
func (v *Validator) Validate(token string, audiences ...string) (*Claims, error) {
	if len(token) > MaxTokenLen {
		return nil, refuse(ReasonMalformed, "the token is longer than %d bytes", MaxTokenLen)
	}
	var key [sha256.Size]byte
	if v.Cache != nil {
		key = sha256.Sum256(readOnlyBytes(token))
		if c := v.Cache.get(&key); c != nil {
			if err := v.checkClaims(c, audiences); err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	raw := []byte(token)
	hdrB64, payloadB64, sigB64, err := jwsbb.SplitCompact(raw)
	if err != nil {
		return nil, refuse(ReasonMalformed, "the token is not a JWT")
	}
	h, cached := v.headers.get(hdrB64)
	if !cached {
		var e *TokenError
		if h, e = v.parseHeader(hdrB64); e != nil {
			return nil, e
		}
	}
	alg, pub, ok := v.Keys.PublicKey(h.kid)
	if !ok && v.UnknownKey != nil {
		reloaded, err := v.UnknownKey(h.kid)
		if err != nil {
			te := refuse(ReasonUnavailable, "the keys of %s cannot be fetched right now", v.Issuer)
			te.Err = err
			return nil, te
		}
		if reloaded {
			alg, pub, ok = v.Keys.PublicKey(h.kid)
		}
	}
	if !ok {
		return nil, refuse(ReasonUnknownKey, "the token was signed with a key this issuer does not know")
	}
	// The algorithm is the key's, never the header's: a header naming
	// another (alg:none, HS256 with a public key) is refused.
	if h.alg != alg.String() {
		return nil, refuse(ReasonSignature, "the token's signature is not valid")
	}
	sig, ok := decodeB64(sigB64)
	if !ok {
		return nil, refuse(ReasonSignature, "the token's signature is not valid")
	}
	signingInput := raw[:len(hdrB64)+1+len(payloadB64)]
	if err := jwsbb.Verify(pub, h.alg, signingInput, sig); err != nil {
		return nil, refuse(ReasonSignature, "the token's signature is not valid")
	}
	if !cached {
		// Only headers under a valid signature are remembered: they are
		// the issuer's own, one per key.
		v.headers.put(hdrB64, h)
	}
	payload, ok := decodeB64(payloadB64)
	if !ok {
		return nil, refuse(ReasonMalformed, "the token's claims are not base64url")
	}
	c := new(Claims)
	if err := json.Unmarshal(payload, c); err != nil {
		return nil, refuse(ReasonMalformed, "the token's claims are not valid JSON")
	}
	c.raw, c.profile9068 = payload, h.at
	if e := v.mapClaims(c); e != nil {
		return nil, e
	}
	if err := v.checkClaims(c, audiences); err != nil {
		return nil, err
	}
	if v.Cache != nil {
		v.Cache.put(&key, c, v.now().Unix())
	}
	return c, nil
}

// header is what Validate needs from a token's protected header: at says
// it is typed as an RFC 9068 access token.
type header struct {
	alg, kid string
	at       bool
}

// parseHeader checks a protected header (RFC 7515 §4, RFC 9068 §2.1).
func (v *Validator) parseHeader(b64 []byte) (header, *TokenError) {
	hdr := jwsbb.HeaderParseCompact(b64)
	alg, err := jwsbb.HeaderGetString(hdr, "alg")
	if err != nil {
		return header{}, refuse(ReasonMalformed, "the token's header is not valid")
	}
	typ, _ := jwsbb.HeaderGetString(hdr, "typ")
	typ = strings.TrimPrefix(strings.ToLower(typ), "application/")
	types := v.Types
	if len(types) == 0 {
		types = defaultTypes
	}
	if !slices.ContainsFunc(types, func(t string) bool { return strings.EqualFold(t, typ) }) {
		// RFC 9068 §4: only tokens typed as access tokens, so an ID token
		// or another JWT signed by the same key cannot pass as one.
		return header{}, refuse(ReasonType, "the token is not an access token (typ %q, want %s)", typ, strings.Join(types, " or "))
	}
	if jwsbb.HeaderHas(hdr, "crit") || jwsbb.HeaderHas(hdr, "b64") {
		// Extensions change how a JWS is verified; tokengate sets none.
		return header{}, refuse(ReasonMalformed, "the token carries header parameters this issuer never sets")
	}
	// Without a kid the key source decides (an issuer with one key).
	kid, _ := jwsbb.HeaderGetString(hdr, "kid")
	return header{alg: alg, kid: kid, at: typ == "at+jwt"}, nil
}

var defaultTypes = []string{"at+jwt"}

// headerCache remembers parsed headers by their encoded bytes: every token
// of one key has the same header, so parsing it once per key is enough.
type headerCache struct {
	mu sync.RWMutex
	m  map[string]header
}

// maxHeaders bounds the cache; an issuer has a handful of keys at a time.
const maxHeaders = 64

func (c *headerCache) get(b64 []byte) (header, bool) {
	c.mu.RLock()
	h, ok := c.m[string(b64)]
	c.mu.RUnlock()
	return h, ok
}

func (c *headerCache) put(b64 []byte, h header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxHeaders {
		c.m = make(map[string]header)
	}
	c.m[string(b64)] = h
}

// decodeB64 decodes unpadded base64url (RFC 7515 §2).
func decodeB64(src []byte) ([]byte, bool) {
	buf := make([]byte, base64.RawURLEncoding.DecodedLen(len(src)))
	n, err := base64.RawURLEncoding.Decode(buf, src)
	return buf[:n], err == nil
}

func (v *Validator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Admit checks claims that came from the issuer's introspection endpoint
// (RFC 7662) rather than a signature: mapped as a token's are, then the
// same checks. It changes c, which must not be shared yet.
func (v *Validator) Admit(c *Claims, audiences ...string) error {
	if e := v.mapClaims(c); e != nil {
		return e
	}
	if e := v.checkClaims(c, audiences); e != nil {
		return e
	}
	return nil
}

// Check repeats the checks of a token admitted before (a cached
// introspection answer): expiry, audience, revocation.
func (v *Validator) Check(c *Claims, audiences ...string) error {
	if e := v.checkClaims(c, audiences); e != nil {
		return e
	}
	return nil
}

// mapClaims reads what another issuer puts elsewhere: the scopes from
// ScopeClaim, the client from azp.
func (v *Validator) mapClaims(c *Claims) *TokenError {
	if c.ClientID == "" {
		c.ClientID = c.AuthorizedParty
	}
	if v.ScopeClaim == "" || v.ScopeClaim == "scope" {
		return nil
	}
	c.Scope = ""
	val, ok := c.lookup(v.ScopeClaim)
	if !ok {
		return nil // no scopes
	}
	scopes, ok := claimText(val)
	if !ok {
		return refuse(ReasonMalformed, "the token's %s is neither a string nor a list of strings", v.ScopeClaim)
	}
	c.Scope = scopes
	return nil
}

func (v *Validator) checkClaims(c *Claims, audiences []string) *TokenError {
	if c.Issuer != v.Issuer {
		return refuse(ReasonIssuer, "the token was issued by %q, not %q", c.Issuer, v.Issuer)
	}
	if c.profile9068 && (c.Subject == "" || c.ClientID == "" || c.ID == "" || c.ExpiresAt == 0 || c.IssuedAt == 0) {
		return refuse(ReasonMissingClaims, "the token lacks required claims (sub, client_id, jti, exp, iat)")
	}
	if c.Subject == "" || c.ExpiresAt == 0 {
		return refuse(ReasonMissingClaims, "the token lacks required claims (sub, exp)")
	}
	t := v.now()
	leeway := int64(v.Leeway / time.Second)
	if t.Unix() >= c.ExpiresAt+leeway && !v.AcceptExpired {
		return refuse(ReasonExpired, "the token expired at %s", time.Unix(c.ExpiresAt, 0).UTC().Format(time.RFC3339))
	}
	if c.NotBefore > t.Unix()+leeway || c.IssuedAt > t.Unix()+leeway {
		return refuse(ReasonNotYetValid, "the token is not valid yet")
	}
	if !meantFor(c.Audience, audiences) {
		return refuse(ReasonAudience, "the token is not meant for %q", strings.Join(audiences, `" or "`))
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

// readOnlyBytes is s's bytes without a copy, for functions that only read
// them and keep nothing (hashing the token on every gateway request would
// otherwise copy half a kilobyte).
func readOnlyBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// meantFor says whether a token for aud is for one of audiences (any, when
// they name none).
func meantFor(aud Audience, audiences []string) bool {
	named := false
	for _, a := range audiences {
		if a == "" {
			continue
		}
		named = true
		if slices.Contains(aud, a) {
			return true
		}
	}
	return !named
}
