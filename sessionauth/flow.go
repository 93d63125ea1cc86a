package sessionauth

// OpenID Connect Core §3.1 as the BFF's relying party (through login's one
// relying-party code): sending the person to sign in, the callback that
// makes the session, refreshing its tokens ahead of expiry, and the site's
// endpoints (session, logout, back-channel logout).

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/login"
)

// loginTTL bounds how long a person may take at the provider.
const loginTTL = 10 * time.Minute

// loginState is one sign-in's state, nonce, PKCE verifier and where the
// person goes afterwards: in a short-lived cookie MACed with the issuer's
// cookie secret, never in the URL.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Expires  int64  `json:"e"`
}

func loginCookieName(r *http.Request) string {
	if isHTTPS(r) {
		return "__Host-tg_login"
	}
	return "tg_login"
}

// ServeHTTP serves the site's own endpoints below /.tokengate/; false for
// any other path, which the caller passes to Authenticate.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case PathLogin:
		h.startLogin(w, r, r.URL.Query().Get("return_to"))
	case PathCallback:
		h.callback(w, r)
	case PathLogout:
		h.logout(w, r)
	case PathSession:
		h.sessionInfo(w, r)
	case PathBackchannelLogout:
		h.backchannelLogout(w, r)
	default:
		return false
	}
	return true
}

// loginRequired answers a request without a session: a navigation goes to
// sign in and comes back to what it asked for; anything else gets 401
// with the URL a script can send the page to.
func (h *Handler) loginRequired(w http.ResponseWriter, r *http.Request) {
	if isNavigation(r) {
		h.startLogin(w, r, r.URL.RequestURI())
		return
	}
	oauth.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "login_required",
		"error_description": "sign in first: send the page to login_url",
		"login_url":         origin(r) + PathLogin + "?" + url.Values{"return_to": {r.URL.RequestURI()}}.Encode()})
}

// sameSitePath keeps a return URL on the site: a path, not a URL
// elsewhere ("//evil.example" and "/\evil.example" included).
func sameSitePath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

