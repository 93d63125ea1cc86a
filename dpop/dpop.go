// Package dpop checks DPoP proofs (RFC 9449): the JWT a client signs with
// its own key for each request, which binds its tokens to that key. The
// token endpoint and bearer_auth share these checks (§4.3); what each
// remembers of a proof (its jti, for single use) is theirs.
package dpop

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/tokengate/tokengate/jose"
)

// Window is how far a proof's iat may be from the server's clock, either
// way (§4.3 check 11; §11.1 on keeping it short).
const Window = 60 * time.Second

// MaxProofLen bounds the proofs looked at: a proof holds a public key and
// a few claims.
const MaxProofLen = 8 << 10

// Proof is a checked proof.
type Proof struct {
	// JKT is the SHA-256 JWK thumbprint of its key (RFC 7638), the
	// cnf.jkt that binds a token to it.
	JKT string
	// JTI is its unique identifier, for single use.
	JTI string
	// IssuedAt is its iat.
	IssuedAt time.Time
	// Nonce is its nonce claim, if any.
	Nonce string
}

// Error is why a proof is refused; its text is safe to show the client.
type Error struct{ Description string }

func (e *Error) Error() string { return e.Description }

func refuse(format string, args ...any) *Error {
	return &Error{Description: fmt.Sprintf(format, args...)}
}

// Request is what a proof must match: the request's method and URL (the
// URL as the client called it: scheme and host as it used them), and for
// a resource request the access token (for ath).
type Request struct {
	Method      string
	URL         string
	AccessToken string
	Now         time.Time
}

type claims struct {
	JTI   string  `json:"jti"`
	HTM   string  `json:"htm"`
	HTU   string  `json:"htu"`
	IAT   float64 `json:"iat"`
	ATH   string  `json:"ath"`
	Nonce string  `json:"nonce"`
}

// header is what a proof's protected header must say.
type header struct {
	Typ string          `json:"typ"`
	Alg string          `json:"alg"`
	JWK json.RawMessage `json:"jwk"`
	// Crit would change how the proof is verified; tokengate knows none.
	Crit json.RawMessage `json:"crit"`
}

// Verifier checks proofs. It keeps the client keys it parsed (with their
// thumbprints) in a bounded cache, so that only a key's first proof
// parses it: a proof then costs its signature and a few microseconds.
// The zero value is ready; a nil *Verifier verifies without the cache.
type Verifier struct {
	keys keyCache
}

