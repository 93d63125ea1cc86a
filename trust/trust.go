// Package trust accepts access tokens that other authorization servers
// issued: JWTs verified in process with the issuer's published keys, and
// opaque tokens through its RFC 7662 introspection endpoint, cached by a
// keyed hash of the token. Every fetch goes through the outbound client
// for URLs the operator wrote: timeouts, size caps, no redirects. An
// issuer that cannot be reached makes its tokens "unavailable" (503),
// never valid.
package trust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/outbound"
)

// Config is one trusted issuer.
type Config struct {
	// Issuer is the iss its tokens carry, exactly; also where its
	// discovery document is (OpenID Connect or RFC 8414).
	Issuer string
	// Audience lists the aud values a token may carry for this gateway; it
	// must carry one (required).
	Audience []string
	// JWKSURI is where its keys are. Default: from its discovery document.
	JWKSURI string
	// Introspection, when set, checks tokens that are not JWTs at the
	// issuer (RFC 7662).
	Introspection *IntrospectionConfig
	// ScopeClaim is where its tokens carry scopes: "scope" (default),
	// "scp", or a dotted path such as realm_access.roles.
	ScopeClaim string
	// Types are the typ headers accepted. Default: at+jwt and JWT.
	Types []string
	// Fetcher reaches the issuer. Default: outbound's Trusted client.
	Fetcher *outbound.Client
	Logger  *zap.Logger
	// RefetchEvery bounds the fetches of its keys for unknown key IDs
	// (KeysConfig.RefetchEvery).
	RefetchEvery time.Duration
}

// IntrospectionConfig is how to reach an issuer's introspection endpoint.
type IntrospectionConfig struct {
	// URL of the endpoint. Default: from the discovery document.
	URL                    string
	ClientID, ClientSecret string
	// CacheTTL bounds how long an answer is kept (never past the token's
	// exp). Default 1m.
	CacheTTL time.Duration
}

// DefaultIntrospectionTTL is how long an introspection answer is kept when
// the configuration says nothing.
const DefaultIntrospectionTTL = time.Minute

// Issuer checks the tokens of one trusted issuer.
type Issuer struct {
	cfg       Config
	fetch     *outbound.Client
	log       *zap.Logger
	keys      *Keys
	validator *introspect.Validator
	intro     *introspector

	mu        sync.Mutex
	discovery *discoveryDocument
}

// discoveryDocument holds what tokengate reads of the issuer's metadata.
type discoveryDocument struct {
	Issuer        string `json:"issuer"`
	JWKSURI       string `json:"jwks_uri"`
	Introspection string `json:"introspection_endpoint"`
}

// New checks the configuration; nothing is fetched until Run or the first
// token.
func New(cfg Config) (*Issuer, error) {
	if err := outbound.CheckURL(cfg.Issuer, true); err != nil {
		return nil, fmt.Errorf("trust %s: %w", cfg.Issuer, err)
	}
	if len(cfg.Audience) == 0 {
		return nil, fmt.Errorf("trust %s: audience is required: the aud its tokens must carry for this gateway (without one, a token it issued for any other API would pass)", cfg.Issuer)
	}
	for _, u := range []string{cfg.JWKSURI, introspectionURL(cfg)} {
		if u != "" {
			if err := outbound.CheckURL(u, true); err != nil {
				return nil, fmt.Errorf("trust %s: %w", cfg.Issuer, err)
			}
		}
	}
	if in := cfg.Introspection; in != nil && (in.ClientID == "" || in.ClientSecret == "") {
		return nil, fmt.Errorf("trust %s: introspection needs the client_id and client_secret tokengate authenticates with", cfg.Issuer)
	}
	if len(cfg.Types) == 0 {
		cfg.Types = []string{"at+jwt", "JWT"}
	}
	i := &Issuer{cfg: cfg, fetch: cfg.Fetcher, log: cfg.Logger}
	if i.fetch == nil {
		i.fetch = outbound.New(outbound.Options{Trusted: true, MaxBytes: 64 << 10})
	}
	if i.log == nil {
		i.log = zap.NewNop()
	}
	i.keys = NewKeys(KeysConfig{Fetcher: i.fetch, URI: i.jwksURI, Logger: i.log, RefetchEvery: cfg.RefetchEvery})
	i.validator = &introspect.Validator{Keys: i.keys, Issuer: cfg.Issuer, Leeway: 30 * time.Second, Types: cfg.Types,
		ScopeClaim: cfg.ScopeClaim, UnknownKey: i.keys.UnknownKey, Cache: introspect.NewTokenCache(20_000)}
	if cfg.Introspection != nil {
		i.intro = newIntrospector(i)
	}
	return i, nil
}

