// Package authserver is tokengate's OAuth 2.0 authorization server: the
// endpoints as net/http handlers, grants, clients, users and token minting.
// It knows nothing of Caddy.
package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/admin"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/logout"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/token"
	"github.com/tokengate/tokengate/authserver/web"
	"github.com/tokengate/tokengate/dpop"
	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/login"
	"github.com/tokengate/tokengate/outbound"
)

// Config is what a Server needs. Durations left zero take the defaults.
type Config struct {
	// Instance names this process in health answers, so that a start can
	// tell its own answers from another process's on the same port (see
	// the caddymodule). Default: none.
	Instance string
	// Issuer is the iss of every token and the base of every endpoint.
	Issuer          string
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	CodeTTL         time.Duration
	DeviceCodeTTL   time.Duration
	DeviceInterval  time.Duration
	// GrantMaxAge is a grant's absolute lifetime, from the person's
	// authentication: refreshing never takes it further.
	GrantMaxAge time.Duration
	// RefreshRetryGrace is how long after a refresh token's first use the
	// same client may present it again and get a fresh successor, when
	// the token that use returned was never used (its answer was lost).
	// Negative turns the grace off: any second use revokes the grant.
	RefreshRetryGrace time.Duration
	// DeviceFailuresPerIP limits wrong user codes on the device page in 15
	// minutes, per client address (IPv6: per /64).
	DeviceFailuresPerIP int64

	Clients []*client.Client
	Users   []*web.User

	// TemplateDir holds operator templates replacing the built-in pages.
	TemplateDir string
	// Resources are the RFC 8707/9728 protected resources clients may ask
	// tokens for (resource → the scopes it needs), besides those the
	// embedding server's routes add (AddResource).
	Resources map[string][]string

	// Registration, when set, turns on dynamic client registration at
	// PathRegister (RFC 7591/7592).
	Registration *RegistrationConfig

	// ConfigFetcher reaches the URLs written in the configuration (config
	// clients' jwks_uri). Default: outbound's Trusted client.
	ConfigFetcher *outbound.Client

	// Secrets checks client secrets and paces every bcrypt comparison
	// (secrets and passwords). Default: a new one. Servers in one process
	// (a configuration and the one reloading it) may share one, so that
	// the bound on bcrypt's CPU holds across them and verified secrets
	// stay cached.
	Secrets *client.Secrets

	// ExchangeIssuers check the trusted issuers' tokens clients may
	// exchange (exchange_from), by issuer identifier.
	ExchangeIssuers map[string]token.SubjectIssuer

	// BackchannelRetries are the waits between attempts to deliver a
	// logout token (default logout.DefaultRetries).
	BackchannelRetries []time.Duration

	// DPoPNonce makes DPoP proofs carry a server nonce (RFC 9449 §8):
	// every instance derives the same from the shared cookie secret and
	// the time, so a proof cannot be replayed on another instance later.
	DPoPNonce bool

	// LoginProviders sign people in through their identity provider, at
	// PathLoginProviders<name>; their people's subjects are <name>:<user>.
	LoginProviders []*login.Provider

	// ScopeDescriptions say what each scope lets an application do, in
	// words for the consent page ("See your droplets"); a scope without
	// one shows its name.
	ScopeDescriptions map[string]string

	// UpstreamUser returns the user an earlier handler authenticated
	// (Caddy's {http.auth.user.id}), or "". Such a user skips /login.
	UpstreamUser func(*http.Request) string
	// ClientIP returns the requester's IP as the embedding server sees it
	// (trusted proxies); the connection's address when nil or "".
	ClientIP func(*http.Request) string

	Store store.Store
	// SharedStore says other instances use the store too (Redis): the
	// revocation state then goes stale when the store is out of reach
	// longer than RevocationMaxStaleness (default 1m), and bearer checks
	// fail closed.
	SharedStore            bool
	RevocationMaxStaleness time.Duration
	// SigningAlg signs access tokens: ES256 (default), EdDSA or RS256.
	SigningAlg string
	// KeyRotation is the scheduled signing key rotation period (default
	// 30 days); negative turns it off.
	KeyRotation time.Duration
	// TokenCacheSize bounds the verified-token cache (default 20,000,
	// about 0.5 KB a token); negative turns the cache off.
	TokenCacheSize int
	// SyncInterval is how often Run re-reads the key ring and the store's
	// generation, which also proves the store reachable. Default 1s.
	SyncInterval time.Duration

	Logger *zap.Logger
	// AuditRing, when set, keeps the latest audit events for the admin
	// console; it may outlive the Server (a config reload keeps it).
	AuditRing *AuditRing
	// Metrics receives what the server counts; nil counts nothing.
	Metrics Metrics
}

