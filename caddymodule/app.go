// Package caddymodule is tokengate's Caddy glue: the oauth2 app, its store
// modules, the oauth2_server and bearer_auth handlers, and their Caddyfile
// forms. The protocol itself lives in authserver and introspect.
package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
	"github.com/tokengate/tokengate/authserver/token"
	"github.com/tokengate/tokengate/dpop"
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

	store store.Store
	// storeName is the store as the start-up line names it.
	storeName string
	// started says Start ran: a config only provisioned (validate) is
	// checked at Cleanup instead.
	started bool
	server  *authserver.Server
	admin   http.Handler
	logger  *zap.Logger
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

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "oauth2", New: func() caddy.Module { return new(App) }}
}

// validate checks everything that can be checked without the store, so that
// `tokengate adapt` reports it too: authserver's rules, on the settings.
func (a *App) validate() error {
	clients, err := a.clients(nil)
	if err != nil {
		return err
	}
	cfg := a.settings(clients)
	return cfg.Validate()
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
	a.store, a.storeName = mod.(StoreModule).Store(), mod.(StoreModule).Describe()

	var registration *authserver.RegistrationConfig
	if r := a.Registration; r != nil {
		token, err := secretValue(caddy.NewReplacer(), "registration: initial_access_token", r.InitialAccessToken)
		if err != nil {
			return fmt.Errorf("oauth2: %w", err)
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
	if err := a.provisionTrust(); err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	cfg := a.settings(clients)
	cfg.LoginProviders, cfg.Registration, cfg.SharedStore = providers, registration, mod.(StoreModule).Shared()
	cfg.ExchangeIssuers = map[string]token.SubjectIssuer{}
	for name, i := range a.trusted {
		cfg.ExchangeIssuers[name] = i
	}
	cfg.UpstreamUser, cfg.ClientIP, cfg.Instance = upstreamUser, clientIP, instance
	cfg.Store, cfg.Logger, cfg.Metrics, cfg.AuditRing, cfg.Secrets = a.store, a.logger, serverMetrics{a.recent.history}, a.recent.audit, a.recent.secrets
	if a.server, err = authserver.New(initCtx, cfg); err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	a.admin = a.server.AdminHandler()
	a.dpopReplay, a.dpopProofs = &dpop.Replay{}, &dpop.Verifier{}
	if err := a.registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("oauth2: registering metrics: %w", err)
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
	a.started = true
	if err := a.checkConsoles(); err != nil {
		a.logger.Error(err.Error())
		return fmt.Errorf("oauth2: %w", err)
	}
	a.checkResourceRoutes()
	issuerServers := a.issuerServers()
	a.announce(issuerServers)
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
		wg.Go(func() { a.checkAlone(ctx, issuerServers) })
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
