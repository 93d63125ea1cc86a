// Package caddymodule is tokengate's Caddy glue: the oauth2 app, its store
// modules, the oauth2_server and bearer_auth handlers, and their Caddyfile
// forms. The protocol itself lives in authserver and introspect.
package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/store"
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
	// RevocationMaxStaleness: with a shared store, how long an instance
	// may go without reaching it before bearer_auth fails closed (503),
	// since revocations made elsewhere could be missed. Default 1m.
	RevocationMaxStaleness caddy.Duration `json:"revocation_max_staleness,omitempty"`
	// KeyRotation is how often the signing key is replaced on schedule; the
	// next key is published a quarter of that (at most a day) before it
	// signs. Default 720h (30 days); negative turns scheduled rotation off.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`
	// Templates is a folder of page templates (login.html, consent.html,
	// error.html, style.css) replacing the built-in ones of the same name.
	Templates string `json:"templates,omitempty"`

	store  store.Store
	server *authserver.Server
	admin  http.Handler
	logger *zap.Logger

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
	// Secret is the plain secret, typically {env.NAME}. Neither Secret
	// nor SecretHash makes a public client, which must use PKCE.
	Secret       string   `json:"secret,omitempty"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// GrantTypes: authorization_code, refresh_token, client_credentials,
	// device_code.
	GrantTypes []string `json:"grant_types,omitempty"`
	// Scopes this client may obtain.
	Scopes []string `json:"scopes,omitempty"`
	// Audience is the aud of its access tokens. Default: the issuer.
	Audience []string `json:"audience,omitempty"`
	// SkipConsent: a first-party application; users see no consent screen.
	SkipConsent bool `json:"skip_consent,omitempty"`
	// ResourceServer may introspect any token, not only its own.
	ResourceServer bool `json:"resource_server,omitempty"`
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
			Scopes: cc.Scopes, Audience: cc.Audience, SkipConsent: cc.SkipConsent, ResourceServer: cc.ResourceServer}
		if c.Name == "" {
			c.Name = cc.ID
		}
		for _, g := range cc.GrantTypes {
			gt, ok := authserver.GrantNames[g]
			if !ok {
				return nil, fmt.Errorf("client %s: unknown grant %q: use authorization_code, refresh_token, client_credentials or device_code", cc.ID, g)
			}
			c.GrantTypes = append(c.GrantTypes, gt)
		}
		switch {
		case cc.SecretHash != "" && cc.Secret != "":
			return nil, fmt.Errorf("client %s: give secret_hash or secret, not both", cc.ID)
		case cc.SecretHash != "":
			if !authserver.IsBcryptHash(cc.SecretHash) {
				return nil, fmt.Errorf("client %s: secret_hash is not a bcrypt hash: make one with `tokengate hash-password`", cc.ID)
			}
			c.SecretHash = cc.SecretHash
		case cc.Secret != "":
			secret := cc.Secret
			if repl != nil {
				secret = repl.ReplaceKnown(secret, "")
				if secret == "" {
					return nil, fmt.Errorf("client %s: secret %q is empty once placeholders are replaced: is the environment variable set?", cc.ID, cc.Secret)
				}
			}
			c.SecretHash = authserver.HashSecretSHA256(secret)
		default:
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
	a.logger = ctx.Logger()
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
		return fmt.Errorf("oauth2: loading store: %w", err)
	}
	a.store = mod.(StoreModule).Store()

	initCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a.server, err = authserver.New(initCtx, authserver.Config{
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
		UpstreamUser:           upstreamUser,
		ClientIP:               clientIP,
		Store:                  a.store,
		Logger:                 a.logger,
		Metrics:                serverMetrics{},
	})
	if err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	a.admin = a.server.AdminHandler()
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

// Start keeps the issuer in sync with the store (authserver.Server.Run).
func (a *App) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	a.stop, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		a.server.Run(ctx)
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

// parseGlobalOption sets up the oauth2 app from the Caddyfile global option:
//
//	oauth2 {
//		issuer <url>
//		store file [<path>] | store redis { ... }
//		signing_alg ES256|EdDSA|RS256
//		access_token_ttl|refresh_token_ttl|code_ttl|device_code_ttl|device_interval|grant_max_age <duration>
//		key_rotation|refresh_retry_grace <duration>|off
//		revocation_max_staleness <duration>
//		templates <folder>
//		client <id> { ... }
//		user <username> <bcrypt hash> { name ...; email ... }
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("oauth2 is configured twice: use one oauth2 block")
	}
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "oauth2", Value: caddyconfig.JSON(a, nil)}, nil
}

// UnmarshalCaddyfile fills the app from the oauth2 global option.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "oauth2"
	if d.NextArg() {
		return d.Errf("oauth2 takes a block, not arguments")
	}
	for d.NextBlock(0) {
		dir := d.Val()
		switch dir {
		case "issuer":
			if !d.Args(&a.Issuer) {
				return d.Errf("issuer needs a URL, e.g. issuer https://auth.example.com")
			}
			if _, err := authserver.ValidateIssuer(a.Issuer); err != nil {
				return d.Errf("issuer: %v", err)
			}
		case "store":
			if !d.NextArg() {
				return d.Errf("store needs a kind: file or redis")
			}
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "oauth2.stores."+name)
			if err != nil {
				if _, merr := caddy.GetModule("oauth2.stores." + name); merr != nil {
					return d.Errf("store %q is not known: use file or redis", name)
				}
				return err
			}
			a.StoreRaw = caddyconfig.JSONModuleObject(unm, "module", name, nil)
		case "signing_alg":
			if !d.Args(&a.SigningAlg) {
				return d.ArgErr()
			}
			if !slices.Contains(authserver.SupportedAlgs, a.SigningAlg) {
				return d.Errf("signing_alg %q is not supported: use one of %s", a.SigningAlg, strings.Join(authserver.SupportedAlgs, ", "))
			}
		case "key_rotation", "refresh_retry_grace":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.Errf("%s needs a duration (e.g. %s) or off", dir, map[string]string{"key_rotation": "720h", "refresh_retry_grace": "60s"}[dir])
			}
			dst := map[string]*caddy.Duration{"key_rotation": &a.KeyRotation, "refresh_retry_grace": &a.RefreshRetryGrace}[dir]
			if v == "off" {
				*dst = -1
				break
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("%s: %q is not a positive duration or off", dir, v)
			}
			*dst = caddy.Duration(dur)
		case "access_token_ttl", "refresh_token_ttl", "code_ttl", "device_code_ttl", "device_interval", "revocation_max_staleness", "grant_max_age":
			var v string
			if !d.Args(&v) {
				return d.Errf("%s needs a duration, e.g. 1h", dir)
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("%s: %q is not a positive duration (e.g. 90s, 1h, 720h)", dir, v)
			}
			*map[string]*caddy.Duration{"access_token_ttl": &a.AccessTokenTTL, "refresh_token_ttl": &a.RefreshTokenTTL,
				"code_ttl": &a.CodeTTL, "device_code_ttl": &a.DeviceCodeTTL, "device_interval": &a.DeviceInterval,
				"revocation_max_staleness": &a.RevocationMaxStaleness, "grant_max_age": &a.GrantMaxAge}[dir] = caddy.Duration(dur)
		case "templates":
			if !d.Args(&a.Templates) || d.NextArg() {
				return d.Errf("templates takes one folder")
			}
		case "client":
			c, err := parseClient(d)
			if err != nil {
				return err
			}
			a.Clients = append(a.Clients, c)
		case "user":
			u, err := parseUser(d)
			if err != nil {
				return err
			}
			a.Users = append(a.Users, u)
		default:
			return d.Errf("unknown oauth2 option %q (expected issuer, store, signing_alg, key_rotation, *_ttl, device_interval, grant_max_age, refresh_retry_grace, revocation_max_staleness, templates, client or user)", dir)
		}
	}
	if a.Issuer == "" {
		return d.Errf("oauth2: issuer is required, e.g. issuer https://auth.example.com")
	}
	if err := a.validate(); err != nil {
		return d.Errf("oauth2: %v", err)
	}
	return nil
}

func parseClient(d *caddyfile.Dispenser) (*ClientConfig, error) {
	c := new(ClientConfig)
	if !d.Args(&c.ID) {
		return nil, d.Errf("client needs an ID: client <client_id> { ... }")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		args := d.RemainingArgs()
		one := func(dst *string) error {
			if len(args) != 1 {
				return d.Errf("client %s: %s takes exactly one value", c.ID, sub)
			}
			*dst = args[0]
			return nil
		}
		many := func(dst *[]string) error {
			if len(args) == 0 {
				return d.Errf("client %s: %s needs at least one value", c.ID, sub)
			}
			*dst = append(*dst, args...)
			return nil
		}
		var err error
		switch sub {
		case "name":
			err = one(&c.Name)
		case "website":
			err = one(&c.Website)
		case "secret_hash":
			err = one(&c.SecretHash)
		case "secret":
			err = one(&c.Secret)
		case "redirect_uri":
			err = many(&c.RedirectURIs)
		case "grant":
			err = many(&c.GrantTypes)
			for _, g := range args {
				if _, ok := authserver.GrantNames[g]; !ok {
					return nil, d.Errf("client %s: unknown grant %q: use authorization_code, refresh_token, client_credentials or device_code", c.ID, g)
				}
			}
		case "scope":
			err = many(&c.Scopes)
		case "audience":
			err = many(&c.Audience)
		case "skip_consent", "resource_server":
			if len(args) != 0 {
				return nil, d.Errf("client %s: %s takes no value", c.ID, sub)
			}
			if sub == "skip_consent" {
				c.SkipConsent = true
			} else {
				c.ResourceServer = true
			}
		default:
			return nil, d.Errf("client %s: unknown option %q (expected name, website, secret_hash, secret, redirect_uri, grant, scope, audience, skip_consent or resource_server)", c.ID, sub)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(c.GrantTypes) == 0 {
		return nil, d.Errf("client %s: no grant: add e.g. `grant client_credentials`", c.ID)
	}
	return c, nil
}

func parseUser(d *caddyfile.Dispenser) (*UserConfig, error) {
	u := new(UserConfig)
	if !d.Args(&u.Username, &u.PasswordHash) {
		return nil, d.Errf("user needs a username and a bcrypt hash: user <username> <hash from `tokengate hash-password`>")
	}
	if d.NextArg() {
		return nil, d.Errf("user %s: too many arguments (quote the hash if it contains spaces)", u.Username)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		var v string
		if !d.Args(&v) || d.NextArg() {
			return nil, d.Errf("user %s: %s takes exactly one value", u.Username, sub)
		}
		switch sub {
		case "name":
			u.Name = v
		case "email":
			u.Email = v
		default:
			return nil, d.Errf("user %s: unknown option %q (expected name or email)", u.Username, sub)
		}
	}
	return u, nil
}

var (
	_ caddy.App             = (*App)(nil)
	_ caddy.Provisioner     = (*App)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
