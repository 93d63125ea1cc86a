// Package keytest makes client key pairs for tests of private_key_jwt:
// the private JWK a client signs with and the public JWK Set it registers.
package keytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// ES256 returns a fresh P-256 private key (with kid and alg set) and the
// JSON of a JWK Set holding its public half.
func ES256(t testing.TB, kid string) (jwk.Key, []byte) {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := priv.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	if err := priv.Set(jwk.AlgorithmKey, jwa.ES256()); err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return priv, b
}

// Unusable are JWKs tokengate must leave out of a set, each under its own
// kid (the map's key): a 1024-bit RSA key, an RSA key with e=1, an EC
// point off its curve, a secp256k1 key, a key of an unknown kty and a
// symmetric one.
func Unusable(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	big, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	x, y := b64(ec.PublicKey.X.FillBytes(make([]byte, 32))), b64(ec.PublicKey.Y.FillBytes(make([]byte, 32)))
	keys := map[string]string{
		"rsa-1024":  `{"kty":"RSA","alg":"RS256","n":"` + b64(small.N.Bytes()) + `","e":"AQAB"}`,
		"rsa-e1":    `{"kty":"RSA","alg":"RS256","n":"` + b64(big.N.Bytes()) + `","e":"AQ"}`,
		"off-curve": `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + x + `"}`,
		"secp256k1": `{"kty":"EC","crv":"secp256k1","x":"` + x + `","y":"` + y + `"}`,
		"unknown":   `{"kty":"PQC","pub":"` + x + `"}`,
		"symmetric": `{"kty":"oct","alg":"HS256","k":"` + b64(make([]byte, 32)) + `"}`,
	}
	out := map[string]json.RawMessage{}
	for kid, k := range keys {
		out[kid] = json.RawMessage(`{"kid":"` + kid + `",` + k[1:])
	}
	return out
}

// WithKeys is the JSON of set with extra keys added to its "keys".
func WithKeys(t testing.TB, set []byte, extra ...json.RawMessage) []byte {
	t.Helper()
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(set, &doc); err != nil {
		t.Fatal(err)
	}
	doc.Keys = append(extra, doc.Keys...)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
