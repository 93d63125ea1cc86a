package client

// RFC 6749 §2.3.1 and RFC 7523 §2.2, §3: client authentication, with a
// secret (HTTP Basic or the body) or with private_key_jwt, a JWT the
// client signed with a key whose public half it registered.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/jose"
)

// AssertionType is the client_assertion_type of private_key_jwt.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Limits of an assertion: how far ahead it may expire, and the clock skew
// tolerated.
const (
	maxAssertionLife = 5 * time.Minute
	assertionSkew    = 30 * time.Second
	jwksCacheFor     = 5 * time.Minute
	jwksCacheEntries = 1000
)

// credentials is what a request presented to authenticate a client.
type credentials struct {
	id, secret string
	hasSecret  bool
	basic      bool
	// assertion is a private_key_jwt client_assertion (RFC 7523).
	assertion string
}

// readCredentials takes client_secret_basic or client_secret_post
// (RFC 6749 §2.3.1), or a bare client_id for public clients, refusing
// requests that use two methods at once.
// decodeBasic decodes Basic credentials, on the stack when they are of
// the usual size: every token request has them.
func decodeBasic(payload string) (string, error) {
	var buf [192]byte
	if base64.StdEncoding.DecodedLen(len(payload)) > len(buf) {
		raw, err := base64.StdEncoding.DecodeString(payload)
		return string(raw), err
	}
	n, err := base64.StdEncoding.Decode(buf[:], []byte(payload))
	return string(buf[:n]), err
}

func readCredentials(r *http.Request, form url.Values) (credentials, *oauth.Error) {
	var cc credentials
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, payload, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Basic") {
			e := oauth.ErrInvalidClient("client authentication uses HTTP Basic (client_secret_basic) or client_id and client_secret in the body; the Authorization header uses another scheme")
			e.BasicChallenge = true
			return cc, e
		}
		raw, err := decodeBasic(strings.TrimSpace(payload))
		id, secret, ok := strings.Cut(raw, ":")
		if err != nil || !ok {
			e := oauth.ErrInvalidClient("the Basic credentials are not base64 of client_id:client_secret")
			e.BasicChallenge = true
			return cc, e
		}
		// RFC 6749 §2.3.1: both parts are form-urlencoded inside Basic.
		id, err1 := url.QueryUnescape(id)
		secret, err2 := url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			e := oauth.ErrInvalidClient("the Basic credentials are not form-urlencoded as RFC 6749 §2.3.1 requires")
			e.BasicChallenge = true
			return cc, e
		}
		if form.Has("client_secret") {
			return cc, oauth.ErrInvalidRequest("use one client authentication method: HTTP Basic or client_secret in the body, not both")
		}
		if form.Has("client_id") && form.Get("client_id") != id {
			return cc, oauth.ErrInvalidRequest("client_id in the body differs from the one in the Basic credentials")
		}
		return credentials{id: id, secret: secret, hasSecret: true, basic: true}, nil
	}
	cc.id = form.Get("client_id")
	if form.Has("client_assertion_type") || form.Has("client_assertion") {
		if form.Get("client_assertion_type") != AssertionType || form.Get("client_assertion") == "" {
			return cc, oauth.ErrInvalidClient("client_assertion_type must be %s, with the client_assertion", AssertionType)
		}
		if form.Has("client_secret") {
			return cc, oauth.ErrInvalidRequest("use one client authentication method: client_assertion or client_secret, not both")
		}
		cc.assertion = form.Get("client_assertion")
		return cc, nil
	}
	cc.secret, cc.hasSecret = form.Get("client_secret"), form.Has("client_secret")
	if cc.id == "" {
		e := oauth.ErrInvalidClient("no client authentication: send client_id and client_secret with HTTP Basic or in the body")
		e.BasicChallenge = true
		return cc, e
	}
	return cc, nil
}

// Authenticator authenticates the clients of token-endpoint style
// requests (token, revocation, introspection, device authorization).
type Authenticator struct {
	registry *Registry
	secrets  *Secrets
	// counters record assertions' jti, for single use.
	counters store.CounterStore
	// audiences are what an assertion's aud may name: the issuer and the
	// token endpoint.
	issuer, tokenEndpoint string
	address               func(*http.Request) string
	storeFailed           func(what string, err error) *oauth.Error
	// federations check federated clients' workload tokens.
	federations federations
}

