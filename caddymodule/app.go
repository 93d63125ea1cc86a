// Package caddymodule is tokengate's Caddy glue: the oauth2 app, its store
// modules, the oauth2_server and bearer_auth handlers, and their Caddyfile
// forms. The protocol itself lives in authserver and introspect.
package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/dpop"
	"github.com/tokengate/tokengate/login"
	"github.com/tokengate/tokengate/trust"
)

func init() {
	caddy.RegisterModule(App{})
	httpcaddyfile.RegisterGlobalOption("oauth2", parseGlobalOption)
}

// App is the oauth2 app: one issuer with its keys, store, clients and users.
// The oauth2_server and bearer_auth handlers use it in process.
type App struct {
	// Issuer is the iss of every token and the base URL of the endpoints.
	// Required; https unless the host is loopback.
	Issuer string `json:"issuer,omitempty"`
	// StoreRaw is where state lives. Default: the embedded file store.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=oauth2.stores inline_key=module"`
	// SigningAlg signs access tokens: ES256 (default), EdDSA or RS256.
	SigningAlg string `json:"signing_alg,omitempty"`
	// AccessTokenTTL is how long access tokens live. Default 1h.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`
	// RefreshTokenTTL is how long a refresh token lives. Default 720h.
	RefreshTokenTTL caddy.Duration `json:"refresh_token_ttl,omitempty"`
	// CodeTTL is how long an authorization code lives. Default 1m.
	CodeTTL caddy.Duration `json:"code_ttl,omitempty"`
	// DeviceCodeTTL is how long a device code lives. Default 10m.
	DeviceCodeTTL caddy.Duration `json:"device_code_ttl,omitempty"`
	// DeviceInterval is the polling interval given to devices. Default 5s.
	DeviceInterval caddy.Duration `json:"device_interval,omitempty"`
	// GrantMaxAge is how long after the person signed in a grant's refresh
	// tokens may still be used, however often they rotate. Default 2160h
	// (90 days); then the person authorizes again.
	GrantMaxAge caddy.Duration `json:"grant_max_age,omitempty"`
	// RefreshRetryGrace is how long after a refresh token's first use a
	// retry by the same client (its answer was lost) gets a fresh token
	// instead of counting as reuse, which revokes the grant. It trades a
	// thief's short window for clients that survive lost answers and
	// store failovers. Default 60s; negative turns it off.
	RefreshRetryGrace caddy.Duration `json:"refresh_retry_grace,omitempty"`
	// Clients are applications defined in the configuration (read-only;
	// more can be registered at run time and live in the store).
	Clients []*ClientConfig `json:"clients,omitempty"`
	// Users are the people who can log in.
	Users []*UserConfig `json:"users,omitempty"`
	// RevocationMaxStaleness is, with a shared store, how long an instance
	// may go without reaching it before bearer_auth fails closed (503),
	// since revocations made elsewhere could be missed. Default 1m.
	RevocationMaxStaleness caddy.Duration `json:"revocation_max_staleness,omitempty"`
	// KeyRotation is how often the signing key is replaced on schedule; the
	// next key is published a quarter of that (at most a day) before it
	// signs. Default 720h (30 days); negative turns scheduled rotation off.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`
	// Resources are protected resources served by other processes that
	// clients may ask tokens for (RFC 8707): the resource identifier and
	// the scopes it needs. Those of this process's bearer_auth routes are
	// known without being listed.
	Resources []ResourceConfig `json:"resources,omitempty"`
	// Registration turns on dynamic client registration (RFC 7591) at
	// /oauth/register; off without it.
	Registration *RegistrationConfig `json:"registration,omitempty"`

	// DPoPNonce makes DPoP proofs carry a server nonce (RFC 9449 §8, §9),
	// which every instance makes alike: a proof then cannot be replayed at
	// another instance, nor later.
	DPoPNonce bool `json:"dpop_nonce,omitempty"`

	// LoginProviders let people sign in through their organisation's
	// identity provider (a button each on the login page).
	LoginProviders []LoginProviderConfig `json:"login_providers,omitempty"`

	// Trust lists other authorization servers whose access tokens
	// bearer_auth routes may accept (bearer_auth { issuer ... }).
	Trust []TrustConfig `json:"trust,omitempty"`
	// ScopeDescriptions say in words what each scope lets an application
	// do ("See your droplets"), for the sign-in and consent pages; a scope
	// without one shows its name.
	ScopeDescriptions map[string]string `json:"scope_descriptions,omitempty"`
	// Templates is a folder of page templates (login.html, consent.html,
	// error.html, style.css) replacing the built-in ones of the same name.
	Templates string `json:"templates,omitempty"`

	store  store.Store
	server *authserver.Server
	admin  http.Handler
	logger *zap.Logger
	// trusted are the Trust blocks' issuers, by identifier.
	trusted map[string]*trust.Issuer
	// dpopReplay is the DPoP proofs this instance's routes accepted;
	// dpopProofs verifies them, keeping the client keys it parsed.
	dpopReplay *dpop.Replay
	dpopProofs *dpop.Verifier
	// recent is the process's recent activity (loadActivity).
	recent *recent
	// ctx is the config's context; consoles are its oauth2_consoles, and
	// resourceRoutes its bearer_auths that name a resource: both checked
	// against the HTTP app's routes at start.
	ctx            caddy.Context
	consoles       []*Console
	resourceRoutes []*BearerAuth

	stop context.CancelFunc
	done chan struct{}
}

