// Package login signs people in through their organisation's identity
// provider: tokengate as an OpenID Connect relying party (discovery,
// authorization code with PKCE, state and nonce, the ID token checked
// against the provider's keys), or as a client of a plain OAuth 2.0
// provider that has a userinfo endpoint instead (GitHub-style). Every
// request to the provider goes through the outbound client for URLs the
// operator wrote; a provider that is down, slow or answers garbage is an
// Unavailable error, never a hang.
package login

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/jose"
	"github.com/tokengate/tokengate/outbound"
	"github.com/tokengate/tokengate/trust"
)

// Config is one login provider.
type Config struct {
	// Name is the provider's path segment (/login/<name>) and the
	// namespace of its people's subjects (<name>:<username>).
	Name string
	// DisplayName is what the login page's button says: "Sign in with …".
	DisplayName string
	// Issuer is an OpenID Connect provider, found by discovery. Or, for a
	// plain OAuth 2.0 provider, the three URLs instead.
	Issuer                                  string
	AuthorizationURL, TokenURL, UserinfoURL string
	ClientID, ClientSecret                  string
	// Scopes asked for. Default: openid email profile (OpenID Connect),
	// none (plain OAuth 2.0).
	Scopes []string
	// UsernameClaim becomes the user's name. Default: sub (OpenID
	// Connect), IDClaim (plain OAuth 2.0).
	UsernameClaim string
	// IDClaim is a plain provider's stable user ID in its userinfo.
	// Default: id.
	IDClaim string
	// AllowDomains, when set, admits only people whose email is verified
	// (email_verified true) and in one of these domains.
	AllowDomains []string
	// AllowClaims, when set, admits only people whose claims hold each:
	// the claim equal to, or (a list) containing, one of the values.
	AllowClaims []ClaimRule
	// RedirectURI is where the provider returns the person (the
	// authorization server's /login/<name>/callback).
	RedirectURI string
	// Fetcher reaches the provider. Default: outbound's Trusted client.
	Fetcher *outbound.Client
	// Logger hears what the person is not told: keys of the provider's
	// set that cannot be used. Default: none.
	Logger *zap.Logger
	// IDJAG accepts the provider's Identity Assertion JWT Authorization
	// Grants at the token endpoint (the jwt-bearer grant): the enterprise
	// authorizes a client for its people, without a consent page.
	IDJAG bool
	// ProbeAfter is how long a call to the provider says whether it is up:
	// a sign-in started later probes it first (Available). Default 10s:
	// shorter sends fewer people to a provider that just went down, and
	// makes a quiet site probe more often.
	ProbeAfter time.Duration
}

// ClaimRule is one allow_claim line.
type ClaimRule struct {
	Claim  string
	Values []string
}

// ValidName is what a provider's name may be: it is a path segment and a
// subject prefix.
var ValidName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Identity is who signed in.
type Identity struct {
	// Username is the UsernameClaim's value; the subject tokengate gives
	// the person is Name + ":" + Username.
	Username string
	// DisplayName is the name claim, or Username.
	DisplayName string
	// Claims are the ID token's (or userinfo's) claims.
	Claims map[string]any
}

// Kind sorts failures for the page the person sees, the log and the metric.
type Kind string

const (
	// Unavailable means the provider is down, slow, or answered garbage.
	Unavailable Kind = "unavailable"
	// Denied means the person (or the provider) declined at the provider.
	Denied Kind = "denied"
	// Refused means the person signed in, but is not someone this server
	// admits (allow_domain, allow_claim).
	Refused Kind = "refused"
	// Invalid means the provider's answer does not hold up (ID token, state,
	// issuer): an attack, or a misconfigured provider.
	Invalid Kind = "invalid"
)

// Error is why a sign-in through a provider failed. Its message is for the
// log; Kind says what to tell the person.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return string(e.Kind) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// clockSkew is tolerated on an ID token's times.
const clockSkew = time.Minute