// NewAuthenticator authenticates registry's clients: secrets through
// secrets, assertions (whose single use counters keeps, and whose aud
// names issuer or tokenEndpoint) against their key sets. address is a
// request's address as limits count it (see oauth.AddressKey); storeFailed
// is the answer to a store failure.
func NewAuthenticator(registry *Registry, secrets *Secrets, counters store.CounterStore, issuer, tokenEndpoint string,
	address func(*http.Request) string, storeFailed func(what string, err error) *oauth.Error) *Authenticator {
	return &Authenticator{registry: registry, secrets: secrets, counters: counters, issuer: issuer, tokenEndpoint: tokenEndpoint,
		address: address, storeFailed: storeFailed, federations: federations{fetch: registry.trusted}}
}

// Authenticate authenticates the client of a request whose form is read.
// Public clients authenticate with client_id alone.
func (a *Authenticator) Authenticate(r *http.Request, form url.Values) (*Client, *oauth.Error) {
	cc, e := readCredentials(r, form)
	if e != nil {
		return nil, e
	}
	if cc.assertion != "" {
		return a.authenticateAssertion(r.Context(), cc)
	}
	fail := func(format string, args ...any) *oauth.Error {
		e := oauth.ErrInvalidClient(format, args...)
		e.BasicChallenge = cc.basic
		return e
	}
	c, _, err := a.registry.Lookup(r.Context(), cc.id)
	if err != nil {
		// Inside the branch: a target errors.As writes to is on the heap.
		var de *DocumentError
		if errors.Is(err, store.ErrNotFound) {
			return nil, fail("unknown client_id %q", cc.id)
		} else if errors.As(err, &de) {
			return nil, fail("%v", de)
		}
		return nil, a.storeFailed("looking up a client", err)
	}
	if c.Public {
		if cc.hasSecret && cc.secret != "" {
			return nil, fail("client %q is public and has no secret: send client_id only", cc.id)
		}
		return c, nil
	}
	if !cc.hasSecret {
		if UsesAssertion(c) {
			return nil, fail("client %q authenticates with private_key_jwt: send client_assertion_type and client_assertion", cc.id)
		}
		return nil, fail("client %q is confidential: authenticate with its client_secret", cc.id)
	}
	if c.SecretHash == "" {
		return nil, fail("client %q has no secret: it authenticates with private_key_jwt", cc.id)
	}
	// Registered clients' secrets are generated (256 random bits): only
	// the configuration's, which people choose, are worth guessing.
	chosen := a.registry.Configured(c.ID)
	var addr string
	if chosen {
		addr = a.address(r)
	}
	ok, locked, retry := a.secrets.check(r.Context(), c, cc.secret, addr, chosen)
	if locked {
		return nil, fail("too many failed authentications for client %q from this address: retry after %s UTC", cc.id, retry.UTC().Format("15:04:05"))
	}
	if !ok {
		return nil, fail("client authentication failed: wrong client_secret for client %q", cc.id)
	}
	return c, nil
}

// authenticateAssertion checks a client_assertion and returns its client.
func (a *Authenticator) authenticateAssertion(ctx context.Context, cc credentials) (*Client, *oauth.Error) {
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
	if cc.id != "" && cc.id != id {
		// Another issuer's token: a federated client's workload token.
		c, _, err := a.registry.Lookup(ctx, cc.id)
		if err == nil && c.Federated != nil && c.Federated.Issuer == id {
			return a.authenticateFederated(ctx, c, cc.assertion)
		}
	}
	if id == "" || (cc.id != "" && cc.id != id) {
		return nil, bad("client_assertion's iss must be the client_id")
	}
	c, inConfig, err := a.registry.Lookup(ctx, id)
	if err != nil || !UsesAssertion(c) {
		return nil, bad("client %q does not authenticate with private_key_jwt", id)
	}
	set, e := a.registry.Keys(ctx, c, inConfig)
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
	if !slices.Contains(aud, a.issuer) && !slices.Contains(aud, a.tokenEndpoint) {
		return nil, bad("client_assertion's aud must be the issuer %s or the token endpoint", a.issuer)
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
	n, _, err := a.counters.Incr(ctx, "assertion:"+hex.EncodeToString(sum[:16]), time.Until(exp)+assertionSkew)
	if err != nil {
		return nil, a.storeFailed("recording a client assertion", err)
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
