package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/login"
	"github.com/tokengate/tokengate/outbound"
	"github.com/tokengate/tokengate/sessionauth"
)

// session_auth: a web app behind a sign-in, the gateway holding the tokens
// (sessionauth has the rules; this is the glue).

func init() {
	caddy.RegisterModule(SessionAuth{})
	httpcaddyfile.RegisterHandlerDirective("session_auth", parseSessionAuth)
	httpcaddyfile.RegisterDirectiveOrder("session_auth", httpcaddyfile.After, "basic_auth")
}

// SessionAuth lets a request through only with a browser session: people
// sign in at the OpenID provider, the gateway keeps their tokens in the
// store, and the upstream sees the person ({http.auth.user.id}, the ID
// token's claims) and, with ForwardToken, a bearer token; never the
// session's cookie.
type SessionAuth struct {
	// Client is the configuration client the gateway signs people in as,
	// with provider self: confidential, with a plain secret (`secret
	// {env.NAME}`), the authorization_code grant (and refresh_token to
	// forward tokens), and <site>/.tokengate/callback among its
	// redirect_uris.
	Client string `json:"client,omitempty"`
	// Provider is "self" (default: this process's issuer) or a
	// login_provider's name, whose client_id and secret are then used.
	Provider string `json:"provider,omitempty"`
	// Scope is asked for at sign-in. Default: openid profile email.
	Scope string `json:"scope,omitempty"`
	// Resource is the RFC 8707 resource of the access token.
	Resource string `json:"resource,omitempty"`
	// ForwardToken sends the upstream Authorization: Bearer <access
	// token>, refreshed ahead of its expiry.
	ForwardToken bool `json:"forward_token,omitempty"`
	// IdleTimeout ends a session unused this long. Default 8h.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`
	// MaxSessionsPerSubject bounds a person's sessions at the site; the
	// oldest end first. Default 50.
	MaxSessionsPerSubject int `json:"max_sessions_per_subject,omitempty"`

	h *sessionauth.Handler
}

// CaddyModule returns the Caddy module information.
func (SessionAuth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.session_auth", New: func() caddy.Module { return new(SessionAuth) }}
}

// Provision makes the relying party of the provider and the handler.
func (s *SessionAuth) Provision(ctx caddy.Context) error {
	app, err := oauth2App(ctx)
	if err != nil {
		return err
	}
	scopes := strings.Fields(s.Scope)
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile", "email"}
	}
	if !slices.Contains(scopes, "openid") {
		return errors.New("session_auth: scope must include openid: the sign-in is OpenID Connect's")
	}
	repl := caddy.NewReplacer()
	var cfg login.Config
	self := s.Provider == "" || s.Provider == "self"
	if self {
		if cfg, err = s.selfConfig(app, repl, scopes); err != nil {
			return err
		}
	} else {
		i := slices.IndexFunc(app.LoginProviders, func(lp LoginProviderConfig) bool { return lp.Name == s.Provider })
		if i < 0 {
			return fmt.Errorf("session_auth: provider %q is neither self nor a login_provider of the oauth2 block", s.Provider)
		}
		lp := &app.LoginProviders[i]
		if s.Client != "" {
			return fmt.Errorf("session_auth: with provider %s, the login_provider's client_id and client_secret are used: remove client", s.Provider)
		}
		if lp.Issuer == "" {
			return fmt.Errorf("session_auth: login_provider %s is a plain OAuth 2.0 provider: session_auth needs an OpenID provider (issuer)", s.Provider)
		}
		secret, err := secretValue(repl, "login_provider "+lp.Name+": client_secret", lp.ClientSecret)
		if err != nil {
			return err
		}
		cfg = lp.loginConfig(secret, app.Issuer+sessionauth.PathCallback)
		cfg.Scopes = scopes
	}
	cfg.Logger = ctx.Logger()
	provider, err := login.New(cfg)
	if err != nil {
		return fmt.Errorf("session_auth: %w", err)
	}
	var validator *introspect.Validator
	if self {
		validator = app.server.Validator()
	}
	s.h, err = sessionauth.New(sessionauth.Config{Site: cfg.Name + ":" + cfg.ClientID, Provider: provider, Self: self, Resource: s.Resource,
		ForwardToken: s.ForwardToken, IdleTimeout: time.Duration(s.IdleTimeout), MaxSessionsPerSubject: s.MaxSessionsPerSubject},
		app.store, sessionauth.Collaborators{Revocations: app.server.Revocations(), Validator: validator, CookieKey: app.server.Keys().CookieSecret,
			Log: ctx.Logger().With(zap.String("session_auth", cfg.Name+":"+cfg.ClientID))})
	return err
}

