package introspect_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/tokengate/tokengate/introspect"
)

type benchKey struct {
	alg  jwa.SignatureAlgorithm
	priv any
	pub  any
}

func benchKeys(b *testing.B) map[string]benchKey {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	return map[string]benchKey{
		"ES256": {jwa.ES256(), ec, &ec.PublicKey},
		"EdDSA": {jwa.EdDSA(), edPriv, edPub},
		"RS256": {jwa.RS256(), rs, &rs.PublicKey},
	}
}

// BenchmarkValidate measures one full validation (signature, header, claims,
// revocation) per algorithm; BenchmarkRawVerify is the bare signature check
// it is compared against.
//
//	go test ./introspect -run XXX -bench . -benchmem
func BenchmarkValidate(b *testing.B) {
	for _, name := range []string{"ES256", "EdDSA", "RS256"} {
		k := benchKeys(b)[name]
		b.Run(name, func(b *testing.B) {
			keys := keySource{"k1": {k.alg, k.pub}}
			v := &introspect.Validator{Keys: keys, Issuer: iss, Revoked: introspect.NewRevocations()}
			tok := signBench(b, k, claims())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(tok, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRawVerify(b *testing.B) {
	for _, name := range []string{"ES256", "EdDSA", "RS256"} {
		k := benchKeys(b)[name]
		b.Run(name, func(b *testing.B) {
			tok := []byte(signBench(b, k, claims()))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jws.VerifyCompactFast(k.pub, tok, k.alg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func signBench(b *testing.B, k benchKey, c map[string]any) string {
	h := jws.NewHeaders()
	_ = h.Set("kid", "k1")
	_ = h.Set("typ", "at+jwt")
	payload, _ := json.Marshal(c)
	tok, err := jws.Sign(payload, jws.WithKey(k.alg, k.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		b.Fatal(err)
	}
	return string(tok)
}
