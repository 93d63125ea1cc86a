package main

// Another authorization server for the trusted-issuer scenarios: its
// discovery document, its key set, and an introspection endpoint that
// knows one opaque token, all on a loopback listener of the command's.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// remoteOpaque is the opaque token the remote issuer's introspection
// answers for.
const remoteOpaque = "opaque-load-token-0123456789abcdef"

type remoteIssuer struct {
	URL string
	key jwk.Key
}

func startRemote() *remoteIssuer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("%v", err)
	}
	raw, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := jwk.Import(raw)
	_ = key.Set(jwk.KeyIDKey, "remote-1")
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwks, _ := json.Marshal(set)
	r := &remoteIssuer{URL: "http://" + l.Addr().String(), key: key}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch req.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"introspection_endpoint":%q}`, r.URL, r.URL+"/jwks", r.URL+"/introspect")
		case "/jwks":
			w.Write(jwks)
		case "/introspect":
			_ = req.ParseForm()
			if req.PostForm.Get("token") != remoteOpaque {
				fmt.Fprint(w, `{"active":false}`)
				return
			}
			fmt.Fprintf(w, `{"active":true,"sub":"u-1","client_id":"portal","scope":"read","aud":"https://api.example.com","exp":%d}`, time.Now().Add(2*time.Hour).Unix())
		default:
			http.NotFound(w, req)
		}
	}))
	return r
}

// token is a JWT access token of the remote issuer's.
func (r *remoteIssuer) token() string {
	tok, _ := jwt.NewBuilder().Issuer(r.URL).Subject("u-1").Audience([]string{"https://api.example.com"}).JwtID("j-1").
		IssuedAt(time.Now()).Expiration(time.Now().Add(2*time.Hour)).Claim("client_id", "portal").Claim("scope", "read").Build()
	hdr := jws.NewHeaders()
	_ = hdr.Set("typ", "at+jwt")
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), r.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		die("%v", err)
	}
	return string(b)
}
