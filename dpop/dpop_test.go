package dpop_test

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
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/tokengate/tokengate/dpop"
)

// client is a DPoP key pair and the proofs it makes.
type client struct {
	alg  jwa.SignatureAlgorithm
	priv jwk.Key
	pub  jwk.Key
}

func newClient(t testing.TB, alg jwa.SignatureAlgorithm) *client {
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
	return &client{alg, priv, pub}
}

// proof signs a proof with claims over the defaults (POST to the token
// endpoint, now, a fresh jti); hdr overrides header fields.
func (c *client) proof(t testing.TB, claims map[string]any, hdr map[string]any) string {
	t.Helper()
	body := map[string]any{"jti": base64.RawURLEncoding.EncodeToString([]byte(time.Now().String())), "htm": "POST",
		"htu": "https://auth.example.com/oauth/token", "iat": time.Now().Unix()}
	for k, v := range claims {
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
	}
	payload, _ := jsonMarshal(body)
	h := jws.NewHeaders()
	_ = h.Set("typ", "dpop+jwt")
	_ = h.Set("jwk", c.pub)
	key, alg := any(c.priv), c.alg
	for k, v := range hdr {
		switch k {
		case "sign":
			key, alg = v.([2]any)[0], v.([2]any)[1].(jwa.SignatureAlgorithm)
		default:
			if v == nil {
				_ = h.Remove(k)
			} else {
				_ = h.Set(k, v)
			}
		}
	}
	b, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var tokenEndpoint = dpop.Request{Method: "POST", URL: "https://auth.example.com/oauth/token"}

// Every check of RFC 9449 §4.3: each case is a proof that must be refused.
func TestVerifyRefuses(t *testing.T) {
	c := newClient(t, jwa.ES256())
	good := c.proof(t, nil, nil)
	p, err := dpop.Verify(good, tokenEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := c.pub.Thumbprint(crypto.SHA256)
	if p.JKT != base64.RawURLEncoding.EncodeToString(tp) {
		t.Fatalf("jkt %s", p.JKT)
	}
	token := "at-123"
	sum := sha256.Sum256([]byte(token))
	ath := base64.RawURLEncoding.EncodeToString(sum[:])
	resource := dpop.Request{Method: "GET", URL: "https://api.example.com/things?x=1", AccessToken: token}
	if _, err := dpop.Verify(c.proof(t, map[string]any{"htm": "GET", "htu": "https://API.example.com:443/things", "ath": ath}, nil), resource); err != nil {
		t.Fatalf("a resource proof (htu normalised, query ignored): %v", err)
	}
	hmacKey, _ := jwk.Import([]byte("0123456789abcdef0123456789abcdef"))
	for name, proof := range map[string]string{
		"another method":          c.proof(t, map[string]any{"htm": "GET"}, nil),
		"another host":            c.proof(t, map[string]any{"htu": "https://evil.example.com/oauth/token"}, nil),
		"another path":            c.proof(t, map[string]any{"htu": "https://auth.example.com/oauth/revoke"}, nil),
		"stale iat":               c.proof(t, map[string]any{"iat": time.Now().Add(-2 * dpop.Window).Unix()}, nil),
		"iat in the future":       c.proof(t, map[string]any{"iat": time.Now().Add(2 * dpop.Window).Unix()}, nil),
		"no jti":                  c.proof(t, map[string]any{"jti": nil}, nil),
		"no typ":                  c.proof(t, nil, map[string]any{"typ": nil}),
		"typ JWT":                 c.proof(t, nil, map[string]any{"typ": "JWT"}),
		"no jwk":                  c.proof(t, nil, map[string]any{"jwk": nil}),
		"private key in jwk":      c.proof(t, nil, map[string]any{"jwk": c.priv}),
		"HS256":                   c.proof(t, nil, map[string]any{"sign": [2]any{hmacKey, jwa.HS256()}, "jwk": nil}),
		"another key's signature": c.proof(t, nil, map[string]any{"jwk": newClient(t, jwa.ES256()).pub}),
		"not a JWS":               "not.a.proof",
	} {
		if _, err := dpop.Verify(proof, tokenEndpoint); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, proof := range map[string]string{
		"wrong ath": c.proof(t, map[string]any{"htm": "GET", "htu": "https://api.example.com/things", "ath": "x" + ath[1:]}, nil),
		"no ath":    c.proof(t, map[string]any{"htm": "GET", "htu": "https://api.example.com/things"}, nil),
	} {
		if _, err := dpop.Verify(proof, resource); err == nil || !strings.Contains(err.Error(), "ath") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Every asymmetric family verifies.
func TestAlgorithms(t *testing.T) {
	for _, alg := range []jwa.SignatureAlgorithm{jwa.ES256(), jwa.EdDSA(), jwa.RS256(), jwa.PS256()} {
		c := newClient(t, alg)
		if _, err := dpop.Verify(c.proof(t, nil, nil), tokenEndpoint); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
}

// A proof is accepted once per instance; the set stays bounded.
func TestReplay(t *testing.T) {
	c := newClient(t, jwa.ES256())
	p, err := dpop.Verify(c.proof(t, map[string]any{"jti": "j-1"}, nil), tokenEndpoint)
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
		c := newClient(b, alg)
		proof := c.proof(b, nil, nil)
		b.Run(alg.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dpop.Verify(proof, tokenEndpoint); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
