// Package web is what a person does in a browser: authorization (RFC 6749
// §4.1), signing in (with a password or through a login provider),
// consent, the device page (RFC 8628 §3.3), the account page, sessions,
// and the pages themselves. It hands the token side grants in the store:
// authorization codes, approved device codes, grant records.
package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/token"
)

// Paths of the pages, below the issuer's path.
const (
	PathAuthorize = "/oauth/authorize"
	PathLogin     = "/login"
	PathConsent   = "/consent"
	PathStyle     = "/oauth/assets/style.css"
	PathAccount   = "/account"
	PathLogout    = "/logout"
	// PathEndSession is OpenID Connect RP-Initiated Logout's endpoint.
	PathEndSession = "/oauth/logout"
	PathDevice     = "/device"
	PathDeviceQR   = "/device/qr"
	// PathLoginProviders<name> starts a sign-in through a login provider;
	// <name>/callback is its redirect URI.
	PathLoginProviders = "/login/"
)

// Config is the pages' part of the server's configuration, with its
// defaults applied.
type Config struct {
	// Issuer is the authorization server's issuer URL; the pages live
	// below its path.
	Issuer string
	// CodeTTL is an authorization code's life; AccessTokenTTL and
	// GrantMaxAge bound the grant records made at approval.
	CodeTTL, AccessTokenTTL, GrantMaxAge time.Duration
	// DeviceFailuresPerIP limits wrong user codes on the device page in 15
	// minutes, per client address (IPv6: per /64).
	DeviceFailuresPerIP int64
	// TemplateDir holds operator templates replacing the built-in pages.
	TemplateDir string
	// ScopeDescriptions say what each scope lets an application do, in
	// words for the consent page; a scope without one shows its name.
	ScopeDescriptions map[string]string
	// UpstreamUser returns the user an earlier handler authenticated, or
	// "". Such a user skips the sign-in page.
	UpstreamUser func(*http.Request) string
}

// Stores are the store roles the pages use.
type Stores interface {
	store.CodeStore    // authorization codes, with their grants
	store.DeviceStore  // device codes people approve or deny
	store.GrantStore   // the grants of approved devices
	store.CounterStore // guessing limits
}

// Tokens is what the pages ask of the token side.
type Tokens interface {
	// LiveGrants are q's grants that still issue tokens: a person's
	// consent, the account page's applications.
	LiveGrants(ctx context.Context, q store.GrantQuery) ([]*store.Grant, error)
	// RevokeGrant revokes a grant (the account page's "remove").
	RevokeGrant(ctx context.Context, id, by string) (*store.Grant, error)
	// Resources are the protected resources tokens may be asked for.
	Resources() *token.Resources
	// ReadIDTokenHint reads an ID token the issuer signed (a logout's
	// id_token_hint), expired or not.
	ReadIDTokenHint(raw string) (*token.IDTokenHint, error)
}

// Sessions ends browser sessions on every instance, telling the clients
// that got ID tokens in them.
type Sessions interface {
	// Ended says whether a session someone signed in to was ended since.
	Ended(sid, subject string, authTime time.Time) bool
	// EndSession ends it; by says who, for the audit line.
	EndSession(ctx context.Context, sid, subject, by string) error
}

// Metrics counts what the pages see.
type Metrics interface {
	// LoginProviderError counts a failed sign-in through that provider,
	// by login.Kind (unavailable, denied, refused, invalid).
	LoginProviderError(provider, kind string)
}

// Collaborators are what the pages work with besides the store.
type Collaborators struct {
	// Keys hold the cookie secret sessions and signed cookies are made
	// with.
	Keys *keys.Ring
	// Clients finds the applications people authorize.
	Clients *client.Registry
	Tokens  Tokens
	// People are who may sign in.
	People *People
	// Sessions ends sessions everywhere.
	Sessions Sessions
	// Address is a request's address as limits count it (see
	// oauth.AddressKey).
	Address  func(*http.Request) string
	Audit    oauth.Audit
	Failures oauth.Failures
	Metrics  Metrics
	Log      *zap.Logger
}

// Service serves the pages: ServeAuthorize, ServeLogin, ServeConsent,
// ServeStyle, ServeAccount, ServeLogout, ServeDevice, ServeDeviceQR and
// ServeLoginProvider.
type Service struct {
	cfg      Config
	issuer   *url.URL
	store    Stores
	keys     *keys.Ring
	clients  *client.Registry
	tokens   Tokens
	people   *People
	sessions Sessions
	pages    *pages
	address  func(*http.Request) string
	audit    oauth.Audit
	failures oauth.Failures
	metrics  Metrics
	log      *zap.Logger
}

// New loads the pages (the built-in ones, or cfg.TemplateDir's).
func New(cfg Config, st Stores, c Collaborators) (*Service, error) {
	iss, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	p, err := loadPages(cfg.TemplateDir)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, issuer: iss, store: st, keys: c.Keys, clients: c.Clients, tokens: c.Tokens, people: c.People, sessions: c.Sessions, pages: p,
		address: c.Address, audit: c.Audit, failures: c.Failures, metrics: c.Metrics, log: c.Log}, nil
}

// HasProviders says whether people may sign in through login providers
// (PathLoginProviders is then served).
func (s *Service) HasProviders() bool { return len(s.people.list) > 0 }

func (s *Service) endpointURL(path string) string { return s.cfg.Issuer + path }