// ClientConfig is an application defined in the configuration.
type ClientConfig struct {
	ID      string `json:"client_id"`
	Name    string `json:"name,omitempty"`
	Website string `json:"website,omitempty"`
	// SecretHash is a bcrypt hash of the secret (`tokengate hash-password`).
	SecretHash string `json:"secret_hash,omitempty"`
	// JWKSFile is a JWK Set file of the client's public keys: it then
	// authenticates with private_key_jwt (RFC 7523) instead of a secret.
	JWKSFile string `json:"jwks_file,omitempty"`
	// JWKSURI is where the client publishes that key set instead (https,
	// or http to loopback), fetched when needed and kept five minutes.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// Secret is the plain secret, typically {env.NAME}. Neither Secret,
	// SecretHash nor JWKSFile makes a public client, which must use PKCE.
	Secret       string   `json:"secret,omitempty"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// GrantTypes are the grants it may use: authorization_code,
	// refresh_token, client_credentials, device_code.
	GrantTypes []string `json:"grant_types,omitempty"`
	// Scope lists, space-separated, the scopes this client may obtain
	// (RFC 6749 §3.3's form, as in the admin API).
	Scope string `json:"scope,omitempty"`
	// Scopes is the list form of Scope this config had before; still
	// read, with a warning. Deprecated: use Scope.
	Scopes []string `json:"scopes,omitempty"`
	// Audience is the aud of its access tokens. Default: the issuer.
	Audience []string `json:"audience,omitempty"`
	// SkipConsent marks a first-party application: people see no consent
	// screen.
	SkipConsent bool `json:"skip_consent,omitempty"`
	// ResourceServer may introspect any token, not only its own.
	ResourceServer bool `json:"resource_server,omitempty"`
	// RequireDPoP makes every token request carry a DPoP proof, so that
	// its access tokens are bound to its key (RFC 9449).
	RequireDPoP bool `json:"require_dpop,omitempty"`
}

// RegistrationConfig is dynamic client registration's configuration.
type RegistrationConfig struct {
	// Open lets anyone register. Otherwise InitialAccessToken (typically
	// {env.NAME}) must be sent as a bearer token to register.
	Open               bool   `json:"open,omitempty"`
	InitialAccessToken string `json:"initial_access_token,omitempty"`
	// Scope lists, space-separated, the most a registered client may
	// obtain (required).
	Scope string `json:"scope"`
	// ClientTTL removes registered clients not issued a token this long,
	// and revokes their tokens. Default: kept.
	ClientTTL caddy.Duration `json:"client_ttl,omitempty"`
	// UnusedClientTTL removes a registration that never obtained a token
	// this long after it was made, whatever ClientTTL says. Default 24h:
	// a registration nobody uses is state an attacker made for free.
	UnusedClientTTL caddy.Duration `json:"unused_client_ttl,omitempty"`
	// MaxClients is the budget of registered clients the store may hold
	// (the admin API's count too); a registration past it is refused,
	// saying so. Default 10000. Raise it when that many are legitimately
	// in use; each takes a few KB of store.
	MaxClients int `json:"max_clients,omitempty"`
	// ClientIDMetadataDocuments also accepts https client_ids that name
	// the client's metadata document, fetched from there (https only, no
	// redirects, 5 s, 5 KB, never a private address unless its host is in
	// AllowPrivateHosts).
	ClientIDMetadataDocuments bool     `json:"client_id_metadata_documents,omitempty"`
	AllowPrivateHosts         []string `json:"allow_private_hosts,omitempty"`
}

// LoginProviderConfig is an identity provider people sign in through. Its
// redirect URI is <issuer>/login/<name>/callback; its people's subjects
// are <name>:<username>.
type LoginProviderConfig struct {
	// Name is its path segment and subject prefix: [a-z0-9_-].
	Name string `json:"name"`
	// DisplayName is what its button says ("Sign in with …").
	DisplayName string `json:"display_name,omitempty"`
	// Issuer is an OpenID Connect provider, found by discovery; or give
	// AuthorizationURL, TokenURL and UserinfoURL for a plain OAuth 2.0 one.
	Issuer           string `json:"issuer,omitempty"`
	AuthorizationURL string `json:"authorization_url,omitempty"`
	TokenURL         string `json:"token_url,omitempty"`
	UserinfoURL      string `json:"userinfo_url,omitempty"`
	ClientID         string `json:"client_id"`
	// ClientSecret, typically {env.NAME}.
	ClientSecret string `json:"client_secret"`
	// Scope, space-separated. Default: openid email profile (OpenID
	// Connect), none (plain).
	Scope string `json:"scope,omitempty"`
	// UsernameClaim becomes the user. Default: sub (OpenID Connect),
	// IDClaim (plain).
	UsernameClaim string `json:"username_claim,omitempty"`
	// IDClaim is a plain provider's user ID in userinfo. Default: id.
	IDClaim string `json:"id_claim,omitempty"`
	// AllowDomains admits only verified emails of these domains.
	AllowDomains []string `json:"allow_domains,omitempty"`
	// AllowClaims admits only people whose claim (key) holds one of the
	// values; every entry must hold.
	AllowClaims []AllowClaim `json:"allow_claims,omitempty"`
}

// AllowClaim is one allow_claim line.
type AllowClaim struct {
	Claim  string   `json:"claim"`
	Values []string `json:"values"`
}

// loginProviders makes the configured providers, resolving {env.*} in
// their secrets.
func (a *App) loginProviders() ([]*login.Provider, error) {
	repl := caddy.NewReplacer()
	var out []*login.Provider
	for _, lp := range a.LoginProviders {
		secret, err := secretValue(repl, "login_provider "+lp.Name+": client_secret", lp.ClientSecret)
		if err != nil {
			return nil, err
		}
		cfg := login.Config{Name: lp.Name, DisplayName: lp.DisplayName, Issuer: lp.Issuer, AuthorizationURL: lp.AuthorizationURL,
			TokenURL: lp.TokenURL, UserinfoURL: lp.UserinfoURL, ClientID: lp.ClientID, ClientSecret: secret, Scopes: strings.Fields(lp.Scope),
			UsernameClaim: lp.UsernameClaim, IDClaim: lp.IDClaim, AllowDomains: lp.AllowDomains,
			RedirectURI: authserver.ProviderRedirectURI(a.Issuer, lp.Name), Logger: a.logger.With(zap.String("login_provider", lp.Name))}
		for _, c := range lp.AllowClaims {
			cfg.AllowClaims = append(cfg.AllowClaims, login.ClaimRule{Claim: c.Claim, Values: c.Values})
		}
		p, err := login.New(cfg)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// TrustConfig is another issuer whose tokens routes may accept.
type TrustConfig struct {
	// Issuer is the iss of its tokens, exactly; its discovery document
	// (OpenID Connect, else RFC 8414) is found from it.
	Issuer string `json:"issuer"`
	// Audience lists the aud values its tokens may carry for this gateway
	// (required).
	Audience []string `json:"audience"`
	// JWKSURI is where its signing keys are. Default: from discovery.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// Introspection checks its opaque tokens (RFC 7662).
	Introspection *TrustIntrospection `json:"introspection,omitempty"`
	// ScopeClaim is where its tokens carry scopes: scope (default), scp,
	// or a dotted path such as realm_access.roles.
	ScopeClaim string `json:"scope_claim,omitempty"`
	// TokenTypes are the typ headers accepted. Default: at+jwt and JWT.
	TokenTypes []string `json:"token_types,omitempty"`
}

// TrustIntrospection is how to reach an issuer's introspection endpoint.
type TrustIntrospection struct {
	// URL of the endpoint. Default: from the issuer's discovery document.
	URL      string `json:"url,omitempty"`
	ClientID string `json:"client_id"`
	// ClientSecret, typically {env.NAME}.
	ClientSecret string `json:"client_secret"`
	// CacheTTL bounds how long an answer is used (never past the token's
	// exp). Default 1m.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`
}

