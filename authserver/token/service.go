// Package token is the token side of the authorization server: the token
// endpoint (RFC 6749 §3.2) and its grants, minting access tokens (RFC
// 9068), the grants' records, revocation (RFC 7009) and introspection
// (RFC 7662), resource indicators (RFC 8707), DPoP binding (RFC 9449),
// the device authorization endpoint (RFC 8628 §3.1), offboarding, and
// OpenID Connect's ID tokens and UserInfo endpoint.
// What a person does in a browser (signing in, consenting, entering a
// device's code) is authserver's; it hands this side grants in the store.
package token

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/dpop"
	"github.com/tokengate/tokengate/introspect"
)

// Config is the token side's part of the server's configuration, with its
// defaults applied.
type Config struct {
	// Issuer is the iss of the tokens minted, and their aud when a client
	// names no audience.
	Issuer string
	// TokenEndpoint and UserinfoEndpoint are those endpoints' URLs, which
	// DPoP proofs name; VerificationURI is the device page people enter a
	// code on.
	TokenEndpoint, UserinfoEndpoint, VerificationURI string
	// The lifetimes of access tokens, refresh tokens and device codes;
	// the device's polling interval; how long a grant lasts from its
	// sign-in; and how long a rotated refresh token may be presented
	// again (a lost answer) without counting as reuse.
	AccessTokenTTL, RefreshTokenTTL, DeviceCodeTTL, DeviceInterval, GrantMaxAge, RefreshRetryGrace time.Duration
}

// Stores are the store roles the token side uses.
type Stores interface {
	store.CodeStore       // redeeming authorization codes
	store.DeviceStore     // device authorizations and their polls
	store.RefreshStore    // refresh tokens and their rotation
	store.GrantStore      // the grants' records
	store.RevocationStore // revocations, for every instance
	store.CounterStore    // single use of DPoP proofs
	store.RateStore       // clients' token_rate_limit
	store.UserStore       // the configured users, for offboarding
}

// Metrics counts what the token side does.
type Metrics interface {
	// TokenIssued counts a token response of that grant type to that client.
	TokenIssued(grantType, clientID string)
	// TokenError counts a token endpoint error response, by error code.
	TokenError(code string)
	// DevicePoll counts a device poll's result: one of DevicePollResults.
	DevicePoll(result string)
}

// DevicePollResults are the results DevicePoll counts, so that an exporter
// can show each series at 0 before its first event.
var DevicePollResults = []string{"authorization_pending", "slow_down", "access_denied", "expired_token", "issued", "redeemed_before", "invalid"}

// Collaborators are what the token side works with besides the store.
type Collaborators struct {
	// Keys sign the access tokens.
	Keys *keys.Ring
	// Clients authenticates the clients of token, revocation,
	// introspection and device authorization requests; Uses records the
	// self-registered ones' use (nil: registration is off).
	Clients *client.Authenticator
	Uses    *client.Uses
	// Validator checks access tokens (introspection, revocation) against
	// the keys and Revocations, the in-memory revocation state this side
	// adds to as it revokes.
	Validator   *introspect.Validator
	Revocations *introspect.Revocations
	// Resources are the protected resources tokens may be asked for.
	Resources *Resources
	// Nonces are the DPoP nonces required of proofs; nil when off.
	Nonces *dpop.Nonces
	// People are the configured users' claims (false for anyone else),
	// for userinfo; nil: none.
	People func(subject string) (store.OpenID, bool)
	// Logouts hears of people and grants whose sessions end.
	Logouts Logouts
	// Issuers check other issuers' tokens a client may exchange
	// (exchange_from), by issuer identifier.
	Issuers map[string]SubjectIssuer
	// IDJAG verifies login providers' identity assertions (id_jag); nil:
	// none are accepted.
	IDJAG IDJAGVerifier
	Audit oauth.Audit
	// Failures answers store and server failures, and logs them.
	Failures oauth.Failures
	Metrics  Metrics
	Log      *zap.Logger
}

