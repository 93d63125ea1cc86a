// Package sessionauth puts a web app (server-rendered, or a single-page app
// and the API it calls) behind a sign-in, as the Backend-for-Frontend of the
// OAuth 2.0 for Browser-Based Applications BCP: the browser holds only an
// opaque session cookie; the gateway signs the person in at an OpenID
// provider (tokengate's own issuer, or a login provider), keeps the tokens
// in the store, refreshes them ahead of expiry, and hands the upstream the
// person (and, with ForwardToken, a bearer token). It is plain net/http:
// the caddymodule's session_auth calls Authenticate and the endpoints
// below /.tokengate/.
package sessionauth

// The OAuth 2.0 for Browser-Based Applications BCP §6.1 (BFF): the session,
// the callback, and the site's own endpoints.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/login"
)

// Paths the handler serves itself, on every host of the site.
const (
	PathCallback          = "/.tokengate/callback"
	PathLogin             = "/.tokengate/login"
	PathLogout            = "/.tokengate/logout"
	PathSession           = "/.tokengate/session"
	PathBackchannelLogout = "/.tokengate/backchannel-logout"
)

// Defaults of Config.
const (
	DefaultIdleTimeout           = 8 * time.Hour
	DefaultMaxSessionsPerSubject = 50
	// DefaultMaxAge bounds a session when the provider says nothing
	// shorter: it is the grant's absolute life (grant_max_age) for
	// tokengate's own issuer.
	DefaultMaxAge = 90 * 24 * time.Hour
)

// Config is one session_auth.
type Config struct {
	// Site names the session_auth in the store (its sessions are its own).
	Site string
	// Provider signs people in; Self says it is this process's issuer
	// (subjects are then the ID token's sub; a login provider's people are
	// <name>:<username>, as on the sign-in page).
	Provider *login.Provider
	Self     bool
	// Resource is the RFC 8707 resource the access token is for ("" for
	// none).
	Resource string
	// ForwardToken sends the upstream the access token as a bearer token.
	ForwardToken bool
	// IdleTimeout ends a session unused this long; MaxAge ends it anyway
	// (the provider's refresh token usually ends first).
	IdleTimeout, MaxAge time.Duration
	// MaxSessionsPerSubject bounds a person's sessions; the oldest end
	// first.
	MaxSessionsPerSubject int
}

// Stores are the store roles sessions use.
type Stores interface {
	store.EdgeSessionStore // the sessions
	store.RevocationStore  // ended sessions, for every instance
	store.CounterStore     // logout tokens used once
}

// Collaborators are what sessions work with besides the store.
type Collaborators struct {
	// Revocations is the in-memory revocation state: a session ended on
	// any instance (or its person revoked) is refused without a store
	// round trip.
	Revocations *introspect.Revocations
	// Validator reads the access tokens of tokengate's own issuer at
	// sign-in, so that a session knows its grant, whose revocation then
	// ends it here at once; nil for another provider.
	Validator *introspect.Validator
	// CookieKey is the key the login state's cookie is MACed with (the
	// issuer's cookie secret, the same on every instance).
	CookieKey func() []byte
	Log       *zap.Logger
}

// Handler is one session_auth.
type Handler struct {
	cfg         Config
	store       Stores
	revocations *introspect.Revocations
	validator   *introspect.Validator
	cookieKey   func() []byte
	log         *zap.Logger
	// cache holds sessions read from the store, so that a request with a
	// fresh one costs no round trip; refreshes makes one refresh per
	// session at a time in this process.
	cache     sessionCache
	refreshes singleflight.Group
}