// Provider is one configured login provider.
type Provider struct {
	cfg   Config
	fetch *outbound.Client

	mu   sync.Mutex
	meta *metadata
	// health is what the provider's latest call said, and when; probes
	// shares one probe among the sign-ins that ask at once.
	health struct {
		sync.Mutex
		at time.Time
		up bool
	}
	probes singleflight.Group
	// keys are the provider's, held as a trusted issuer's are (cached
	// by Cache-Control, refetched for an unknown kid at most every 30 s);
	// idTokens checks ID tokens' signatures, iss, aud and exp with them.
	keys     *trust.Keys
	idTokens *introspect.Validator
	// logoutTokens checks the logout tokens of Back-Channel Logout.
	logoutTokens *introspect.Validator
	// idJAGs checks its identity assertions (IDJAG).
	idJAGs *introspect.Validator
}

// metadata is what tokengate reads of an OpenID provider's discovery
// document (or builds from a plain provider's URLs).
type metadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	IDTokenAlgs           []string `json:"id_token_signing_alg_values_supported"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	EndSessionEndpoint    string   `json:"end_session_endpoint"`
	RevocationEndpoint    string   `json:"revocation_endpoint"`
	IssParameter          bool     `json:"authorization_response_iss_parameter_supported"`
}

// Validate checks the configuration as an operator wrote it, fetching
// nothing; every message names the provider and what to fix.
func (cfg *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("login_provider %s: "+format, append([]any{cfg.Name}, args...)...)
	}
	if !ValidName.MatchString(cfg.Name) {
		return bad("the name must be lower-case letters, digits, - and _ (it is a path segment and the prefix of its people's subjects)")
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return bad("client_id and client_secret are required: register tokengate with the provider, redirect URI %s", cfg.RedirectURI)
	}
	plain := cfg.plain()
	switch {
	case cfg.Issuer != "" && plain:
		return bad("give issuer (OpenID Connect) or authorization_url, token_url and userinfo_url (plain OAuth 2.0), not both")
	case cfg.Issuer == "" && !plain:
		return bad("give issuer (OpenID Connect discovery) or authorization_url, token_url and userinfo_url")
	case plain && (cfg.AuthorizationURL == "" || cfg.TokenURL == "" || cfg.UserinfoURL == ""):
		return bad("a plain OAuth 2.0 provider needs authorization_url, token_url and userinfo_url")
	}
	for _, u := range []string{cfg.Issuer, cfg.AuthorizationURL, cfg.TokenURL, cfg.UserinfoURL} {
		if u != "" {
			if err := outbound.CheckURL(u, true); err != nil {
				return bad("%v", err)
			}
		}
	}
	if !plain && len(cfg.Scopes) > 0 && !slices.Contains(cfg.Scopes, "openid") {
		return bad("scope must include openid for an OpenID Connect provider")
	}
	return nil
}

// plain says whether the provider is plain OAuth 2.0 (its endpoints
// given) rather than OpenID Connect (found by discovery).
func (cfg *Config) plain() bool {
	return cfg.AuthorizationURL != "" || cfg.TokenURL != "" || cfg.UserinfoURL != ""
}

// New checks the configuration (Validate) and fills in its defaults;
// nothing is fetched until the first sign-in.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	plain := cfg.plain()
	if cfg.DisplayName == "" {
		cfg.DisplayName = cfg.Name
	}
	if cfg.ProbeAfter <= 0 {
		cfg.ProbeAfter = DefaultProbeAfter
	}
	if plain {
		cfg.IDClaim = cmpOr(cfg.IDClaim, "id")
		cfg.UsernameClaim = cmpOr(cfg.UsernameClaim, cfg.IDClaim)
	} else {
		if len(cfg.Scopes) == 0 {
			cfg.Scopes = []string{"openid", "email", "profile"}
		}
		cfg.UsernameClaim = cmpOr(cfg.UsernameClaim, "sub")
	}
	p := &Provider{cfg: cfg, fetch: cfg.Fetcher}
	if p.fetch == nil {
		p.fetch = outbound.New(outbound.Options{Trusted: true, MaxBytes: 64 << 10})
	}
	if plain {
		p.meta = &metadata{AuthorizationEndpoint: cfg.AuthorizationURL, TokenEndpoint: cfg.TokenURL, UserinfoEndpoint: cfg.UserinfoURL}
		return p, nil
	}
	p.keys = trust.NewKeys(trust.KeysConfig{Fetcher: p.fetch, Logger: cfg.Logger, URI: func(ctx context.Context) (string, error) {
		m, err := p.metadata(ctx)
		if err != nil {
			return "", err
		}
		return m.JWKSURI, nil
	}})
	// ID tokens are typed JWT, or not at all (OpenID Connect Core).
	p.idTokens = &introspect.Validator{Keys: p.keys, UnknownKey: p.keys.UnknownKey, Issuer: cfg.Issuer, Leeway: clockSkew,
		Types: []string{"JWT", ""}}
	// Back-Channel Logout §2.4 types them logout+jwt; providers from
	// before it use JWT or nothing, and the events claim tells them apart.
	p.logoutTokens = &introspect.Validator{Keys: p.keys, UnknownKey: p.keys.UnknownKey, Issuer: cfg.Issuer, Leeway: clockSkew,
		Types: []string{"logout+jwt", "JWT", ""}}
	p.idJAGs = &introspect.Validator{Keys: p.keys, UnknownKey: p.keys.UnknownKey, Issuer: cfg.Issuer, Leeway: clockSkew,
		Types: []string{TypeIDJAG}}
	return p, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Name is the provider's name; DisplayName what its button says.
func (p *Provider) Name() string        { return p.cfg.Name }
func (p *Provider) DisplayName() string { return p.cfg.DisplayName }

// oidc says whether the provider is an OpenID Connect one.
func (p *Provider) oidc() bool { return p.cfg.Issuer != "" }

// metadata is the provider's discovery document, fetched once; its issuer
// must be the configured one, byte for byte.
func (p *Provider) metadata(ctx context.Context) (*metadata, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.meta != nil {
		return p.meta, nil
	}
	u := strings.TrimSuffix(p.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	resp, err := p.fetch.Get(ctx, u)
	p.noteAnswer(err)
	if err != nil {
		return nil, fail(Unavailable, "discovery: %w", err)
	}
	m := new(metadata)
	if err := json.Unmarshal(resp.Body, m); err != nil {
		return nil, fail(Unavailable, "discovery: %s is not JSON", u)
	}
	if m.Issuer != p.cfg.Issuer {
		return nil, fail(Unavailable, "discovery: %s names the issuer %q, not %q", u, m.Issuer, p.cfg.Issuer)
	}
	for _, e := range []string{m.AuthorizationEndpoint, m.TokenEndpoint, m.JWKSURI} {
		if err := outbound.CheckURL(e, true); err != nil {
			return nil, fail(Unavailable, "discovery: %s: %w", u, err)
		}
	}
	p.meta = m
	return m, nil
}

// DefaultProbeAfter is Config.ProbeAfter's default.
const DefaultProbeAfter = 10 * time.Second

// noteAnswer records what a call to the provider said of it: up when it
// answered, if only to refuse (4xx); down when it did not answer, or
// answered 5xx.
func (p *Provider) noteAnswer(err error) {
	var status *outbound.StatusError
	up := err == nil || errors.As(err, &status) && status.Code < 500
	p.health.Lock()
	p.health.at, p.health.up = time.Now(), up
	p.health.Unlock()
}

// Available says whether the person can be sent to the provider: what its
// latest call said, if recent (no extra request while sign-ins flow), or
// else what a probe of its authorization endpoint says (one probe for
// everyone asking at once). A provider that does not answer, or answers
// 5xx, is Unavailable: better tokengate's page with a way back than the
// browser's own error at the provider's address.
func (p *Provider) Available(ctx context.Context) error {
	if up, ago, fresh := p.recentHealth(); fresh && !up {
		return fail(Unavailable, "its latest call, %s ago, failed", ago.Round(time.Second))
	} else if fresh {
		return nil
	}
	m, err := p.metadata(ctx) // when not held yet, the discovery fetch is the probe
	if err != nil {
		return err
	}
	if up, _, fresh := p.recentHealth(); fresh && up {
		return nil
	}
	_, err, _ = p.probes.Do("", func() (any, error) {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		defer cancel()
		status, err := p.fetch.Status(pctx, m.AuthorizationEndpoint)
		if err == nil && status >= 500 {
			err = &outbound.StatusError{URL: m.AuthorizationEndpoint, Code: status}
		}
		p.noteAnswer(err)
		return nil, err
	})
	if err != nil {
		return fail(Unavailable, "probing it: %w", err)
	}
	return nil
}

// recentHealth is what the latest call said, how long ago, and whether
// that is recent enough to go by.
func (p *Provider) recentHealth() (up bool, ago time.Duration, fresh bool) {
	p.health.Lock()
	defer p.health.Unlock()
	ago = time.Since(p.health.at)
	return p.health.up, ago, !p.health.at.IsZero() && ago < p.cfg.ProbeAfter
}

// probeTimeout bounds a probe: the person is waiting.
const probeTimeout = 3 * time.Second

// AuthCodeURL is where to send the person: the provider's authorization
// endpoint with this attempt's state, nonce and PKCE challenge.
func (p *Provider) AuthCodeURL(ctx context.Context, state, nonce, challenge string) (string, error) {
	return p.AuthCodeURLTo(ctx, p.cfg.RedirectURI, state, nonce, challenge)
}

// AuthCodeURLTo is AuthCodeURL with the person coming back to
// redirectURI (a session_auth site's callback, which each of its hosts
// has).
func (p *Provider) AuthCodeURLTo(ctx context.Context, redirectURI, state, nonce, challenge string) (string, error) {
	m, err := p.metadata(ctx)
	if err != nil {
		return "", err
	}
	q := url.Values{"response_type": {"code"}, "client_id": {p.cfg.ClientID}, "redirect_uri": {redirectURI}, "state": {state},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	if len(p.cfg.Scopes) > 0 {
		q.Set("scope", strings.Join(p.cfg.Scopes, " "))
	}
	if p.oidc() {
		q.Set("nonce", nonce)
	}
	sep := "?"
	if strings.Contains(m.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	return m.AuthorizationEndpoint + sep + q.Encode(), nil
}

// Finish completes a sign-in from the provider's callback query: the code
// exchanged (with the PKCE verifier), the ID token (or userinfo) checked,
// the person admitted or refused. The caller has checked state.
func (p *Provider) Finish(ctx context.Context, query url.Values, nonce, verifier string) (*Identity, error) {
	t, err := p.Exchange(ctx, p.cfg.RedirectURI, query, nonce, verifier)
	if err != nil {
		return nil, err
	}
	return p.Admit(t.Claims)
}

// Tokens are what a sign-in or a refresh got from the provider, the ID
// token checked and its claims (with userinfo's, where the ID token lacks
// one the configuration needs).
type Tokens struct {
	AccessToken, RefreshToken, IDToken string
	// ExpiresIn is the access token's life as the provider said it (0:
	// not said).
	ExpiresIn time.Duration
	Claims    map[string]any
}

// tokenResponse is a token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Error        string `json:"error"`
}

// clientAuth is how the client authenticates to the provider, the way it
// takes: client_secret_basic (the user and password returned), else
// client_secret_post (added to form).
func (p *Provider) clientAuth(m *metadata, form url.Values) (user, pass string) {
	if len(m.TokenAuthMethods) > 0 && !slices.Contains(m.TokenAuthMethods, "client_secret_basic") && slices.Contains(m.TokenAuthMethods, "client_secret_post") {
		form.Set("client_id", p.cfg.ClientID)
		form.Set("client_secret", p.cfg.ClientSecret)
		return "", ""
	}
	return p.cfg.ClientID, p.cfg.ClientSecret
}

// tokenRequest posts form to the provider's token endpoint, authenticating
// as the client (clientAuth).
func (p *Provider) tokenRequest(ctx context.Context, m *metadata, form url.Values, what string) (*tokenResponse, error) {
	user, pass := p.clientAuth(m, form)
	resp, err := p.fetch.PostForm(ctx, m.TokenEndpoint, form, user, pass)
	p.noteAnswer(err)
	var status *outbound.StatusError
	if errors.As(err, &status) && status.Code >= 400 && status.Code < 500 {
		// The provider is up and refused the grant (used, expired,
		// revoked, or not this client's): not an outage.
		return nil, fail(Invalid, "the provider refused the %s: %w", what, err)
	}
	if err != nil {
		return nil, fail(Unavailable, "redeeming the %s: %w", what, err)
	}
	tokens := new(tokenResponse)
	if err := json.Unmarshal(resp.Body, tokens); err != nil || tokens.AccessToken == "" && tokens.IDToken == "" {
		return nil, fail(Unavailable, "the token endpoint's answer holds no token (%s)", cmpOr(tokens.Error, "not a token response"))
	}
	return tokens, nil
}

func (t *tokenResponse) tokens(claims map[string]any) *Tokens {
	return &Tokens{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, IDToken: t.IDToken,
		ExpiresIn: time.Duration(t.ExpiresIn) * time.Second, Claims: claims}
}

// Exchange completes a sign-in from the provider's callback query at
// redirectURI as Finish does, without admitting anyone: the tokens and
// claims, for a caller that keeps them (session_auth).
func (p *Provider) Exchange(ctx context.Context, redirectURI string, query url.Values, nonce, verifier string) (*Tokens, error) {
	if e := query.Get("error"); e != "" {
		return nil, fail(Denied, "the provider answered %s: %s", e, query.Get("error_description"))
	}
	if p.oidc() && nonce == "" {
		return nil, fail(Invalid, "a sign-in needs its nonce")
	}
	m, err := p.metadata(ctx)
	if err != nil {
		return nil, err
	}
	// RFC 9207: a provider that says it sends iss must, and it must be
	// its own (another provider's code, mixed up, is not this one's).
	if iss := query.Get("iss"); p.oidc() && (iss != "" || m.IssParameter) && iss != m.Issuer {
		return nil, fail(Invalid, "the callback's iss %q is not the provider's %q", iss, m.Issuer)
	}
	code := query.Get("code")
	if code == "" {
		return nil, fail(Invalid, "the callback carries no code")
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
	tokens, err := p.tokenRequest(ctx, m, form, "code")
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if p.oidc() {
		if tokens.IDToken == "" {
			return nil, fail(Invalid, "the token endpoint's answer holds no ID token")
		}
		if claims, err = p.verifyIDToken(ctx, m, tokens.IDToken, nonce); err != nil {
			return nil, err
		}
	}
	if !p.oidc() || p.lacksClaims(claims) {
		if m.UserinfoEndpoint == "" && !p.oidc() {
			return nil, fail(Invalid, "the provider has no userinfo endpoint")
		}
		info := map[string]any{}
		if m.UserinfoEndpoint != "" {
			if info, err = p.userinfo(ctx, m.UserinfoEndpoint, tokens.AccessToken); err != nil {
				return nil, err
			}
		}
		if claims == nil {
			claims = info
		} else if info["sub"] == claims["sub"] { // OpenID Connect Core §5.3.2
			for k, v := range info {
				if _, ok := claims[k]; !ok {
					claims[k] = v
				}
			}
		}
	}
	return tokens.tokens(claims), nil
}

// Refresh redeems a refresh token (RFC 6749 §6). A new ID token in the
// answer is checked as at sign-in, but for its nonce (OpenID Connect Core
// §12.2: a refresh's has none), and must name the same person as claims
// (sign-in's); its claims then replace them.
func (p *Provider) Refresh(ctx context.Context, refreshToken string, claims map[string]any) (*Tokens, error) {
	m, err := p.metadata(ctx)
	if err != nil {
		return nil, err
	}
	tokens, err := p.tokenRequest(ctx, m, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, "refresh token")
	if err != nil {
		return nil, err
	}
	if tokens.IDToken != "" && p.oidc() {
		next, err := p.verifyIDToken(ctx, m, tokens.IDToken, "")
		if err != nil {
			return nil, err
		}
		if next["sub"] != claims["sub"] {
			return nil, fail(Invalid, "the refreshed ID token names another person")
		}
		claims = next
	}
	if tokens.RefreshToken == "" {
		tokens.RefreshToken = refreshToken // RFC 6749 §6: the old one stays
	}
	return tokens.tokens(claims), nil
}

// Revoke revokes a token at the provider's revocation endpoint (RFC 7009),
// authenticating as the client; nothing to do when it has none.
func (p *Provider) Revoke(ctx context.Context, token, hint string) error {
	m, err := p.metadata(ctx)
	if err != nil {
		return err
	}
	if m.RevocationEndpoint == "" {
		return nil
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	user, pass := p.clientAuth(m, form)
	_, err = p.fetch.PostForm(ctx, m.RevocationEndpoint, form, user, pass)
	return err
}

// EndSessionURL is where to send the person to sign out at the provider
// too (OpenID Connect RP-Initiated Logout), with idTokenHint and
// postLogoutRedirectURI; false when the provider has no
// end_session_endpoint.
func (p *Provider) EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirectURI string) (string, bool) {
	m, err := p.metadata(ctx)
	if err != nil || m.EndSessionEndpoint == "" || outbound.CheckURL(m.EndSessionEndpoint, true) != nil {
		return "", false
	}
	q := url.Values{"client_id": {p.cfg.ClientID}, "post_logout_redirect_uri": {postLogoutRedirectURI}}
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	sep := "?"
	if strings.Contains(m.EndSessionEndpoint, "?") {
		sep = "&"
	}
	return m.EndSessionEndpoint + sep + q.Encode(), true
}

// lacksClaims says whether the ID token lacks a claim tokengate needs
// (many providers put profile claims in userinfo only).
func (p *Provider) lacksClaims(claims map[string]any) bool {
	need := []string{p.cfg.UsernameClaim}
	if len(p.cfg.AllowDomains) > 0 {
		need = append(need, "email", "email_verified")
	}
	for _, r := range p.cfg.AllowClaims {
		need = append(need, r.Claim)
	}
	for _, c := range need {
		if _, ok := claims[c]; !ok {
			return true
		}
	}
	return false
}

// verifyIDToken checks an ID token (OpenID Connect Core §3.1.3.7) and
// returns its claims; nonce "" is a refresh's, which carries none to
// check (a sign-in always has one).
func (p *Provider) verifyIDToken(ctx context.Context, m *metadata, raw, nonce string) (map[string]any, error) {
	hdr, err := jws.Parse([]byte(raw))
	if err != nil || len(hdr.Signatures()) != 1 {
		return nil, fail(Invalid, "the ID token is not a signed JWT")
	}
	alg, _ := hdr.Signatures()[0].ProtectedHeaders().Algorithm()
	allowed := m.IDTokenAlgs
	if len(allowed) == 0 {
		allowed = []string{"RS256"} // OpenID Connect Discovery §3's default
	}
	if !slices.Contains(allowed, alg.String()) || !slices.Contains(jose.Asymmetric, alg.String()) {
		return nil, fail(Invalid, "the ID token is signed with %s, which is not one of the provider's asymmetric algorithms", alg)
	}
	// The validator picks the key by kid, refetching the set once for one
	// it lacks (the provider rotated), and pins the algorithm to the key.
	p.keys.RefreshIfDue(ctx)
	tok, err := p.idTokens.Validate(raw, p.cfg.ClientID)
	if err != nil {
		if te, ok := err.(*introspect.TokenError); ok && te.Reason == introspect.ReasonUnavailable {
			return nil, fail(Unavailable, "fetching its keys: %v", err)
		}
		return nil, fail(Invalid, "the ID token does not verify: %v", err)
	}
	if tok.IssuedAt == 0 {
		return nil, fail(Invalid, "the ID token has no iat")
	}
	claims, err := payloadClaims(raw)
	if err != nil {
		return nil, fail(Invalid, "the ID token's claims: %v", err)
	}
	got, _ := claims["nonce"].(string)
	if nonce != "" && subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return nil, fail(Invalid, "the ID token's nonce is not this sign-in's")
	}
	azp, hasAzp := claims["azp"].(string)
	if (len(tok.Audience) > 1 || hasAzp) && azp != p.cfg.ClientID {
		return nil, fail(Invalid, "the ID token's azp %q is not this client", azp)
	}
	return claims, nil
}

// userinfo reads the userinfo endpoint with the access token.
func (p *Provider) userinfo(ctx context.Context, endpoint, accessToken string) (map[string]any, error) {
	resp, err := p.fetch.GetWithBearer(ctx, endpoint, accessToken)
	p.noteAnswer(err)
	if err != nil {
		return nil, fail(Unavailable, "reading userinfo: %w", err)
	}
	var info map[string]any
	dec := json.NewDecoder(bytes.NewReader(resp.Body))
	dec.UseNumber()
	if err := dec.Decode(&info); err != nil {
		return nil, fail(Unavailable, "userinfo is not a JSON object")
	}
	return info, nil
}

// payloadClaims is a verified JWT's claims, numbers kept as written.
func payloadClaims(raw string) (map[string]any, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return claims, dec.Decode(&claims)
}

// Admit maps the claims to an identity, if the configuration admits them.
func (p *Provider) Admit(claims map[string]any) (*Identity, error) {
	username, ok := text(claims[p.cfg.UsernameClaim])
	if !ok || username == "" {
		return nil, fail(Invalid, "the provider gave no %s for the person", p.cfg.UsernameClaim)
	}
	if p.cfg.UsernameClaim == "email" {
		// One person, one subject: Bob@EXAMPLE.COM is bob's mailbox at
		// example.com whatever the provider's case.
		if username, ok = address(username); !ok {
			return nil, fail(Refused, "%q is not one email address", username)
		}
	}
	if len(p.cfg.AllowDomains) > 0 {
		raw, _ := claims["email"].(string)
		email, ok := address(raw)
		verified := claims["email_verified"] == true || claims["email_verified"] == "true"
		_, domain, _ := strings.Cut(email, "@")
		if !verified || !ok || !slices.ContainsFunc(p.cfg.AllowDomains, func(d string) bool { return strings.EqualFold(d, domain) }) {
			return nil, fail(Refused, "%s is not a verified email of %s", cmpOr(raw, "(no email)"), strings.Join(p.cfg.AllowDomains, ", "))
		}
	}
	for _, rule := range p.cfg.AllowClaims {
		if !holds(claims[rule.Claim], rule.Values) {
			return nil, fail(Refused, "the %s claim holds none of %s", rule.Claim, strings.Join(rule.Values, ", "))
		}
	}
	display, _ := claims["name"].(string)
	return &Identity{Username: username, DisplayName: cmpOr(display, username), Claims: claims}, nil
}

// address is an email address with its domain in lower case (RFC 5321
// §2.4: the local part is the mailbox owner's to compare, the domain is
// not case-sensitive); false for anything but one local part, one @ and
// one domain (bob@evil.com@example.com is no address of example.com's).
func address(email string) (string, bool) {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return "", false
	}
	return local + "@" + strings.ToLower(domain), true
}

// text is a claim as text: strings, and numbers (GitHub's numeric IDs).
func text(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// holds says whether a claim equals, or as a list contains, one of values.
func holds(v any, values []string) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if s, ok := text(e); ok && slices.Contains(values, s) {
				return true
			}
		}
		return false
	}
	s, ok := text(v)
	return ok && slices.Contains(values, s)
}

// EventBackchannelLogout is the event a logout token carries.
const EventBackchannelLogout = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken is what a verified logout token says: whose session ended
// (sub, sid: at least one), and its jti and expiry, for the caller's
// replay check.
type LogoutToken struct {
	Subject, SID, ID string
	ExpiresAt        time.Time
}

// VerifyLogout checks a logout token POSTed by the provider (OpenID
// Connect Back-Channel Logout 1.0 §2.6): signed by the provider's keys,
// its iss, this client in aud, iat and exp, the back-channel logout
// event, no nonce (so an ID token is never taken for one), and sub or sid.
func (p *Provider) VerifyLogout(ctx context.Context, raw string) (*LogoutToken, error) {
	if !p.oidc() {
		return nil, fail(Invalid, "a plain OAuth 2.0 provider sends no logout tokens")
	}
	p.keys.RefreshIfDue(ctx)
	tok, err := p.logoutTokens.Validate(raw, p.cfg.ClientID)
	if err != nil {
		if te, ok := err.(*introspect.TokenError); ok && te.Reason == introspect.ReasonUnavailable {
			return nil, fail(Unavailable, "fetching its keys: %v", err)
		}
		return nil, fail(Invalid, "the logout token does not verify: %v", err)
	}
	claims, err := payloadClaims(raw)
	if err != nil {
		return nil, fail(Invalid, "the logout token's claims: %v", err)
	}
	events, _ := claims["events"].(map[string]any)
	if _, ok := events[EventBackchannelLogout].(map[string]any); !ok {
		return nil, fail(Invalid, "the logout token has no back-channel logout event")
	}
	if _, ok := claims["nonce"]; ok {
		return nil, fail(Invalid, "a logout token has no nonce: this is not one")
	}
	lt := &LogoutToken{Subject: tok.Subject, ID: tok.ID, ExpiresAt: time.Unix(tok.ExpiresAt, 0)}
	lt.SID, _ = claims["sid"].(string)
	if lt.Subject == "" && lt.SID == "" || tok.IssuedAt == 0 || lt.ID == "" {
		return nil, fail(Invalid, "a logout token needs sub or sid, iat and jti")
	}
	return lt, nil
}

// TypeIDJAG is an identity assertion's typ (the ID-JAG draft §3).
const TypeIDJAG = "oauth-id-jag+jwt"

// maxIDJAGLife is the most an identity assertion may live: a moment's
// hand-over from the IdP to the client to this issuer.
const maxIDJAGLife = 5 * time.Minute

// IDJAG is what a verified identity assertion says.
type IDJAG struct {
	// Identity is the person, mapped as the provider's sign-in maps them.
	Identity        *Identity
	Scope, Resource string
	ID              string
	ExpiresAt       time.Time
}

// AcceptsIDJAG says whether the provider's identity assertions are taken.
func (p *Provider) AcceptsIDJAG() bool { return p.cfg.IDJAG && p.oidc() }

// Issuer is the provider's issuer identifier ("" for a plain one).
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// VerifyIDJAG checks an identity assertion presented by clientID to the
// issuer audience (the ID-JAG draft §4.3): typed oauth-id-jag+jwt, signed by
// the provider's keys (a kid may be left out where one key of the alg is
// published), its iss, audience in aud, client_id the presenting client,
// exp ahead and at most 5 minutes after iat, a jti; the person admitted by
// the provider's rules.
func (p *Provider) VerifyIDJAG(ctx context.Context, raw, clientID, audience string) (*IDJAG, error) {
	if !p.AcceptsIDJAG() {
		return nil, fail(Invalid, "login_provider %s does not accept identity assertions (id_jag)", p.cfg.Name)
	}
	p.keys.RefreshIfDue(ctx)
	tok, err := p.idJAGs.Validate(raw, audience)
	if err != nil {
		if te, ok := err.(*introspect.TokenError); ok && te.Reason == introspect.ReasonUnavailable {
			return nil, fail(Unavailable, "fetching its keys: %v", err)
		}
		return nil, fail(Invalid, "%v", err)
	}
	claims, err := payloadClaims(raw)
	if err != nil {
		return nil, fail(Invalid, "its claims: %v", err)
	}
	if cid, _ := claims["client_id"].(string); cid != clientID {
		return nil, fail(Invalid, "its client_id %q is not the client presenting it (%q)", cid, clientID)
	}
	if tok.IssuedAt == 0 || tok.ExpiresAt-tok.IssuedAt > int64(maxIDJAGLife/time.Second) {
		return nil, fail(Invalid, "it must have an iat, and expire within %s of it", maxIDJAGLife)
	}
	if tok.ID == "" {
		return nil, fail(Invalid, "it has no jti")
	}
	id, err := p.Admit(claims)
	if err != nil {
		return nil, err
	}
	resource, _ := claims["resource"].(string)
	return &IDJAG{Identity: id, Scope: tok.Scope, Resource: resource, ID: tok.ID, ExpiresAt: time.Unix(tok.ExpiresAt, 0)}, nil
}
