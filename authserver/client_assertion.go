package authserver

// RFC 7523 §2.2 and §3: private_key_jwt, a client authenticating with a
// JWT it signed with a key whose public half it registered.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/jose"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Limits of an assertion: how far ahead it may expire, and the clock skew
// tolerated.
const (
	maxAssertionLife = 5 * time.Minute
	assertionSkew    = 30 * time.Second
	jwksCacheFor     = 5 * time.Minute
	jwksCacheEntries = 1000
)

// usesAssertion says whether a client authenticates with private_key_jwt.
func usesAssertion(c *Client) bool { return len(c.JWKS) > 0 || c.JWKSURI != "" }

// authenticateAssertion checks a client_assertion and returns its client.
func (s *Server) authenticateAssertion(ctx context.Context, cc clientCredentials) (*Client, *oauth.Error) {
	bad := func(format string, args ...any) *oauth.Error { return oauth.ErrInvalidClient(format, args...) }
	header, ok := assertionHeader(cc.assertion)
	if !ok || !slices.Contains(jose.Asymmetric, header) {
		return nil, bad("client_assertion must be a JWT signed with one of %s", strings.Join(jose.Asymmetric, ", "))
	}
	unverified, err := jwt.ParseInsecure([]byte(cc.assertion))
	if err != nil {
		return nil, bad("client_assertion is not a JWT")
	}
	id, _ := unverified.Issuer()
	if id == "" || (cc.id != "" && cc.id != id) {
		return nil, bad("client_assertion's iss must be the client_id")
	}
	c, inConfig, err := s.clients.lookup(ctx, id)
	if err != nil || !usesAssertion(c) {
		return nil, bad("client %q does not authenticate with private_key_jwt", id)
	}
	set, e := s.clients.keys(ctx, c, inConfig)
	if e != nil {
		return nil, e
	}
	// RFC 7523 asks for no kid: without one, every key of the set is tried.
	tok, err := jwt.Parse([]byte(cc.assertion), jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true), jws.WithRequireKid(false)), jwt.WithValidate(true),
		jwt.WithAcceptableSkew(assertionSkew), jwt.WithIssuer(id), jwt.WithSubject(id))
	if err != nil {
		return nil, bad("client_assertion is not valid: %v", err)
	}
	aud, _ := tok.Audience()
	if !slices.Contains(aud, s.cfg.Issuer) && !slices.Contains(aud, s.endpointURL(PathToken)) {
		return nil, bad("client_assertion's aud must be the issuer %s or the token endpoint", s.cfg.Issuer)
	}
	exp, hasExp := tok.Expiration()
	if !hasExp || time.Until(exp) > maxAssertionLife+assertionSkew {
		return nil, bad("client_assertion must expire within %s", maxAssertionLife)
	}
	jti, _ := tok.JwtID()
	if jti == "" {
		return nil, bad("client_assertion needs a jti")
	}
	// Single use: the first request with a (client, jti) counts 1.
	sum := sha256.Sum256([]byte(id + "\x00" + jti))
	n, _, err := s.store.Incr(ctx, "assertion:"+hex.EncodeToString(sum[:16]), time.Until(exp)+assertionSkew)
	if err != nil {
		return nil, s.storeError("recording a client assertion", err)
	}
	if n > 1 {
		return nil, bad("client_assertion was used before: make a new one (with a new jti) for each request")
	}
	return c, nil
}

// assertionHeader is the alg of a compact JWS.
func assertionHeader(raw string) (string, bool) {
	h, _, ok := strings.Cut(raw, ".")
	if !ok {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err != nil || json.Unmarshal(b, &hdr) != nil {
		return "", false
	}
	return hdr.Alg, true
}