// Verify checks a proof against the request (RFC 9449 §4.3, checks 2 to
// 9, 11 and 12). Errors are *Error.
func (v *Verifier) Verify(proof string, req Request) (*Proof, error) {
	if len(proof) > MaxProofLen {
		return nil, refuse("the DPoP proof is longer than %d bytes", MaxProofLen)
	}
	raw := []byte(proof)
	hdrB64, payloadB64, sigB64, err := jwsbb.SplitCompact(raw)
	if err != nil {
		return nil, refuse("the DPoP proof is not a compact JWS")
	}
	var h header
	if b, err := base64.RawURLEncoding.DecodeString(string(hdrB64)); err != nil || json.Unmarshal(b, &h) != nil {
		return nil, refuse("the DPoP proof's header is not valid")
	}
	if !strings.EqualFold(h.Typ, "dpop+jwt") {
		return nil, refuse("the DPoP proof's typ must be dpop+jwt")
	}
	if !slices.Contains(jose.Asymmetric, h.Alg) {
		return nil, refuse("the DPoP proof's alg must be one of %s", strings.Join(jose.Asymmetric, ", "))
	}
	if len(h.Crit) > 0 {
		return nil, refuse("the DPoP proof carries header parameters this server does not know (crit)")
	}
	if len(h.JWK) == 0 {
		return nil, refuse("the DPoP proof carries no jwk")
	}
	var k clientKey
	var e *Error
	if v != nil {
		k, e = v.keys.get(h.JWK)
	} else {
		k, e = parseKey(h.JWK)
	}
	if e != nil {
		return nil, e
	}
	sig, err := base64.RawURLEncoding.DecodeString(string(sigB64))
	if err != nil {
		return nil, refuse("the DPoP proof's signature is not base64url")
	}
	if jwsbb.Verify(k.key, h.Alg, raw[:len(hdrB64)+1+len(payloadB64)], sig) != nil {
		return nil, refuse("the DPoP proof's signature does not verify with its jwk")
	}
	var c claims
	if b, err := base64.RawURLEncoding.DecodeString(string(payloadB64)); err != nil || json.Unmarshal(b, &c) != nil {
		return nil, refuse("the DPoP proof's claims are not valid JSON")
	}
	if c.JTI == "" || c.HTM == "" || c.HTU == "" || c.IAT == 0 {
		return nil, refuse("the DPoP proof lacks jti, htm, htu or iat")
	}
	if c.HTM != req.Method {
		return nil, refuse("the DPoP proof is for %s, not this %s request", c.HTM, req.Method)
	}
	want, err := normalize(req.URL)
	got, gerr := normalize(c.HTU)
	if err != nil || gerr != nil || got != want {
		return nil, refuse("the DPoP proof's htu is not this request's URL (%s)", want)
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	iat := time.Unix(int64(c.IAT), 0)
	if iat.Before(now.Add(-Window)) || iat.After(now.Add(Window)) {
		return nil, refuse("the DPoP proof's iat is more than %s from now: make a new proof for each request", Window)
	}
	if req.AccessToken != "" {
		sum := sha256.Sum256([]byte(req.AccessToken))
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return nil, refuse("the DPoP proof's ath is not the hash of this access token")
		}
	}
	return &Proof{JKT: k.jkt, JTI: c.JTI, IssuedAt: iat, Nonce: c.Nonce}, nil
}

// clientKey is a proof's jwk, parsed: the raw public key and its
// thumbprint.
type clientKey struct {
	key any
	jkt string
}

// keyCache keeps parsed client keys by their JWK's JSON; bounded, as
// every client (and every attacker) may bring a new key.
type keyCache struct {
	mu sync.RWMutex
	m  map[string]clientKey
}

const maxKeys = 10_000

func (kc *keyCache) get(raw json.RawMessage) (clientKey, *Error) {
	kc.mu.RLock()
	k, ok := kc.m[string(raw)]
	kc.mu.RUnlock()
	if ok {
		return k, nil
	}
	k, e := parseKey(raw)
	if e != nil {
		return k, e
	}
	kc.mu.Lock()
	if kc.m == nil || len(kc.m) >= maxKeys {
		kc.m = map[string]clientKey{} // start over: cheaper than tracking age
	}
	kc.m[string(raw)] = k
	kc.mu.Unlock()
	return k, nil
}

// parseKey reads a proof's jwk: a public key, and its thumbprint.
func parseKey(raw json.RawMessage) (clientKey, *Error) {
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return clientKey{}, refuse("the DPoP proof's jwk is not a JWK")
	}
	if private, err := jwk.IsPrivateKey(key); err != nil || private {
		return clientKey{}, refuse("the DPoP proof's jwk must be an asymmetric public key")
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return clientKey{}, refuse("the DPoP proof's jwk has no thumbprint")
	}
	var pub any
	if err := jwk.Export(key, &pub); err != nil {
		return clientKey{}, refuse("the DPoP proof's jwk cannot be used")
	}
	return clientKey{pub, base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// normalize is a URL as htu compares it (RFC 9449 §4.3 check 9, RFC 3986
// §6.2.2 and §6.2.3): without query and fragment, scheme and host in lower
// case, the default port dropped, an empty path as "/". A URL with
// userinfo is no request's URL: comparing scheme, host, port and path
// alone would let one through.
func normalize(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("not an absolute URL without userinfo")
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}
