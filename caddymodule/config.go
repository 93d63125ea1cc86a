package caddymodule

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/web"
	"github.com/tokengate/tokengate/login"
	"github.com/tokengate/tokengate/policy"
	"github.com/tokengate/tokengate/trust"
	"go.uber.org/zap"
)

// The oauth2 app's configuration blocks (clients, users, registration,
// login providers, trusted issuers, resources) as JSON, and their
// conversion into the configuration of authserver, login and trust, which
// hold the rules.

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
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// person back (post_logout_redirect_uri, matched exactly).
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// BackchannelLogoutURI is told (a POSTed logout token) when a browser
	// session in which the client got an ID token ends: https, or http to
	// loopback. Default: not told.
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// IDTokenAlg signs its ID tokens: RS256 (default), ES256 or EdDSA.
	// The key ring then holds a key of it too.
	IDTokenAlg string `json:"id_token_alg,omitempty"`
	// Exchange are the resources it may exchange subject tokens into
	// (grant token_exchange, RFC 8693), each with the most scope there.
	Exchange []ExchangeConfig `json:"exchange,omitempty"`
	// ExchangeFrom are the issuers whose subject tokens it may present:
	// self (default).
	ExchangeFrom []string `json:"exchange_from,omitempty"`
	// Federated authenticates it with a workload token of another issuer
	// (a CI job's, a Kubernetes service account's) instead of a secret.
	Federated *FederatedConfig `json:"federated,omitempty"`
	// RateLimit ("<n>/<window>") is its own figure at every bearer_auth
	// route with a rate_limit, in place of the route's.
	RateLimit string `json:"rate_limit,omitempty"`
	// TokenRateLimit ("<n>/<window>") limits its requests to the token
	// endpoint, counted in the store across instances (one more store
	// round trip per token request of that client): over it, 429.
	TokenRateLimit string `json:"token_rate_limit,omitempty"`
}

// FederatedConfig is a client's workload identity.
type FederatedConfig struct {
	// Issuer signs the workload's tokens; its keys come from its OpenID
	// discovery document.
	Issuer string `json:"issuer"`
	// Subject is the workload token's sub, exactly.
	Subject string `json:"subject"`
	// Audience must be among the token's aud. Default: the issuer.
	Audience string `json:"audience,omitempty"`
}

// ExchangeConfig is one exchange line.
type ExchangeConfig struct {
	Resource string `json:"resource"`
	// Scope lists, space-separated, the most scope a token for it may
	// carry.
	Scope string `json:"scope"`
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
	// IDJAG accepts its Identity Assertion JWT Authorization Grants
	// (enterprise-managed authorization) at the token endpoint.
	IDJAG bool `json:"id_jag,omitempty"`
}

// AllowClaim is one allow_claim line.
type AllowClaim struct {
	Claim  string   `json:"claim"`
	Values []string `json:"values"`
}

// loginConfig is lp as login's configuration, with its secret resolved
// and its redirect URI.
func (lp *LoginProviderConfig) loginConfig(secret, redirectURI string) login.Config {
	cfg := login.Config{Name: lp.Name, DisplayName: lp.DisplayName, Issuer: lp.Issuer, AuthorizationURL: lp.AuthorizationURL,
		TokenURL: lp.TokenURL, UserinfoURL: lp.UserinfoURL, ClientID: lp.ClientID, ClientSecret: secret, Scopes: strings.Fields(lp.Scope),
		UsernameClaim: lp.UsernameClaim, IDClaim: lp.IDClaim, AllowDomains: lp.AllowDomains, RedirectURI: redirectURI, IDJAG: lp.IDJAG}
	for _, c := range lp.AllowClaims {
		cfg.AllowClaims = append(cfg.AllowClaims, login.ClaimRule{Claim: c.Claim, Values: c.Values})
	}
	return cfg
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
		cfg := lp.loginConfig(secret, web.ProviderRedirectURI(a.Issuer, lp.Name))
		cfg.Logger = a.logger.With(zap.String("login_provider", lp.Name))
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

// clients converts the configured clients, resolving {env.*} placeholders
// in secrets when repl is given (at adapt time they stay unresolved).
// authserver validates them.
func (a *App) clients(repl *caddy.Replacer) ([]*client.Client, error) {
	var out []*client.Client
	for _, cc := range a.Clients {
		c := &client.Client{ID: cc.ID, Name: cc.Name, Website: cc.Website, RedirectURIs: cc.RedirectURIs,
			Scopes: append(strings.Fields(cc.Scope), cc.Scopes...), Audience: cc.Audience, SkipConsent: cc.SkipConsent, ResourceServer: cc.ResourceServer,
			RequireDPoP: cc.RequireDPoP, PostLogoutRedirectURIs: cc.PostLogoutRedirectURIs, BackchannelLogoutURI: cc.BackchannelLogoutURI,
			IDTokenAlg: cc.IDTokenAlg, ExchangeFrom: cc.ExchangeFrom}
		if cc.TokenRateLimit != "" {
			l, err := policy.ParseLimit(cc.TokenRateLimit)
			if err != nil {
				return nil, fmt.Errorf("client %s: token_rate_limit: %w", cc.ID, err)
			}
			c.TokenRate = &store.TokenRate{N: l.N, Period: l.Window}
		}
		if f := cc.Federated; f != nil {
			c.Federated = &client.Federation{Issuer: f.Issuer, Subject: f.Subject, Audience: f.Audience}
		}
		for _, x := range cc.Exchange {
			c.Exchange = append(c.Exchange, client.ExchangeTarget{Resource: x.Resource, Scopes: strings.Fields(x.Scope)})
		}
		if c.Name == "" {
			c.Name = cc.ID
		}
		for _, g := range cc.GrantTypes {
			gt, err := client.GrantType(g)
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
				return nil, &client.Error{Client: cc.ID, Field: "jwks_file", Err: fmt.Errorf("reading the key set: %w", err)}
			}
			c.JWKS = raw
		}
		switch {
		case cc.SecretHash != "" && cc.Secret != "":
			return nil, &client.Error{Client: cc.ID, Field: "secret", Err: errors.New("give secret_hash or secret, not both")}
		case cc.SecretHash != "":
			if !client.IsBcryptHash(cc.SecretHash) {
				return nil, &client.Error{Client: cc.ID, Field: "secret_hash", Err: errors.New("secret_hash is not a bcrypt hash: make one with `tokengate hash-password`")}
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
			c.SecretHash = client.HashSecretSHA256(secret)
		case cc.JWKSFile == "" && cc.JWKSURI == "" && cc.Federated == nil:
			c.Public = true
		}
		out = append(out, c)
	}
	return out, nil
}

// settings is the authserver configuration the app's own settings make,
// with clients; Provision adds what comes from Caddy (the store, logger,
// metrics, login providers, registration).
func (a *App) settings(clients []*client.Client) authserver.Config {
	return authserver.Config{
		Issuer:          a.Issuer,
		DPoPNonce:       a.DPoPNonce,
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
		RevocationMaxStaleness: time.Duration(a.RevocationMaxStaleness),
		Clients:                clients,
		Users:                  a.users(),
		TemplateDir:            a.Templates,
		ScopeDescriptions:      a.ScopeDescriptions,
		Resources:              a.resources(),
	}
}

func (a *App) users() []*web.User {
	var out []*web.User
	for _, u := range a.Users {
		out = append(out, &web.User{Username: u.Username, PasswordHash: u.PasswordHash, Name: u.Name, Email: u.Email})
	}
	return out
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
