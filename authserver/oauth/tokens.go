package oauth

// RFC 7636 (PKCE), RFC 6749 §3.3 (scope tokens), and the random and hashed
// tokens codes and refresh tokens are made of.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
)

// RandomToken is n random bytes, base64url: a code, a refresh token's
// secret, a session ID.
func RandomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is how codes and refresh tokens are stored: high-entropy
// secrets need no slow hash, only one that a store leak cannot reverse.
func HashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// PKCEChallenge is RFC 7636 §4.2 for S256: 43 base64url characters.
var PKCEChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// PKCEVerifier is RFC 7636 §4.1: 43 to 128 unreserved characters.
var PKCEVerifier = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// S256Challenge is RFC 7636 §4.2's S256 code_challenge of verifier:
// BASE64URL(SHA256(verifier)), HashToken's form.
func S256Challenge(verifier string) string { return HashToken(verifier) }

// VerifyPKCE checks an S256 verifier against the stored challenge.
func VerifyPKCE(challenge, verifier string) bool {
	return subtle.ConstantTimeCompare([]byte(S256Challenge(verifier)), []byte(challenge)) == 1
}

// ValidScopeToken says whether s is RFC 6749 §3.3's scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// AppendMissing appends each of more not already in list (scopes,
// algorithms: lists that must name each once).
func AppendMissing(list []string, more ...string) []string {
	for _, v := range more {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// HasScope says whether the space-separated scope holds one, without
// splitting it into a slice.
func HasScope(scope, one string) bool {
	for sc := range strings.FieldsSeq(scope) {
		if sc == one {
			return true
		}
	}
	return false
}
