// Package dpoptest is a DPoP client for tests: a key pair and the proofs
// it signs (RFC 9449 §4.2), correct by default, each part overridable to
// make the proofs the checks must refuse.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Client is a DPoP key pair.
type Client struct {
	Alg  jwa.SignatureAlgorithm
	Priv jwk.Key
	Pub  jwk.Key
}

// New makes a client with a fresh key for alg (ES256, EdDSA, RS256,
// PS256).
func New(t testing.TB, alg jwa.SignatureAlgorithm) *Client {
	t.Helper()
	var raw any
	switch alg.String() {
	case "ES256":
		raw, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, raw, _ = ed25519.GenerateKey(rand.Reader)
	default:
		raw, _ = rsa.GenerateKey(rand.Reader, 2048)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := priv.PublicKey()
	return &Client{alg, priv, pub}
}

// JKT is the key's thumbprint, as cnf.jkt carries it.
func (c *Client) JKT() string {
	tp, _ := c.Pub.Thumbprint(crypto.SHA256)
	return base64.RawURLEncoding.EncodeToString(tp)
}

// ATH is a token's ath.
func ATH(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Options change a proof: claims over the defaults (nil deletes one),
// header fields (nil deletes one), and the key and alg it is signed with.
type Options struct {
	Claims  map[string]any
	Header  map[string]any
	SignKey any
	SignAlg jwa.SignatureAlgorithm
}

// Proof signs a proof for method and url; with token, it carries its ath.
func (c *Client) Proof(t testing.TB, method, url, token string, o ...Options) string {
	t.Helper()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	body := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": method, "htu": url, "iat": time.Now().Unix()}
	if token != "" {
		body["ath"] = ATH(token)
	}
	h := jws.NewHeaders()
	_ = h.Set("typ", "dpop+jwt")
	_ = h.Set("jwk", c.Pub)
	key, alg := any(c.Priv), c.Alg
	for _, opt := range o {
		for k, v := range opt.Claims {
			if v == nil {
				delete(body, k)
			} else {
				body[k] = v
			}
		}
		for k, v := range opt.Header {
			if v == nil {
				_ = h.Remove(k)
			} else {
				_ = h.Set(k, v)
			}
		}
		if opt.SignKey != nil {
			key, alg = opt.SignKey, opt.SignAlg
		}
	}
	payload, _ := json.Marshal(body)
	b, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