// Metrics receives counts for an embedding server to export (tokengate's
// Caddy module: Prometheus). Labels come from small fixed sets, except
// client IDs, which are as many as the registered clients.
type Metrics interface {
	// token.Metrics counts tokens issued, token errors and device polls;
	// web.Metrics failed sign-ins through login providers;
	// logout.Metrics back-channel logouts.
	token.Metrics
	web.Metrics
	logout.Metrics
	// StoreError counts a store operation that failed while the server
	// was doing that (a fixed description, such as "redeeming a refresh
	// token").
	StoreError(during string)
	// StoreDataLoss counts the store losing its data: "key ring" or
	// "data" (its generation marker changed).
	StoreDataLoss(what string)
}

// StoreDataLosses are the label values StoreDataLoss reports, so that an
// exporter can show each series at 0 before its first event (dashboards
// and alerts then see it); token.DevicePollResults are DevicePoll's.
var StoreDataLosses = []string{"key ring", "data"}

// BackchannelLogoutResults are the label values BackchannelLogout reports.
var BackchannelLogoutResults = logout.Results

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) TokenIssued(string, string)        {}
func (noMetrics) TokenError(string)                 {}
func (noMetrics) DevicePoll(string)                 {}
func (noMetrics) StoreError(string)                 {}
func (noMetrics) StoreDataLoss(string)              {}
func (noMetrics) LoginProviderError(string, string) {}
func (noMetrics) BackchannelLogout(string)          {}

// Defaults for the durations of Config.
const (
	DefaultAccessTokenTTL  = time.Hour
	DefaultRefreshTokenTTL = 720 * time.Hour
	DefaultCodeTTL         = time.Minute
	DefaultDeviceCodeTTL   = 10 * time.Minute
	DefaultDeviceInterval  = 5 * time.Second
	DefaultGrantMaxAge     = 90 * 24 * time.Hour
	// DefaultRefreshRetryGrace is long enough for a client's retry after a
	// lost answer or a store failover, short enough that a stolen token's
	// replay soon counts as reuse.
	DefaultRefreshRetryGrace = time.Minute
)

// Endpoint paths, below the issuer's path (the pages' are web's).
const (
	PathToken               = "/oauth/token"
	PathJWKS                = "/oauth/jwks"
	PathMetadata            = "/.well-known/oauth-authorization-server"
	PathRevoke              = "/oauth/revoke"
	PathIntrospect          = "/oauth/introspect"
	PathHealth              = "/oauth/health"
	PathDeviceAuthorization = "/oauth/device"
	// PathUserinfo and PathOpenIDConfiguration are OpenID Connect's
	// (Core §5.3, Discovery §4).
	PathUserinfo            = "/oauth/userinfo"
	PathOpenIDConfiguration = "/.well-known/openid-configuration"
)

// Server is the authorization server: it wires the components (client,
// token, web, admin), routes requests to them, keeps its runtime in sync
// with the store, and serves metadata, health and registration.
type Server struct {
	cfg    Config
	issuer *url.URL
	store  store.Store
	// obs is where the server reports: logs, audit lines, metrics.
	obs telemetry
	// rt is what the server keeps in sync with the store (runtime.go).
	rt runtime
	// clients finds clients: the configuration's, metadata documents',
	// the store's. uses records self-registered ones' use (nil when
	// registration is off).
	clients *client.Registry
	uses    *client.Uses
	// tokens is the token side: the token endpoint, revocation,
	// introspection, device authorization, grants, resources.
	tokens *token.Service
	admin  *admin.Admin
	// web serves what a person does in a browser.
	web *web.Service
	// logout ends sessions and tells relying parties.
	logout *logout.Service
	routes routes
}

// telemetry is where the server reports.
type telemetry struct {
	log *zap.Logger
	// audit takes the audit lines (see Server.audit).
	audit    *zap.Logger
	metrics  Metrics
	failures oauth.Failures
}

