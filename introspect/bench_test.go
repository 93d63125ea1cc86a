package introspect_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/tokengate/tokengate/authserver/store"
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

// BenchmarkVerify measures, per algorithm and side by side (so that -count
// interleaves them on a noisy machine): the bare signature check (raw), a
// full validation — header, signature, claims, revocation — (validate),
// and a validation the token cache answers (cached).
//
//	go test ./introspect -run XXX -bench Verify -benchmem -count 5
func BenchmarkVerify(b *testing.B) {
	for _, name := range []string{"ES256", "EdDSA", "RS256"} {
		k := benchKeys(b)[name]
		tok := signBench(b, k, claims())
		keys := keySource{"k1": {k.alg, k.pub}}
		b.Run(name+"/raw", func(b *testing.B) {
			raw := []byte(tok)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jws.VerifyCompactFast(k.pub, raw, k.alg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/validate", func(b *testing.B) {
			v := &introspect.Validator{Keys: keys, Issuer: iss, Revoked: introspect.NewRevocations()}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(tok, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/cached", func(b *testing.B) {
			v := &introspect.Validator{Keys: keys, Issuer: iss, Revoked: introspect.NewRevocations(), Cache: introspect.NewTokenCache(1000)}
			if _, err := v.Validate(tok, ""); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(tok, "https://api.example.com"); err != nil {
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

// BenchmarkValidateRevocations is one ES256 validation with an empty
// revocation state and with 100,000 revoked jtis (plus grants, clients and
// subjects): the lookup is a map access either way.
//
//	go test ./introspect -run XXX -bench Revocations -benchmem
func BenchmarkValidateRevocations(b *testing.B) {
	k := benchKeys(b)["ES256"]
	tok := signBench(b, k, claims(func(c map[string]any) { c["jti"] = "not-revoked" }))
	for _, n := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("revoked=%d", n), func(b *testing.B) {
			rv := introspect.NewRevocations()
			var list []store.Revocation
			until := time.Now().Add(time.Hour)
			for i := range n {
				list = append(list, store.Revocation{Kind: store.RevokeToken, Value: fmt.Sprint("jti-", i), At: time.Now(), ExpiresAt: until})
				if i%10 == 0 {
					list = append(list, store.Revocation{Kind: store.RevokeGrant, Value: fmt.Sprint("g-", i), At: time.Now(), ExpiresAt: until},
						store.Revocation{Kind: store.RevokeSubject, Value: fmt.Sprint("u-", i), At: time.Now(), ExpiresAt: until})
				}
			}
			rv.Replace(list)
			v := &introspect.Validator{Keys: keySource{"k1": {k.alg, k.pub}}, Issuer: iss, Revoked: rv}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(tok, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRevocationCheck isolates the in-memory lookup.
func BenchmarkRevocationCheck(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("revoked=%d", n), func(b *testing.B) {
			rv := introspect.NewRevocations()
			var list []store.Revocation
			for i := range n {
				list = append(list, store.Revocation{Kind: store.RevokeToken, Value: fmt.Sprint("jti-", i), At: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
			}
			rv.Replace(list)
			c := &introspect.Claims{ID: "not-revoked", GrantID: "g", ClientID: "app", Subject: "mark", IssuedAt: time.Now().Unix()}
			b.ReportAllocs()
			for b.Loop() {
				if rv.IsRevoked(c) {
					b.Fatal("revoked")
				}
			}
		})
	}
}