func introspectionURL(cfg Config) string {
	if cfg.Introspection == nil {
		return ""
	}
	return cfg.Introspection.URL
}

// Name is the issuer identifier.
func (i *Issuer) Name() string { return i.cfg.Issuer }

// Introspects says whether opaque tokens are checked at this issuer.
func (i *Issuer) Introspects() bool { return i.intro != nil }

// Check verifies a token of this issuer: a JWT with its keys, or any other
// token through its introspection endpoint. Errors are
// *introspect.TokenError.
func (i *Issuer) Check(ctx context.Context, token string) (*introspect.Claims, error) {
	if looksLikeJWT(token) {
		return i.validator.Validate(token, i.cfg.Audience...)
	}
	if i.intro == nil {
		return nil, &introspect.TokenError{Reason: introspect.ReasonMalformed, Description: "the token is not a JWT, and " + i.cfg.Issuer + " has no introspection configured"}
	}
	return i.intro.check(ctx, token)
}

// looksLikeJWT says whether token has three base64url segments, the first
// a JSON object ("eyJ").
func looksLikeJWT(token string) bool {
	return strings.HasPrefix(token, "eyJ") && strings.Count(token, ".") == 2
}

// Run fetches the keys, then again whenever they are due, until ctx ends.
func (i *Issuer) Run(ctx context.Context) {
	for {
		if err := i.keys.refresh(ctx); err != nil && ctx.Err() == nil {
			i.log.Warn("fetching a trusted issuer's keys; its tokens are refused as unavailable until this works",
				zap.String("issuer", i.cfg.Issuer), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(i.keys.due())):
		}
	}
}

// jwksURI is the configured key set URL, or the discovered one.
func (i *Issuer) jwksURI(ctx context.Context) (string, error) {
	if i.cfg.JWKSURI != "" {
		return i.cfg.JWKSURI, nil
	}
	d, err := i.discover(ctx)
	if err != nil {
		return "", err
	}
	if d.JWKSURI == "" {
		return "", fmt.Errorf("the discovery document of %s names no jwks_uri: give jwks_uri in the trust block", i.cfg.Issuer)
	}
	return d.JWKSURI, nil
}

// discover reads the issuer's metadata once: the OpenID Connect document,
// or else RFC 8414's. Its issuer must be the configured one, byte for
// byte (RFC 8414 §3.3), or an impostor's document could name its keys.
func (i *Issuer) discover(ctx context.Context) (*discoveryDocument, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.discovery != nil {
		return i.discovery, nil
	}
	u, _ := url.Parse(i.cfg.Issuer)
	candidates := []string{strings.TrimSuffix(i.cfg.Issuer, "/") + "/.well-known/openid-configuration",
		u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.EscapedPath(), "/")}
	var errs []error
	for _, c := range candidates {
		resp, err := i.fetch.Get(ctx, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d := new(discoveryDocument)
		if err := json.Unmarshal(resp.Body, d); err != nil {
			errs = append(errs, fmt.Errorf("%s is not JSON: %w", c, err))
			continue
		}
		if d.Issuer != i.cfg.Issuer {
			return nil, fmt.Errorf("%s names the issuer %q, not %q", c, d.Issuer, i.cfg.Issuer)
		}
		for _, found := range []string{d.JWKSURI, d.Introspection} {
			if found != "" {
				if err := outbound.CheckURL(found, true); err != nil {
					return nil, fmt.Errorf("%s: %w", c, err)
				}
			}
		}
		i.discovery = d
		return d, nil
	}
	return nil, fmt.Errorf("discovering %s: %w", i.cfg.Issuer, errors.Join(errs...))
}