// Service is the token side: its endpoints are ServeToken, ServeRevoke,
// ServeIntrospect and ServeDeviceAuthorization.
type Service struct {
	cfg        Config
	store      Stores
	keys       *keys.Ring
	clientAuth *client.Authenticator
	uses       *client.Uses
	validator  *introspect.Validator
	// idTokens checks this issuer's ID tokens presented for exchange: the
	// validator's keys and revocations, typ JWT rather than at+jwt;
	// idTokenHints reads them as logout hints: expired or revoked too.
	idTokens, idTokenHints *introspect.Validator
	revocations            *introspect.Revocations
	resources              *Resources
	dpopNonces             *dpop.Nonces
	// issuerAudience is the aud of tokens whose client names none, made
	// once rather than per token.
	issuerAudience introspect.Audience
	// refreshKey caches the refresh tokens' MAC key (refresh_token.go).
	refreshKey atomic.Pointer[macKey]
	// dpopProofs verifies the token endpoint's proofs.
	dpopProofs dpop.Verifier
	// userinfoDPoP checks DPoP-bound tokens at the UserInfo endpoint.
	userinfoDPoP *introspect.DPoPPolicy
	// people and grantClaims give userinfo its claims; a grant's claims
	// never change, so a relying party calling userinfo on every page
	// costs no store round trip.
	people      func(subject string) (store.OpenID, bool)
	grantClaims memo[*store.OpenID]
	// actorsNoted is when this instance last noted an actor on a grant
	// (grant_token_exchange.go), by grant and actor.
	actorsNoted memo[time.Time]
	logouts     Logouts
	issuers     map[string]SubjectIssuer
	idJAG       IDJAGVerifier
	grants      map[string]grantHandler
	// offboarded are users removed from the configuration (see Offboard),
	// set while requests may be served.
	offboarded atomic.Pointer[map[string]bool]
	audit      oauth.Audit
	failures   oauth.Failures
	metrics    Metrics
	log        *zap.Logger
}

// New is the token side over st, with c.
func New(cfg Config, st Stores, c Collaborators) *Service {
	s := &Service{cfg: cfg, store: st, keys: c.Keys, clientAuth: c.Clients, uses: c.Uses, validator: c.Validator, revocations: c.Revocations,
		resources: c.Resources, dpopNonces: c.Nonces, audit: c.Audit, failures: c.Failures, metrics: c.Metrics, log: c.Log,
		issuerAudience: introspect.Audience{cfg.Issuer}, people: c.People, logouts: c.Logouts, issuers: c.Issuers, idJAG: c.IDJAG}
	if s.logouts == nil {
		s.logouts = noLogouts{}
	}
	if v := c.Validator; v != nil {
		s.idTokens = &introspect.Validator{Keys: v.Keys, Issuer: v.Issuer, Leeway: v.Leeway, Revoked: v.Revoked, UnknownKey: v.UnknownKey,
			Now: v.Now, Types: []string{keys.TypeIDToken}}
		// No leeway: exp is not held against a hint, and this issuer
		// signed its iat by its own clock.
		s.idTokenHints = &introspect.Validator{Keys: v.Keys, Issuer: v.Issuer, Now: v.Now, Types: []string{keys.TypeIDToken}, AcceptExpired: true}
	}
	s.userinfoDPoP = &introspect.DPoPPolicy{Replay: &dpop.Replay{}, Nonces: c.Nonces, Proofs: &s.dpopProofs}
	s.grants = map[string]grantHandler{
		client.GrantClientCredentials: clientCredentialsGrant{s},
		client.GrantAuthorizationCode: authorizationCodeGrant{s},
		client.GrantRefreshToken:      refreshTokenGrant{s},
		client.GrantDeviceCode:        deviceCodeGrant{s},
		client.GrantTokenExchange:     tokenExchangeGrant{s},
		client.GrantJWTBearer:         jwtBearerGrant{s},
	}
	return s
}

// Resources are the protected resources tokens may be asked for.
func (s *Service) Resources() *Resources { return s.resources }

// SubjectIssuer checks another issuer's token (a trusted issuer's, as
// bearer_auth does): its claims, or why not.
type SubjectIssuer interface {
	Check(ctx context.Context, token string) (*introspect.Claims, error)
}

// Logouts hears of the people and grants whose browser sessions end for
// their clients (OpenID Connect Back-Channel Logout): revoked, offboarded.
type Logouts interface {
	SubjectEnded(subject string)
	GrantEnded(g *store.Grant)
}

// noLogouts tells nobody.
type noLogouts struct{}

func (noLogouts) SubjectEnded(string)     {}
func (noLogouts) GrantEnded(*store.Grant) {}

// DPoPNonces are the DPoP nonces, for the resource routes; nil when off.
func (s *Service) DPoPNonces() *dpop.Nonces { return s.dpopNonces }

// memo is a map requests share, bounded: past memoSize entries it starts
// over, so that no stream of requests grows it without bound.
type memo[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

const memoSize = 10_000

func (c *memo[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *memo[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= memoSize {
		c.m = map[string]V{}
	}
	c.m[k] = v
}