// New is a session_auth over st.
func New(cfg Config, st Stores, c Collaborators) (*Handler, error) {
	if cfg.Provider == nil {
		return nil, errors.New("session_auth: no provider")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxSessionsPerSubject <= 0 {
		cfg.MaxSessionsPerSubject = DefaultMaxSessionsPerSubject
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	return &Handler{cfg: cfg, store: st, revocations: c.Revocations, validator: c.Validator, cookieKey: c.CookieKey, log: c.Log}, nil
}

// Session is a signed-in person at the site, as a request sees them.
type Session struct {
	Subject string
	// Claims are the ID token's, for {http.auth.user.claims.<name>}.
	Claims *introspect.Claims
	// AccessToken is the provider's, for the upstream (ForwardToken).
	AccessToken string
}

// newSessionID draws a session's 256-bit random ID (the cookie's value)
// and the hash the store knows it by.
// The store keys a session by the cookie's hash: the cookie's value is a
// bearer credential, never stored.
func newSessionID() (cookie, id string) {
	cookie = oauth.RandomToken(32)
	return cookie, oauth.HashToken(cookie)
}

// revocationValue is how an ended session is named in the revocation
// state, apart from the provider's own sids.
func revocationValue(id string) string { return "edge:" + id }

// sessionCache holds live sessions by ID, each for a short while: long
// enough that a page's requests pay one store read, short enough that a
// session changed elsewhere (refreshed, touched) is read again soon. What
// ends a session everywhere is the revocation state, not this cache.
type sessionCache struct {
	mu sync.Mutex
	m  map[string]cachedSession
}

type cachedSession struct {
	s     *store.EdgeSession
	c     *introspect.Claims
	until time.Time
}

const (
	cacheFor  = 30 * time.Second
	cacheSize = 10_000
	// touchEvery limits the writes that keep a session from going idle.
	touchEvery = time.Minute
)

func (c *sessionCache) get(id string, now time.Time) (cachedSession, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || now.After(e.until) {
		return cachedSession{}, false
	}
	return e, true
}

func (c *sessionCache) put(e cachedSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= cacheSize {
		c.m = map[string]cachedSession{}
	}
	c.m[e.s.ID] = e
}

func (c *sessionCache) drop(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// cookieName is the session cookie's name: __Host- on https, so that no
// other host or path can set it.
func cookieName(r *http.Request) string {
	if isHTTPS(r) {
		return "__Host-tg_session"
	}
	return "tg_session"
}

func isHTTPS(r *http.Request) bool { return r.TLS != nil }

// origin is the site as the browser sees it.
func origin(r *http.Request) string {
	scheme := "http"
	if isHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Authenticate finds the request's session: the person and, with
// ForwardToken, a fresh access token. Without one, it answers the request
// (a navigation goes to sign in, anything else gets 401 with a login_url)
// and returns nil. The caller forwards the request without the session's
// cookie (RemoveCookie).
func (h *Handler) Authenticate(w http.ResponseWriter, r *http.Request) *Session {
	s, claims, err := h.current(r)
	if err != nil {
		h.failed(w, r, err)
		return nil
	}
	if s == nil {
		h.loginRequired(w, r)
		return nil
	}
	if unsafeMethod(r.Method) && !sameOrigin(r) {
		oauth.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "cross_site_request",
			"error_description": "this request changes something and did not come from the site itself"})
		return nil
	}
	if h.cfg.ForwardToken && h.refreshDue(s, time.Now()) {
		next, err := h.refresh(r.Context(), s)
		if err != nil {
			h.failed(w, r, err)
			return nil
		}
		s = next
	}
	return &Session{Subject: s.Subject, Claims: claims, AccessToken: s.AccessToken}
}

// current is the request's live session, from the cache or the store:
// nil when there is none, it ended (anywhere), or went idle; an error
// when the store cannot say (not a reason to sign anyone in again).
func (h *Handler) current(r *http.Request) (*store.EdgeSession, *introspect.Claims, error) {
	c, err := r.Cookie(cookieName(r))
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, nil, nil
	}
	id := oauth.HashToken(c.Value)
	now := time.Now()
	e, ok := h.cache.get(id, now)
	if !ok {
		s, err := h.store.EdgeSession(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading a session: %w", err)
		}
		claims, err := introspect.NewClaims(s.Claims)
		if err != nil {
			return nil, nil, nil
		}
		e = cachedSession{s: s, c: claims, until: now.Add(cacheFor)}
		h.cache.put(e)
	}
	s := e.s
	if s.Site != h.cfg.Site || !now.Before(s.ExpiresAt) || h.ended(s) {
		h.cache.drop(id)
		return nil, nil, nil
	}
	if now.Add(h.cfg.IdleTimeout).Sub(s.ExpiresAt) > touchEvery {
		h.touch(r.Context(), s, now)
	}
	return s, e.c, nil
}

// ended says whether s was ended since it was read: on any instance (a
// logout, a back-channel logout, the person's revocation), or, for
// tokengate's own issuer, by the revocation of its grant or client (its
// access token expired or not): all in memory.
func (h *Handler) ended(s *store.EdgeSession) bool {
	if h.revocations.IsSessionEnded(revocationValue(s.ID), s.Subject, s.CreatedAt) {
		return true
	}
	return s.GrantID != "" && h.revocations.IsRefreshRevoked(s.GrantID, s.ClientID, s.Subject, s.CreatedAt)
}

// touch moves the idle end of s, at most every touchEvery: a lost race
// with a refresh only leaves the idle end where the refresh put it.
func (h *Handler) touch(ctx context.Context, s *store.EdgeSession, now time.Time) {
	next := *s
	next.ExpiresAt = minTime(now.Add(h.cfg.IdleTimeout), s.EndsBy)
	if err := h.store.UpdateEdgeSession(ctx, &next, s.Version); err == nil {
		next.Version = s.Version + 1
		h.cache.drop(s.ID)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// unsafeMethod says whether a method changes something (RFC 9110 §9.2.1).
func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions && m != http.MethodTrace
}

// sameOrigin says whether a request came from the site itself: the
// browser's Sec-Fetch-Site, else its Origin.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	return r.Header.Get("Origin") == origin(r)
}

// isNavigation says whether a request is a person's page load, which
// can be sent to sign in, rather than a script's.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// RemoveCookie drops the session's cookie from what the upstream sees:
// it is the person's credential, not the app's.
func RemoveCookie(r *http.Request) {
	name := cookieName(r)
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		if c.Name != name && c.Name != loginCookieName(r) {
			r.AddCookie(c)
		}
	}
}