// ResourceConfig is a protected resource of another process.
type ResourceConfig struct {
	Resource string `json:"resource"`
	// Scope lists, space-separated, the scopes it requires.
	Scope string `json:"scope,omitempty"`
}

// resources is Resources as authserver takes them.
func (a *App) resources() map[string][]string {
	m := map[string][]string{}
	for _, r := range a.Resources {
		m[r.Resource] = strings.Fields(r.Scope)
	}
	return m
}

// UserConfig is a person who can log in.
type UserConfig struct {
	Username string `json:"username"`
	// PasswordHash is a bcrypt hash (`tokengate hash-password`).
	PasswordHash string `json:"password_hash"`
	Name         string `json:"name,omitempty"`
	Email        string `json:"email,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "oauth2", New: func() caddy.Module { return new(App) }}
}

// clients converts the configured clients, resolving {env.*} placeholders
// in secrets when repl is given (at adapt time they stay unresolved).
// authserver validates them.
func (a *App) clients(repl *caddy.Replacer) ([]*authserver.Client, error) {
	var out []*authserver.Client
	for _, cc := range a.Clients {
		c := &authserver.Client{ID: cc.ID, Name: cc.Name, Website: cc.Website, RedirectURIs: cc.RedirectURIs,
			Scopes: append(strings.Fields(cc.Scope), cc.Scopes...), Audience: cc.Audience, SkipConsent: cc.SkipConsent, ResourceServer: cc.ResourceServer,
			RequireDPoP: cc.RequireDPoP}
		if c.Name == "" {
			c.Name = cc.ID
		}
		for _, g := range cc.GrantTypes {
			gt, err := authserver.GrantType(g)
			if err != nil {
				return nil, fmt.Errorf("client %s: %w", cc.ID, err)
			}
			c.GrantTypes = append(c.GrantTypes, gt)
		}
		// Whatever credentials are given are taken; authserver's one rule
		// (ValidateClient) says which go together.
		c.JWKSURI = cc.JWKSURI
		if cc.JWKSFile != "" {
			raw, err := os.ReadFile(cc.JWKSFile)
			if err != nil {
				return nil, &authserver.ClientError{Client: cc.ID, Field: "jwks_file", Err: fmt.Errorf("reading the key set: %w", err)}
			}
			c.JWKS = raw
		}
		switch {
		case cc.SecretHash != "" && cc.Secret != "":
			return nil, &authserver.ClientError{Client: cc.ID, Field: "secret", Err: errors.New("give secret_hash or secret, not both")}
		case cc.SecretHash != "":
			if !authserver.IsBcryptHash(cc.SecretHash) {
				return nil, &authserver.ClientError{Client: cc.ID, Field: "secret_hash", Err: errors.New("secret_hash is not a bcrypt hash: make one with `tokengate hash-password`")}
			}
			c.SecretHash = cc.SecretHash
		case cc.Secret != "":
			secret := cc.Secret
			if repl != nil {
				var err error
				if secret, err = secretValue(repl, "client "+cc.ID+": secret", cc.Secret); err != nil {
					return nil, err
				}
			}
			c.SecretHash = authserver.HashSecretSHA256(secret)
		case cc.JWKSFile == "" && cc.JWKSURI == "":
			c.Public = true
		}
		out = append(out, c)
	}
	return out, nil
}

// validate checks everything that can be checked without the store, so that
// `tokengate adapt` reports it too.
func (a *App) validate() error {
	if _, err := authserver.ValidateIssuer(a.Issuer); err != nil {
		return err
	}
	if a.SigningAlg != "" && !slices.Contains(authserver.SupportedAlgs, a.SigningAlg) {
		return fmt.Errorf("signing_alg %q is not supported: use one of %s", a.SigningAlg, strings.Join(authserver.SupportedAlgs, ", "))
	}
	for name, d := range map[string]caddy.Duration{"access_token_ttl": a.AccessTokenTTL, "refresh_token_ttl": a.RefreshTokenTTL,
		"code_ttl": a.CodeTTL, "device_code_ttl": a.DeviceCodeTTL, "device_interval": a.DeviceInterval, "grant_max_age": a.GrantMaxAge} {
		if d < 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}
	if d := time.Duration(a.DeviceInterval); d != 0 && (d < time.Second || d%time.Second != 0) {
		return fmt.Errorf("device_interval %s must be whole seconds: devices are told it in seconds (RFC 8628)", d)
	}
	clients, err := a.clients(nil)
	if err != nil {
		return err
	}
	return authserver.ValidateClientsAndUsers(clients, a.users())
}

func (a *App) users() []*authserver.User {
	var out []*authserver.User
	for _, u := range a.Users {
		out = append(out, &authserver.User{Username: u.Username, PasswordHash: u.PasswordHash, Name: u.Name, Email: u.Email})
	}
	return out
}

// Provision checks the configuration, opens the store and loads (or makes)
// the signing keys and the revocation state.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger, a.ctx = ctx.Logger(), ctx
	a.loadActivity()
	err := a.provision(ctx)
	if err != nil {
		// Caddy reports a failed app at the end of a long chain of what
		// was being loaded (the HTTP app's routes, when a handler asked
		// for this app first): say the cause first, alone.
		a.logger.Error(strings.TrimPrefix(err.Error(), "oauth2: "))
	}
	return err
}

func (a *App) provision(ctx caddy.Context) error {
	for _, c := range a.Clients {
		if len(c.Scopes) > 0 {
			a.logger.Warn(`client ` + c.ID + `: the "scopes" list is deprecated: write "scope": "` + strings.Join(c.Scopes, " ") + `"`)
		}
	}
	if err := a.validate(); err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	clients, err := a.clients(caddy.NewReplacer())
	if err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	if a.StoreRaw == nil {
		a.StoreRaw = json.RawMessage(`{"module":"file"}`)
	}
	mod, err := ctx.LoadModule(a, "StoreRaw")
	if err != nil {
		// Caddy flattens the module's error into its loading chain: keep
		// the store's own words, which name the store and the fix.
		msg := err.Error()
		if i := strings.LastIndex(msg, "provision oauth2.stores."); i >= 0 {
			if j := strings.Index(msg[i:], ": "); j >= 0 {
				msg = msg[i+j+2:]
			}
		}
		return fmt.Errorf("oauth2: %s", msg)
	}
	a.store = mod.(StoreModule).Store()

	var registration *authserver.RegistrationConfig
	if r := a.Registration; r != nil {
		token, err := secretValue(caddy.NewReplacer(), "registration: initial_access_token", r.InitialAccessToken)
		if err != nil {
			return fmt.Errorf("oauth2: %w", err)
		}
		if !r.Open && token == "" {
			return errors.New("oauth2: registration: say who may register: open, or an initial_access_token")
		}
		registration = &authserver.RegistrationConfig{Open: r.Open, Scopes: strings.Fields(r.Scope), ClientTTL: time.Duration(r.ClientTTL),
			UnusedClientTTL: time.Duration(r.UnusedClientTTL), MaxClients: r.MaxClients,
			ClientIDMetadataDocuments: r.ClientIDMetadataDocuments, AllowPrivateHosts: r.AllowPrivateHosts, InitialAccessToken: token}
	}
	providers, err := a.loginProviders()
	if err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	initCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a.server, err = authserver.New(initCtx, authserver.Config{
		LoginProviders:  providers,
		DPoPNonce:       a.DPoPNonce,
		Issuer:          a.Issuer,
		AccessTokenTTL:  time.Duration(a.AccessTokenTTL),
		RefreshTokenTTL: time.Duration(a.RefreshTokenTTL),
		CodeTTL:         time.Duration(a.CodeTTL),
		DeviceCodeTTL:   time.Duration(a.DeviceCodeTTL),
		DeviceInterval:  time.Duration(a.DeviceInterval),
		GrantMaxAge:     time.Duration(a.GrantMaxAge),
		// Negative is off here and there, for both.
		RefreshRetryGrace:      time.Duration(a.RefreshRetryGrace),
		KeyRotation:            time.Duration(a.KeyRotation),
		SigningAlg:             a.SigningAlg,
		SharedStore:            mod.(StoreModule).Shared(),
		RevocationMaxStaleness: time.Duration(a.RevocationMaxStaleness),
		Clients:                clients,
		Users:                  a.users(),
		TemplateDir:            a.Templates,
		ScopeDescriptions:      a.ScopeDescriptions,
		Resources:              a.resources(),
		Registration:           registration,
		UpstreamUser:           upstreamUser,
		ClientIP:               clientIP,
		Store:                  a.store,
		Logger:                 a.logger,
		Metrics:                serverMetrics{a.recent.history},
		AuditRing:              a.recent.audit,
	})
	if err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	a.admin = a.server.AdminHandler()
	a.dpopReplay, a.dpopProofs = &dpop.Replay{}, &dpop.Verifier{}
	if err := a.provisionTrust(); err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	if err := a.registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("oauth2: registering metrics: %w", err)
	}
	return nil
}

// provisionTrust makes the checkers of the trusted issuers, resolving
// {env.*} in introspection secrets.
func (a *App) provisionTrust() error {
	repl := caddy.NewReplacer()
	a.trusted = map[string]*trust.Issuer{}
	for _, t := range a.Trust {
		cfg := trust.Config{Issuer: t.Issuer, Audience: t.Audience, JWKSURI: t.JWKSURI, ScopeClaim: t.ScopeClaim, Types: t.TokenTypes,
			Logger: a.logger.Named("trust")}
		if in := t.Introspection; in != nil {
			secret, err := secretValue(repl, "trust "+t.Issuer+": introspection client_secret", in.ClientSecret)
			if err != nil {
				return err
			}
			cfg.Introspection = &trust.IntrospectionConfig{URL: in.URL, ClientID: in.ClientID, ClientSecret: secret, CacheTTL: time.Duration(in.CacheTTL)}
		}
		i, err := trust.New(cfg)
		if err != nil {
			return err
		}
		a.trusted[t.Issuer] = i
	}
	return nil
}

// upstreamUser is the user an earlier handler in the route authenticated,
// as Caddy's auth handlers record it.
func upstreamUser(r *http.Request) string {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return ""
	}
	id, _ := repl.GetString("http.auth.user.id")
	return id
}

// clientIP is the client's IP as Caddy determined it (trusted_proxies).
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// Start starts the issuer (authserver.Server.Start) and keeps it in sync
// with the store (Run).
func (a *App) Start() error {
	if err := a.checkConsoles(); err != nil {
		a.logger.Error(err.Error())
		return fmt.Errorf("oauth2: %w", err)
	}
	a.checkResourceRoutes()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := a.server.Start(sctx); err != nil {
		a.logger.Error(err.Error())
		return fmt.Errorf("oauth2: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stop, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		var wg sync.WaitGroup
		for _, i := range a.trusted {
			wg.Go(func() { i.Run(ctx) })
		}
		a.server.Run(ctx)
		wg.Wait()
	}()
	return nil
}

// Stop ends syncing. The store stays open until Cleanup, so that a reload's
// new config keeps using it.
func (a *App) Stop() error {
	if a.stop != nil {
		a.stop()
		<-a.done
	}
	return nil
}

var (
	_ caddy.App             = (*App)(nil)
	_ caddy.Provisioner     = (*App)(nil)
	_ caddy.CleanerUpper    = (*App)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