// routes are the server's endpoints by path: exact ones, then those
// serving every path below a prefix (RFC 7592's per-client URLs, login
// providers' callbacks).
type routes struct {
	exact  map[string]http.HandlerFunc
	prefix []prefixRoute
}

// Validate checks what an operator writes, before any store is open, so
// that an embedding server reports it when it reads its configuration:
// the issuer, the signing algorithm, the durations, and the clients and
// users. New checks the issuer, clients and users again; it takes the
// durations as given (a test may poll faster than a device is told to).
func (cfg *Config) Validate() error {
	if _, err := ValidateIssuer(cfg.Issuer); err != nil {
		return err
	}
	if cfg.SigningAlg != "" {
		if err := keys.CheckAlg(cfg.SigningAlg); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"access_token_ttl", cfg.AccessTokenTTL}, {"refresh_token_ttl", cfg.RefreshTokenTTL}, {"code_ttl", cfg.CodeTTL},
		{"device_code_ttl", cfg.DeviceCodeTTL}, {"device_interval", cfg.DeviceInterval}, {"grant_max_age", cfg.GrantMaxAge}} {
		if d.d < 0 {
			return fmt.Errorf("%s must be positive", d.name)
		}
	}
	if d := cfg.DeviceInterval; d != 0 && (d < time.Second || d%time.Second != 0) {
		return fmt.Errorf("device_interval %s must be whole seconds: devices are told it in seconds (RFC 8628)", d)
	}
	if cfg.Registration != nil {
		if err := cfg.Registration.Validate(); err != nil {
			return err
		}
	}
	return ValidateClientsAndUsers(cfg.Clients, cfg.Users)
}