// startLogin sends the person to the provider with a fresh state, nonce
// and PKCE challenge kept in the login cookie.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, returnTo string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		oauth.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "open this URL in the browser"})
		return
	}
	if err := h.cfg.Provider.Available(r.Context()); err != nil {
		h.failed(w, r, err)
		return
	}
	ls := loginState{State: oauth.RandomToken(16), Nonce: oauth.RandomToken(16), Verifier: oauth.RandomToken(32), ReturnTo: sameSitePath(returnTo), Expires: time.Now().Add(loginTTL).Unix()}
	target, err := h.cfg.Provider.AuthCodeURLTo(r.Context(), origin(r)+PathCallback, ls.State, ls.Nonce, oauth.S256Challenge(ls.Verifier))
	if err == nil && h.cfg.Resource != "" {
		target += "&" + url.Values{"resource": {h.cfg.Resource}}.Encode()
	}
	if err != nil {
		h.failed(w, r, err)
		return
	}
	if !h.writeLoginCookie(w, r, &ls) {
		h.failed(w, r, errors.New("the issuer's cookie secret is not loaded"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// callback takes the person back from the provider: the state must be
// this browser's sign-in's, the code is exchanged with its verifier and
// the ID token checked (login); then the session is made.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	ls, ok := h.readLoginCookie(r)
	http.SetCookie(w, &http.Cookie{Name: loginCookieName(r), Path: "/", MaxAge: -1, HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	if !ok || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(ls.State)) != 1 {
		writePage(w, http.StatusBadRequest, "This sign-in expired", "It did not start here, or took too long.", origin(r)+"/")
		return
	}
	tokens, err := h.cfg.Provider.Exchange(r.Context(), origin(r)+PathCallback, q, ls.Nonce, ls.Verifier)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	subject, err := h.subject(tokens.Claims)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	claims, _ := json.Marshal(tokens.Claims)
	now := time.Now().UTC()
	cookie, id := newSessionID()
	sid, _ := tokens.Claims["sid"].(string)
	s := &store.EdgeSession{ID: id, Site: h.cfg.Site, Subject: subject, SID: sid, Claims: claims, IDToken: tokens.IDToken,
		AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, CreatedAt: now, EndsBy: now.Add(h.cfg.MaxAge)}
	s.ExpiresAt = minTime(now.Add(h.cfg.IdleTimeout), s.EndsBy)
	if h.validator != nil {
		// tokengate's own access token: the grant it names is the
		// session's, whose revocation (anywhere) ends it.
		if c, err := h.validator.Validate(tokens.AccessToken, ""); err == nil {
			s.GrantID, s.ClientID = c.GrantID, c.ClientID
		}
	}
	if tokens.ExpiresIn > 0 {
		s.AccessIssuedAt, s.AccessExpiresAt = now, now.Add(tokens.ExpiresIn)
	}
	ended, err := h.store.CreateEdgeSession(r.Context(), s, h.cfg.MaxSessionsPerSubject)
	if err != nil {
		h.failed(w, r, fmt.Errorf("storing the session: %w", err))
		return
	}
	for _, old := range ended {
		h.endEverywhere(r.Context(), old, "more sessions than max_sessions_per_subject")
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: cookie, Path: "/", HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteLaxMode,
		MaxAge: int(time.Until(s.EndsBy).Seconds())})
	h.log.Info("session_auth: signed in", zap.String("site", h.cfg.Site), zap.String("sub", subject))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, ls.ReturnTo, http.StatusSeeOther)
}

// subject is the person's subject here: the ID token's sub for
// tokengate's own issuer, <provider>:<username> for a login provider's
// people (the same as on tokengate's sign-in page), admitted by its rules.
func (h *Handler) subject(claims map[string]any) (string, error) {
	if h.cfg.Self {
		sub, _ := claims["sub"].(string)
		if sub == "" {
			return "", &login.Error{Kind: login.Invalid, Err: errors.New("the ID token has no sub")}
		}
		return sub, nil
	}
	id, err := h.cfg.Provider.Admit(claims)
	if err != nil {
		return "", err
	}
	return h.cfg.Provider.Name() + ":" + id.Username, nil
}

// refreshDue says whether s's access token should be refreshed: less than
// a quarter of its life, or 60 s, is left, whichever is less.
func (h *Handler) refreshDue(s *store.EdgeSession, now time.Time) bool {
	if s.AccessExpiresAt.IsZero() || s.RefreshToken == "" {
		return false
	}
	life := max(0, s.AccessExpiresAt.Sub(s.AccessIssuedAt))
	return s.AccessExpiresAt.Sub(now) < min(life/4, time.Minute)
}

// refresh refreshes s's tokens, once for every request of this process
// that finds them due at once (singleflight), and once across instances:
// a counter in the store is the lock for the session's version, and an
// instance that does not hold it waits for the one that does. (Two
// refreshes of one token would be a reuse to the provider.)
func (h *Handler) refresh(ctx context.Context, s *store.EdgeSession) (*store.EdgeSession, error) {
	v, err, _ := h.refreshes.Do(s.ID, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		cur, err := h.store.EdgeSession(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		if !h.refreshDue(cur, time.Now()) {
			return cur, nil // another instance did it
		}
		n, _, err := h.store.Incr(ctx, "session_refresh:"+cur.ID+":"+cur.RefreshToken[:min(len(cur.RefreshToken), 16)], refreshLockFor)
		if err != nil {
			return nil, err
		}
		if n > 1 {
			return h.awaitRefresh(ctx, cur)
		}
		var claims map[string]any
		_ = json.Unmarshal(cur.Claims, &claims)
		t, err := h.cfg.Provider.Refresh(ctx, cur.RefreshToken, claims)
		if err != nil {
			return nil, err
		}
		return h.storeRefreshed(ctx, cur, t)
	})
	if err != nil {
		return nil, err
	}
	h.cache.drop(s.ID)
	return v.(*store.EdgeSession), nil
}

// refreshLockFor is how long a refresh holds its session's lock: a
// provider slower than this is taken for gone, and another instance may
// try.
const refreshLockFor = 15 * time.Second

// awaitRefresh waits for the instance refreshing cur to store its answer;
// if none comes, cur's token serves what is left of its life.
func (h *Handler) awaitRefresh(ctx context.Context, cur *store.EdgeSession) (*store.EdgeSession, error) {
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		s, err := h.store.EdgeSession(ctx, cur.ID)
		if err != nil {
			return nil, err
		}
		if s.RefreshToken != cur.RefreshToken {
			return s, nil
		}
	}
	return cur, nil
}

