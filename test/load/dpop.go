package main

// DPoP for the load: a client key and proofs made ahead of the run (each
// proof works once, and signing them during the run would charge the
// load generator's cost to the route).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

type dpopClient struct {
	priv, pub jwk.Key
}

func newDPoPClient() *dpopClient {
	raw, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	priv, _ := jwk.Import(raw)
	pub, _ := priv.PublicKey()
	return &dpopClient{priv, pub}
}

// proof signs a proof for method and u, with the token's ath when given.
func (c *dpopClient) proof(method, u, token string) string {
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	claims := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": method, "htu": u, "iat": time.Now().Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, _ := json.Marshal(claims)
	h := jws.NewHeaders()
	_ = h.Set("typ", "dpop+jwt")
	_ = h.Set("jwk", c.pub)
	b, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), c.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		die("%v", err)
	}
	return string(b)
}

// dpopToken gets a bound client credentials token.
func (in *instance) dpopToken(c *dpopClient, id, secret string) string {
	tokenURL := in.url(in.p.Auth, "/oauth/token")
	req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	req.Header.Set("DPoP", c.proof("POST", tokenURL, ""))
	resp, err := client.Do(req)
	if err != nil {
		die("%v", err)
	}
	defer resp.Body.Close()
	var m struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if json.NewDecoder(resp.Body).Decode(&m) != nil || m.TokenType != "DPoP" {
		die("no DPoP token (%d)", resp.StatusCode)
	}
	return m.AccessToken
}

// proofPool is proofs made ahead, handed out once each. A run that uses
// them all, or outlives them, goes on with proofs made on the spot
// (counted in late): it never stops for want of them, though those
// requests then also pay for their signature.
type proofPool struct {
	c                  *dpopClient
	method, url, token string
	proofs             []string
	// made is when the proofs were made: they are used while fresh.
	made time.Time
	next atomic.Int64
	late atomic.Int64
}

// proofLife is how long a proof made ahead is used: the server accepts an
// iat up to 60 s old (dpop.Window).
const proofLife = 50 * time.Second

// pool makes n proofs of method u with token ahead of the run.
func (c *dpopClient) pool(n int, method, u, token string) *proofPool {
	p := &proofPool{c: c, method: method, url: u, token: token, proofs: make([]string, n)}
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				p.proofs[i] = c.proof(method, u, token)
			}
		})
	}
	wg.Wait()
	p.made = time.Now()
	return p
}

// get is a DPoP request with the next proof.
func (p *proofPool) get() error {
	var proof string
	if i := p.next.Add(1) - 1; int(i) < len(p.proofs) && time.Since(p.made) < proofLife {
		proof = p.proofs[i]
	} else {
		p.late.Add(1)
		proof = p.c.proof(p.method, p.url, p.token)
	}
	req, _ := http.NewRequest(p.method, p.url, nil)
	req.Header.Set("Authorization", "DPoP "+p.token)
	req.Header.Set("DPoP", proof)
	return do(req, 200)
}