// applyDefaults fills in every setting left zero with its default: the
// one place defaults are applied.
func (cfg *Config) applyDefaults() {
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&cfg.AccessTokenTTL, DefaultAccessTokenTTL}, {&cfg.RefreshTokenTTL, DefaultRefreshTokenTTL},
		{&cfg.CodeTTL, DefaultCodeTTL}, {&cfg.DeviceCodeTTL, DefaultDeviceCodeTTL}, {&cfg.DeviceInterval, DefaultDeviceInterval},
		{&cfg.GrantMaxAge, DefaultGrantMaxAge}, {&cfg.RefreshRetryGrace, DefaultRefreshRetryGrace},
		{&cfg.KeyRotation, DefaultKeyRotation}, {&cfg.RevocationMaxStaleness, DefaultRevocationMaxStaleness},
		{&cfg.SyncInterval, DefaultSyncInterval}} {
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	if cfg.SigningAlg == "" {
		cfg.SigningAlg = DefaultSigningAlg
	}
	if cfg.TokenCacheSize == 0 {
		cfg.TokenCacheSize = DefaultTokenCacheSize
	}
	if cfg.DeviceFailuresPerIP == 0 {
		cfg.DeviceFailuresPerIP = web.DefaultDeviceFailuresPerIP
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if r := cfg.Registration; r != nil {
		defaults := *r // the caller's copy stays as it was given
		if defaults.UnusedClientTTL <= 0 {
			defaults.UnusedClientTTL = DefaultUnusedClientTTL
		}
		if defaults.MaxClients <= 0 {
			defaults.MaxClients = DefaultMaxClients
		}
		cfg.Registration = &defaults
	}
}

// ValidateIssuer checks an issuer identifier (RFC 8414 §2): an https URL
// without query or fragment; plain http only for loopback hosts.
func ValidateIssuer(issuer string) (*url.URL, error) {
	if issuer == "" {
		return nil, errors.New("issuer is required: the URL of the authorization server, e.g. https://auth.example.com")
	}
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("issuer %q must be an absolute URL such as https://auth.example.com", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(issuer, "?") || strings.Contains(issuer, "#") {
		return nil, fmt.Errorf("issuer %q must not have a query or fragment", issuer)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && outbound.IsLoopbackHost(u.Hostname()):
	default:
		return nil, fmt.Errorf("issuer %q must use https (http is allowed only for localhost)", issuer)
	}
	if strings.HasSuffix(u.Path, "/") {
		return nil, fmt.Errorf("issuer %q must not end with a slash", issuer)
	}
	return u, nil
}

// ValidateClientsAndUsers checks configured clients and users, each and
// for duplicates, so that an embedding server can report problems before
// it builds a Server.
func ValidateClientsAndUsers(clients []*client.Client, users []*web.User) error {
	seen := map[string]bool{}
	for _, c := range clients {
		if err := client.Validate(c); err != nil {
			return err
		}
		if seen[c.ID] {
			return fmt.Errorf("client %s is defined twice", c.ID)
		}
		seen[c.ID] = true
	}
	clientIDs := seen
	seen = map[string]bool{}
	for _, u := range users {
		if err := web.ValidateUser(u); err != nil {
			return err
		}
		if seen[u.Username] {
			return fmt.Errorf("user %s is defined twice", u.Username)
		}
		// A client's own tokens carry its ID as sub: one name for both
		// would let an API (and a revocation by subject) mistake one for
		// the other.
		if clientIDs[u.Username] {
			return fmt.Errorf("client %s has the same name as user %s: a token's sub could be either; rename one", u.Username, u.Username)
		}
		seen[u.Username] = true
	}
	return nil
}

// checkRegisteredClients refuses a configuration whose users share a name
// with a client registered in the store (see ValidateClientsAndUsers).
func (s *Server) checkRegisteredClients(ctx context.Context) error {
	list, err := s.store.Clients(ctx)
	if err != nil {
		return fmt.Errorf("listing registered clients: %w", err)
	}
	for _, c := range list {
		if slices.ContainsFunc(s.cfg.Users, func(u *web.User) bool { return u.Username == c.ID }) {
			return fmt.Errorf("user %s has the same name as registered client %s: a token's sub could be either; rename the user or delete the client", c.ID, c.ID)
		}
	}
	return nil
}

// New checks cfg and builds the issuer: its signing keys (loaded from the
// store, or made), its revocation state, the validator bearer checks share,
// and the Server. It reads and writes the store (ctx bounds that); Run
// keeps it all in sync afterwards.
func New(ctx context.Context, cfg Config) (*Server, error) {
	iss, err := ValidateIssuer(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		return nil, errors.New("authserver: a Store is required")
	}
	cfg.applyDefaults()
	trusted := cfg.ConfigFetcher
	if trusted == nil {
		// Key sets of several RSA keys outgrow the 5 KB a client's
		// documents get.
		trusted = outbound.New(outbound.Options{Trusted: true, MaxBytes: 64 << 10})
	}
	metrics := cfg.Metrics
	if metrics == nil {
		metrics = noMetrics{}
	}
	s := &Server{cfg: cfg, issuer: iss, store: cfg.Store,
		obs: telemetry{log: cfg.Logger, audit: cfg.Logger.Named("audit"), metrics: metrics, failures: oauth.Failures{Log: cfg.Logger, Count: metrics.StoreError}}}
	if err := ValidateClientsAndUsers(cfg.Clients, cfg.Users); err != nil {
		return nil, err
	}
	for _, c := range cfg.Clients {
		for _, iss := range c.ExchangeFrom {
			if iss != client.SelfIssuer && cfg.ExchangeIssuers[iss] == nil {
				return nil, &client.Error{Client: c.ID, Field: "exchange_from", Value: iss,
					Err: fmt.Errorf("exchange_from %s is not a trusted issuer: add a trust %s { ... } block", iss, iss)}
			}
		}
	}
	secrets := cfg.Secrets
	if secrets == nil {
		secrets = client.NewSecrets()
	}
	people, err := web.NewPeople(cfg.Users, cfg.LoginProviders, cfg.Clients, secrets)
	if err != nil {
		return nil, err
	}
	// URLs clients supply (jwks_uri, metadata documents) are fetched
	// through the guarded client.
	fetch := outbound.New(outbound.Options{})
	var documents *client.Documents
	if r := cfg.Registration; r != nil {
		if fetch = r.Fetcher; fetch == nil {
			fetch = outbound.New(outbound.Options{AllowPrivateHosts: r.AllowPrivateHosts})
		}
		if r.ClientIDMetadataDocuments {
			documents = client.NewDocuments(fetch, r.Scopes, cfg.Logger)
		}
		s.uses = client.NewUses(cfg.Store, r.ClientTTL, cfg.Logger)
	}
	s.clients = client.NewRegistry(cfg.Clients, cfg.Store, documents, fetch, trusted, cfg.Logger)
	if err := s.openRuntime(ctx); err != nil {
		return nil, err
	}
	var nonces *dpop.Nonces
	if cfg.DPoPNonce {
		nonces = &dpop.Nonces{Key: s.rt.keys.CookieSecret}
	}
	s.logout = logout.New(logout.Config{Issuer: cfg.Issuer, SessionTTL: web.SessionTTL, Retries: cfg.BackchannelRetries}, cfg.Store, logout.Collaborators{
		Keys: s.rt.keys, Clients: s.clients, Revocations: s.rt.revocations, Trusted: trusted, Guarded: fetch,
		Audit: s.audit, Metrics: metrics, Log: cfg.Logger})
	resources := new(token.Resources)
	for r, scopes := range cfg.Resources {
		if err := resources.Add(r, "", scopes); err != nil {
			return nil, err
		}
	}
	s.tokens = token.New(token.Config{Issuer: cfg.Issuer, TokenEndpoint: s.endpointURL(PathToken), UserinfoEndpoint: s.endpointURL(PathUserinfo),
		VerificationURI: s.endpointURL(web.PathDevice),
		AccessTokenTTL:  cfg.AccessTokenTTL, RefreshTokenTTL: cfg.RefreshTokenTTL, DeviceCodeTTL: cfg.DeviceCodeTTL, DeviceInterval: cfg.DeviceInterval,
		GrantMaxAge: cfg.GrantMaxAge, RefreshRetryGrace: cfg.RefreshRetryGrace}, cfg.Store, token.Collaborators{
		Keys:        s.rt.keys,
		Clients:     client.NewAuthenticator(s.clients, secrets, cfg.Store, cfg.Issuer, s.endpointURL(PathToken), s.addressKey, s.obs.failures.Store),
		Uses:        s.uses,
		Validator:   s.rt.validator,
		Revocations: s.rt.revocations,
		Resources:   resources,
		Nonces:      nonces,
		People:      people.Identity,
		Logouts:     s.logout,
		Issuers:     cfg.ExchangeIssuers,
		IDJAG:       idJAGVerifier(cfg.Issuer, cfg.LoginProviders),
		Audit:       s.audit,
		Failures:    s.obs.failures,
		Metrics:     metrics,
		Log:         cfg.Logger,
	})
	s.admin = admin.New(cfg.Store, s.clients, s.tokens, s.rt.keys, people.IsUser, s.audit, cfg.Logger)
	s.web, err = web.New(web.Config{Issuer: cfg.Issuer, CodeTTL: cfg.CodeTTL, AccessTokenTTL: cfg.AccessTokenTTL, GrantMaxAge: cfg.GrantMaxAge,
		DeviceFailuresPerIP: cfg.DeviceFailuresPerIP, TemplateDir: cfg.TemplateDir, ScopeDescriptions: cfg.ScopeDescriptions, UpstreamUser: cfg.UpstreamUser},
		cfg.Store, web.Collaborators{Keys: s.rt.keys, Clients: s.clients, Tokens: s.tokens, People: people, Sessions: s.logout, Address: s.addressKey,
			Audit: s.audit, Failures: s.obs.failures, Metrics: metrics, Log: cfg.Logger})
	if err != nil {
		return nil, err
	}
	base := iss.Path
	s.routes.exact = map[string]http.HandlerFunc{
		base + web.PathAuthorize: s.web.ServeAuthorize,
		base + web.PathLogin:     s.web.ServeLogin,
		base + web.PathConsent:   s.web.ServeConsent,
		base + web.PathStyle:     s.web.ServeStyle,
		base + web.PathAccount:   s.web.ServeAccount,
		base + web.PathLogout:    s.web.ServeLogout,
		// OpenID Connect: RP-Initiated Logout, UserInfo and Discovery
		// (appended to the issuer, §4; also inserted, as RFC 8414 does).
		base + web.PathEndSession:      s.web.ServeEndSession,
		base + PathUserinfo:            s.tokens.ServeUserinfo,
		base + PathOpenIDConfiguration: s.handleOpenIDConfiguration,
		PathOpenIDConfiguration + base: s.handleOpenIDConfiguration,

		base + PathDeviceAuthorization: s.tokens.ServeDeviceAuthorization,
		base + web.PathDevice:          s.web.ServeDevice,
		base + web.PathDeviceQR:        s.web.ServeDeviceQR,

		base + PathToken:      s.tokens.ServeToken,
		base + PathRevoke:     s.tokens.ServeRevoke,
		base + PathIntrospect: s.tokens.ServeIntrospect,
		base + PathJWKS:       s.handleJWKS,
		base + PathHealth:     s.handleHealth,
		// RFC 8414 §3.1 inserts the well-known segment before the issuer's
		// path; many clients append it instead, so serve both.
		PathMetadata + base: s.handleMetadata,
		base + PathMetadata: s.handleMetadata,
	}
	if cfg.Registration != nil {
		if err := cfg.Registration.Validate(); err != nil {
			return nil, err
		}
		s.routes.exact[base+PathRegister] = s.handleRegister
		s.routes.prefix = append(s.routes.prefix, prefixRoute{base + PathRegister + "/", s.withRequester(http.HandlerFunc(s.handleRegister))})
	}
	if s.web.HasProviders() {
		s.routes.prefix = append(s.routes.prefix, prefixRoute{base + web.PathLoginProviders, s.withRequester(http.HandlerFunc(s.web.ServeLoginProvider))})
	}
	// The endpoints that write audit lines learn who is asking.
	for _, p := range []string{web.PathAuthorize, web.PathLogin, web.PathConsent, PathDeviceAuthorization, web.PathDevice, PathToken, PathRevoke, PathRegister, web.PathAccount, web.PathLogout, web.PathEndSession} {
		if h, ok := s.routes.exact[base+p]; ok {
			s.routes.exact[base+p] = s.withRequester(h)
		}
	}
	if err := s.checkRegisteredClients(ctx); err != nil {
		return nil, err
	}
	if err := s.checkStoreGeneration(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Admin is the server's administration: clients, grants, revocations,
// keys.
func (s *Server) Admin() *admin.Admin { return s.admin }

// AdminHandler serves the admin API below /oauth2/; its audit lines name
// the requester.
func (s *Server) AdminHandler() http.Handler { return s.withRequester(s.admin.Handler()) }

// Handler returns the endpoint serving path, or nil when the path is not one
// of the authorization server's, so the caller passes the request on.
func (s *Server) Handler(path string) http.Handler {
	if h, ok := s.routes.exact[path]; ok {
		return h
	}
	for _, p := range s.routes.prefix {
		if strings.HasPrefix(path, p.prefix) && len(path) > len(p.prefix) {
			return p.handler
		}
	}
	return nil
}

// prefixRoute serves every path below prefix (RFC 7592's per-client URLs).
type prefixRoute struct {
	prefix  string
	handler http.HandlerFunc
}

// AddResource makes a resource known, so that clients may ask for tokens
// for it (the embedding server's protected routes call it as they start).
// name (RFC 9728's resource_name, may be empty) is shown on the consent
// page.
func (s *Server) AddResource(resource, name string, scopes []string) error {
	return s.tokens.Resources().Add(resource, name, scopes)
}

// DPoPNonces are the server's DPoP nonces, for the resource routes; nil
// when off.
func (s *Server) DPoPNonces() *dpop.Nonces { return s.tokens.DPoPNonces() }

func (s *Server) endpointURL(path string) string { return s.cfg.Issuer + path }

// idJAGVerifier verifies identity assertions (ID-JAG) of the login
// providers that accept them, picking the provider by the assertion's iss;
// nil when none does.
func idJAGVerifier(issuer string, providers []*login.Provider) token.IDJAGVerifier {
	by := map[string]*login.Provider{}
	for _, p := range providers {
		if p.AcceptsIDJAG() {
			by[p.Issuer()] = p
		}
	}
	if len(by) == 0 {
		return nil
	}
	return func(ctx context.Context, raw, clientID string) (*token.Assertion, error) {
		iss := introspect.UnverifiedIssuer(raw)
		p := by[iss]
		if p == nil {
			return nil, fmt.Errorf("its issuer %q is no login provider with id_jag", iss)
		}
		a, err := p.VerifyIDJAG(ctx, raw, clientID, issuer)
		if err != nil {
			return nil, err
		}
		return &token.Assertion{Subject: p.Name() + ":" + a.Identity.Username, Login: p.Name(), Scope: a.Scope, Resource: a.Resource,
			ID: a.ID, ExpiresAt: a.ExpiresAt}, nil
	}
}