// storeRefreshed stores t as base's tokens; a touch that moved the
// record meanwhile is merged, not lost (the new refresh token must be
// kept: the old one is spent).
func (h *Handler) storeRefreshed(ctx context.Context, base *store.EdgeSession, t *login.Tokens) (*store.EdgeSession, error) {
	for range 5 {
		next := *base
		next.AccessToken, next.RefreshToken = t.AccessToken, t.RefreshToken
		if t.IDToken != "" {
			next.IDToken = t.IDToken
			next.Claims, _ = json.Marshal(t.Claims)
		}
		next.AccessIssuedAt, next.AccessExpiresAt = time.Time{}, time.Time{}
		if t.ExpiresIn > 0 {
			now := time.Now().UTC()
			next.AccessIssuedAt, next.AccessExpiresAt = now, now.Add(t.ExpiresIn)
		}
		err := h.store.UpdateEdgeSession(ctx, &next, base.Version)
		if err == nil {
			next.Version = base.Version + 1
			return &next, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
		if base, err = h.store.EdgeSession(ctx, base.ID); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("storing refreshed tokens: too many concurrent updates")
}

// sessionInfo is GET /.tokengate/session: who is signed in, for scripts.
func (h *Handler) sessionInfo(w http.ResponseWriter, r *http.Request) {
	s, _, err := h.current(r)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	if s == nil {
		oauth.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "login_required",
			"login_url": origin(r) + PathLogin + "?" + url.Values{"return_to": {"/"}}.Encode()})
		return
	}
	oauth.WriteJSON(w, http.StatusOK, map[string]any{"sub": s.Subject, "expires_at": s.ExpiresAt.Unix()})
}

// logout is POST /.tokengate/logout from the site itself: the session ends
// everywhere, and the person signs out at the provider too when it has an
// end_session_endpoint (coming back to the site's root).
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		oauth.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "sign out with a POST from the site"})
		return
	}
	if !sameOrigin(r) {
		oauth.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "cross_site_request", "error_description": "a sign-out must come from the site itself"})
		return
	}
	back := origin(r) + "/"
	target := back
	if s, _, _ := h.current(r); s != nil {
		h.endEverywhere(r.Context(), s.ID, "the person signed out")
		if s.RefreshToken != "" {
			// The grant goes with the session (its access tokens, at
			// tokengate's issuer, with it); the person does not wait.
			go func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
				defer cancel()
				if err := h.cfg.Provider.Revoke(ctx, s.RefreshToken, "refresh_token"); err != nil {
					h.log.Warn("session_auth: revoking a signed-out session's grant", zap.Error(err))
				}
			}()
		}
		if u, ok := h.cfg.Provider.EndSessionURL(r.Context(), s.IDToken, back); ok {
			target = u
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(r), Path: "/", MaxAge: -1, HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// backchannelLogout is POST /.tokengate/backchannel-logout: the
// provider's logout token (Back-Channel Logout §2.5-§2.8), checked and
// used once, ends the sessions it names.
func (h *Handler) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		oauth.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	lt, err := h.cfg.Provider.VerifyLogout(r.Context(), r.PostFormValue("logout_token"))
	if err != nil {
		h.log.Info("session_auth: a logout token refused", zap.String("site", h.cfg.Site), zap.Error(err))
		oauth.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "the logout token is not valid"})
		return
	}
	// Used once (§2.6: a replayed one is refused), on every instance.
	n, _, err := h.store.Incr(r.Context(), "logout_token:"+oauth.HashToken(lt.ID), time.Until(lt.ExpiresAt)+time.Minute)
	if err != nil {
		h.log.Error("session_auth: recording a logout token's use", zap.Error(err))
		oauth.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	if n > 1 {
		h.log.Info("session_auth: a logout token replayed", zap.String("site", h.cfg.Site))
		oauth.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "the logout token was used before"})
		return
	}
	sub := ""
	if lt.SID == "" {
		if sub, err = h.subjectOfLogout(lt); err != nil {
			h.log.Info("session_auth: a logout token refused", zap.String("site", h.cfg.Site), zap.Error(err))
			oauth.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
			return
		}
	}
	sessions, err := h.store.EdgeSessions(r.Context(), h.cfg.Site, sub, lt.SID)
	if err != nil {
		h.log.Error("session_auth: finding a logout token's sessions", zap.Error(err))
		oauth.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	for _, s := range sessions {
		// A token naming both sid and sub must agree on both.
		if lt.SID != "" && lt.Subject != "" && !h.subjectMatches(s, lt.Subject) {
			continue
		}
		h.endEverywhere(r.Context(), s.ID, "back-channel logout")
	}
	w.WriteHeader(http.StatusOK)
}

