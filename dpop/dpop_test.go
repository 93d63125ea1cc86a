package dpop_test

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokengate/tokengate/dpop"
	"github.com/tokengate/tokengate/internal/dpoptest"
)

// proof is a token endpoint proof of c's with o applied.
func proof(t testing.TB, c *dpoptest.Client, claims, hdr map[string]any) string {
	t.Helper()
	o := dpoptest.Options{Claims: claims, Header: map[string]any{}}
	for k, v := range hdr {
		if k == "sign" {
			o.SignKey, o.SignAlg = v.([2]any)[0], v.([2]any)[1].(jwa.SignatureAlgorithm)
			continue
		}
		o.Header[k] = v
	}
	return c.Proof(t, "POST", "https://auth.example.com/oauth/token", "", o)
}

var tokenEndpoint = dpop.Request{Method: "POST", URL: "https://auth.example.com/oauth/token"}

// verifier keeps the keys it parsed, as the servers' do.
var verifier = new(dpop.Verifier)

// Every check of RFC 9449 §4.3: each case is a proof that must be refused.
func TestVerifyRefuses(t *testing.T) {
	c := dpoptest.New(t, jwa.ES256())
	good := proof(t, c, nil, nil)
	p, err := verifier.Verify(good, tokenEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := c.Pub.Thumbprint(crypto.SHA256)
	if p.JKT != base64.RawURLEncoding.EncodeToString(tp) {
		t.Fatalf("jkt %s", p.JKT)
	}
	// Without a Verifier's cache, the same answer.
	if q, err := (*dpop.Verifier)(nil).Verify(good, tokenEndpoint); err != nil || q.JKT != p.JKT {
		t.Fatalf("a nil Verifier: %+v %v", q, err)
	}
	token := "at-123"
	sum := sha256.Sum256([]byte(token))
	ath := base64.RawURLEncoding.EncodeToString(sum[:])
	resource := dpop.Request{Method: "GET", URL: "https://api.example.com/things?x=1", AccessToken: token}
	if _, err := verifier.Verify(proof(t, c, map[string]any{"htm": "GET", "htu": "https://API.example.com:443/things", "ath": ath}, nil), resource); err != nil {
		t.Fatalf("a resource proof (htu normalised, query ignored): %v", err)
	}
	hmacKey, _ := jwk.Import([]byte("0123456789abcdef0123456789abcdef"))
	for name, proof := range map[string]string{
		"another method":          proof(t, c, map[string]any{"htm": "GET"}, nil),
		"another host":            proof(t, c, map[string]any{"htu": "https://evil.example.com/oauth/token"}, nil),
		"another path":            proof(t, c, map[string]any{"htu": "https://auth.example.com/oauth/revoke"}, nil),
		"userinfo in htu":         proof(t, c, map[string]any{"htu": "https://u@auth.example.com/oauth/token"}, nil),
		"user and password":       proof(t, c, map[string]any{"htu": "https://u:p@auth.example.com:443/oauth/token"}, nil),
		"stale iat":               proof(t, c, map[string]any{"iat": time.Now().Add(-2 * dpop.Window).Unix()}, nil),
		"iat in the future":       proof(t, c, map[string]any{"iat": time.Now().Add(2 * dpop.Window).Unix()}, nil),
		"no jti":                  proof(t, c, map[string]any{"jti": nil}, nil),
		"no typ":                  proof(t, c, nil, map[string]any{"typ": nil}),
		"typ JWT":                 proof(t, c, nil, map[string]any{"typ": "JWT"}),
		"no jwk":                  proof(t, c, nil, map[string]any{"jwk": nil}),
		"private key in jwk":      proof(t, c, nil, map[string]any{"jwk": c.Priv}),
		"HS256":                   proof(t, c, nil, map[string]any{"sign": [2]any{hmacKey, jwa.HS256()}, "jwk": nil}),
		"another key's signature": proof(t, c, nil, map[string]any{"jwk": dpoptest.New(t, jwa.ES256()).Pub}),
		"not a JWS":               "not.a.proof",
	} {
		if _, err := verifier.Verify(proof, tokenEndpoint); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, proof := range map[string]string{
		"wrong ath": proof(t, c, map[string]any{"htm": "GET", "htu": "https://api.example.com/things", "ath": "x" + ath[1:]}, nil),
		"no ath":    proof(t, c, map[string]any{"htm": "GET", "htu": "https://api.example.com/things"}, nil),
	} {
		if _, err := verifier.Verify(proof, resource); err == nil || !strings.Contains(err.Error(), "ath") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Every asymmetric family verifies.
func TestAlgorithms(t *testing.T) {
	for _, alg := range []jwa.SignatureAlgorithm{jwa.ES256(), jwa.EdDSA(), jwa.RS256(), jwa.PS256()} {
		c := dpoptest.New(t, alg)
		if _, err := verifier.Verify(proof(t, c, nil, nil), tokenEndpoint); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
}

// A proof is accepted once per instance; the set stays bounded.
func TestReplay(t *testing.T) {
	c := dpoptest.New(t, jwa.ES256())
	p, err := verifier.Verify(proof(t, c, map[string]any{"jti": "j-1"}, nil), tokenEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	r := &dpop.Replay{Max: 100}
	now := time.Now()
	if r.Seen(p, now) || !r.Seen(p, now) {
		t.Fatal("a replayed proof was not refused")
	}
	// Past its window a proof's iat refuses it; the set forgets it.
	if r.Seen(p, now.Add(3*dpop.Window)) {
		t.Fatal("a proof was remembered past its window")
	}
	for i := range 1000 {
		q := *p
		q.JTI = fmt.Sprint("other-", i)
		if r.Seen(&q, now) {
			t.Fatalf("a fresh proof %d taken for a replay", i)
		}
	}
	if n := r.Len(); n > 100 {
		t.Fatalf("the replay set holds %d proofs, more than its 100", n)
	}
}

// BenchmarkVerify is one proof check, per algorithm.
//
//	go test ./dpop -run XXX -bench Verify -benchmem
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []jwa.SignatureAlgorithm{jwa.ES256(), jwa.EdDSA(), jwa.RS256(), jwa.PS256()} {
		c := dpoptest.New(b, alg)
		proof := proof(b, c, nil, nil)
		b.Run(alg.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := verifier.Verify(proof, tokenEndpoint); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Nonces turn every period, the one before still good; every instance with
// the key makes the same; without a key none is valid.
func TestNonces(t *testing.T) {
	now := time.Now()
	key := []byte("0123456789abcdef0123456789abcdef")
	a := &dpop.Nonces{Key: func() []byte { return key }, Now: func() time.Time { return now }}
	b := &dpop.Nonces{Key: func() []byte { return key }, Now: func() time.Time { return now }}
	n := a.Current()
	if n == "" || n != b.Current() || !b.Valid(n) {
		t.Fatalf("instances disagree: %q %q", n, b.Current())
	}
	later := &dpop.Nonces{Key: a.Key, Now: func() time.Time { return now.Add(dpop.NoncePeriod) }}
	if !later.Valid(n) || later.Current() == n {
		t.Fatal("the previous period's nonce must still be valid, and a new one current")
	}
	muchLater := &dpop.Nonces{Key: a.Key, Now: func() time.Time { return now.Add(3 * dpop.NoncePeriod) }}
	if muchLater.Valid(n) {
		t.Fatal("an old nonce stayed valid")
	}
	none := &dpop.Nonces{Key: func() []byte { return nil }}
	if none.Current() != "" || none.Valid("") {
		t.Fatal("without a key, a nonce was made or accepted")
	}
}