// selfConfig is the relying party of this process's issuer, as the
// configuration client s.Client.
func (s *SessionAuth) selfConfig(app *App, repl *caddy.Replacer, scopes []string) (login.Config, error) {
	if s.Client == "" {
		return login.Config{}, errors.New("session_auth: client is required with provider self: the configuration client it signs people in as")
	}
	i := slices.IndexFunc(app.Clients, func(c *ClientConfig) bool { return c.ID == s.Client })
	if i < 0 {
		return login.Config{}, fmt.Errorf("session_auth: there is no client %s in the oauth2 block", s.Client)
	}
	c := app.Clients[i]
	if c.Secret == "" {
		return login.Config{}, fmt.Errorf("session_auth: client %s needs a plain secret (secret {env.NAME}), which the gateway authenticates with; secret_hash only checks one", c.ID)
	}
	secret, err := secretValue(repl, "client "+c.ID+": secret", c.Secret)
	if err != nil {
		return login.Config{}, err
	}
	if !slices.ContainsFunc(c.RedirectURIs, func(u string) bool { return strings.HasSuffix(u, sessionauth.PathCallback) }) {
		return login.Config{}, fmt.Errorf("session_auth: client %s must register the site's callback: redirect_uri https://<site>%s", c.ID, sessionauth.PathCallback)
	}
	allowed := append(strings.Fields(c.Scope), c.Scopes...)
	for _, sc := range scopes {
		if !slices.Contains(allowed, sc) {
			return login.Config{}, fmt.Errorf("session_auth: scope %s is not one client %s may obtain: add it to its scope", sc, c.ID)
		}
	}
	if s.ForwardToken && !slices.Contains(c.GrantTypes, "refresh_token") {
		return login.Config{}, fmt.Errorf("session_auth: forward_token refreshes the access token: give client %s the refresh_token grant", c.ID)
	}
	return login.Config{Name: "self", Issuer: app.Issuer, ClientID: c.ID, ClientSecret: secret, Scopes: scopes, UsernameClaim: "sub",
		Fetcher: outbound.New(outbound.Options{Trusted: true, MaxBytes: 64 << 10})}, nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler: the site's endpoints
// below /.tokengate/, then the session check.
func (s *SessionAuth) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if s.h.ServeHTTP(w, r) {
		return nil
	}
	sess := s.h.Authenticate(w, r)
	if sess == nil {
		return nil
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", sess.Subject)
	repl.Map((*claimPlaceholders)(sess.Claims).replace)
	// The browser's credentials are the gateway's to check, not the
	// upstream's to see.
	sessionauth.RemoveCookie(r)
	r.Header.Del("Authorization")
	if s.ForwardToken {
		r.Header.Set("Authorization", "Bearer "+sess.AccessToken)
	}
	return next.ServeHTTP(w, r)
}

var (
	_ caddyhttp.MiddlewareHandler = (*SessionAuth)(nil)
	_ caddy.Provisioner           = (*SessionAuth)(nil)
)

// parseSessionAuth reads session_auth:
//
//	session_auth {
//		client <client_id>
//		provider self|<login_provider>
//		scope <scope>...
//		resource <url>
//		forward_token
//		idle_timeout <duration>
//		max_sessions_per_subject <n>
//	}
func parseSessionAuth(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(SessionAuth)
	h.Next()
	if h.NextArg() {
		return nil, h.Errf("session_auth takes a block, not arguments: session_auth { client <id> ... }")
	}
	for h.NextBlock(0) {
		sub := h.Val()
		args := h.RemainingArgs()
		one := func(dst *string) error {
			if len(args) != 1 {
				return h.Errf("session_auth: %s takes exactly one value", sub)
			}
			*dst = args[0]
			return nil
		}
		var err error
		switch sub {
		case "client":
			err = one(&s.Client)
		case "provider":
			err = one(&s.Provider)
		case "resource":
			err = one(&s.Resource)
		case "scope":
			if len(args) == 0 {
				return nil, h.Errf("session_auth: scope needs at least one value")
			}
			s.Scope = strings.Join(args, " ")
		case "forward_token":
			if len(args) != 0 {
				return nil, h.Errf("session_auth: forward_token takes no value")
			}
			s.ForwardToken = true
		case "idle_timeout":
			var v string
			if err = one(&v); err == nil {
				d, perr := caddy.ParseDuration(v)
				if perr != nil || d <= 0 {
					return nil, h.Errf("session_auth: idle_timeout takes a duration (e.g. 8h), not %q", v)
				}
				s.IdleTimeout = caddy.Duration(d)
			}
		case "max_sessions_per_subject":
			var v string
			if err = one(&v); err == nil {
				n, perr := strconv.Atoi(v)
				if perr != nil || n <= 0 {
					return nil, h.Errf("session_auth: max_sessions_per_subject takes a number above 0, not %q", v)
				}
				s.MaxSessionsPerSubject = n
			}
		default:
			return nil, unknownOption(h.Dispenser, "session_auth", sub, "client", "provider", "scope", "resource", "forward_token", "idle_timeout", "max_sessions_per_subject")
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}