// subjectOfLogout is the subject here of a logout token naming only its
// person.
func (h *Handler) subjectOfLogout(lt *login.LogoutToken) (string, error) {
	if h.cfg.Self {
		return lt.Subject, nil
	}
	id, err := h.cfg.Provider.Admit(map[string]any{"sub": lt.Subject})
	if err != nil {
		return "", errors.New("the logout token names nobody this site knows")
	}
	return h.cfg.Provider.Name() + ":" + id.Username, nil
}

// subjectMatches says whether s is of the provider's person sub (a
// logout token naming both sid and sub must agree on both).
func (h *Handler) subjectMatches(s *store.EdgeSession, sub string) bool {
	var c struct {
		Sub string `json:"sub"`
	}
	return json.Unmarshal(s.Claims, &c) == nil && c.Sub == sub
}

// endEverywhere ends the session id: gone from the store, and named in
// the revocation state so that every instance holding it refuses it
// within the revocation promise.
func (h *Handler) endEverywhere(ctx context.Context, id, why string) {
	now := time.Now().UTC()
	rv := store.Revocation{Kind: store.RevokeSession, Value: revocationValue(id), At: now, ExpiresAt: now.Add(h.cfg.IdleTimeout)}
	if err := h.store.Revoke(ctx, rv); err != nil {
		h.log.Error("session_auth: recording a session's end", zap.Error(err))
	}
	h.revocations.Apply(rv)
	h.cache.drop(id)
	if err := h.store.DeleteEdgeSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.log.Warn("session_auth: deleting an ended session", zap.Error(err))
	}
	h.log.Info("session_auth: session ended", zap.String("site", h.cfg.Site), zap.String("why", why))
}

// failed answers a request that could not be served because the provider
// failed or refused: a page for a navigation, JSON for a script; never a
// 500 for the provider's trouble.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, err error) {
	var le *login.Error
	status, msg := http.StatusBadGateway, "signing in did not work: try again"
	if errors.As(err, &le) {
		switch le.Kind {
		case login.Unavailable:
			status, msg = http.StatusServiceUnavailable, "the sign-in provider cannot be reached right now"
		case login.Denied:
			status, msg = http.StatusForbidden, "the sign-in was declined"
		case login.Refused:
			status, msg = http.StatusForbidden, "your account is not allowed here"
		}
	} else {
		// The store, or the issuer's keys: this side's trouble.
		status, msg = http.StatusServiceUnavailable, "sessions cannot be checked right now: try again shortly"
	}
	h.log.Warn("session_auth: sign-in failed", zap.String("site", h.cfg.Site), zap.Error(err))
	if isNavigation(r) || r.URL.Path == PathCallback {
		writePage(w, status, "Signing in did not work", upperFirst(msg)+".", origin(r)+"/")
		return
	}
	oauth.WriteJSON(w, status, map[string]string{"error": "temporarily_unavailable", "error_description": msg})
}

func upperFirst(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// writeLoginCookie sets the login cookie to ls, MACed; false without a
// key.
func (h *Handler) writeLoginCookie(w http.ResponseWriter, r *http.Request, ls *loginState) bool {
	key := h.cookieKey()
	if len(key) < 32 {
		return false
	}
	raw, _ := json.Marshal(ls)
	payload := base64.RawURLEncoding.EncodeToString(raw)
	http.SetCookie(w, &http.Cookie{Name: loginCookieName(r), Value: payload + "." + mac(key, payload), Path: "/", MaxAge: int(loginTTL.Seconds()),
		HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteLaxMode})
	return true
}

// readLoginCookie is the browser's sign-in, if its MAC holds and it is
// not over.
func (h *Handler) readLoginCookie(r *http.Request) (*loginState, bool) {
	c, err := r.Cookie(loginCookieName(r))
	key := h.cookieKey()
	if err != nil || len(key) < 32 {
		return nil, false
	}
	payload, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(mac(key, payload))) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	ls := new(loginState)
	if err != nil || json.Unmarshal(raw, ls) != nil || time.Now().Unix() >= ls.Expires {
		return nil, false
	}
	return ls, true
}

// mac is the login cookie's MAC of payload, under a key derived for it.
func mac(key []byte, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("tokengate session_auth login\x00"))
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
