package web

// The sign-in page (RFC 6749 §3.1 leaves authenticating the person to the server).

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/token"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// authUser is the person an authorization is for.
type authUser struct {
	subject  string
	display  string
	authTime time.Time
	// login is how they signed in (store.Grant.Login).
	login string
	// identity is what ID tokens say of them, and their session's ID.
	identity store.OpenID
}

// openIDFor is what a grant of scope keeps of the person: their identity
// when scope has openid, else nothing.
func (u *authUser) openIDFor(scope string) *store.OpenID {
	if !oauth.HasScope(scope, token.ScopeOpenID) {
		return nil
	}
	id := u.identity
	return &id
}

// currentUser is the person behind the request: one an earlier handler
// authenticated (basic_auth, forward_auth, ...), else the session's, else nil.
func (s *Service) currentUser(r *http.Request) *authUser {
	if s.cfg.UpstreamUser != nil {
		if id := s.cfg.UpstreamUser(r); id != "" {
			// The earlier handler's session is not one of tokengate's:
			// there is no sid to name.
			return &authUser{subject: id, display: s.displayName(id), authTime: time.Now().UTC(), login: LoginUpstream, identity: s.people.identity(id)}
		}
	}
	// A session's person must still be a user, or come through a provider
	// still configured: one removed from the configuration is signed out.
	sess := s.readSession(r)
	switch {
	case sess == nil || sess.Subject == "":
		return nil
	case sess.Provider != "" && s.people.providers[sess.Provider] != nil && strings.HasPrefix(sess.Subject, sess.Provider+":"):
		return &authUser{subject: sess.Subject, display: providerDisplay(sess.Name, sess.Subject), authTime: time.Unix(sess.AuthTime, 0).UTC(), login: sess.Provider,
			identity: store.OpenID{SID: sess.ID, Name: sess.Name, PreferredUsername: sess.Username, Email: sess.Email, EmailVerified: sess.EmailVerified}}
	case sess.Provider == "" && s.people.users[sess.Subject] != nil:
		id := s.people.identity(sess.Subject)
		id.SID = sess.ID
		return &authUser{subject: sess.Subject, display: s.displayName(sess.Subject), authTime: time.Unix(sess.AuthTime, 0).UTC(), login: LoginPassword, identity: id}
	}
	return nil
}

// providerDisplay is how pages name a person who signed in through a
// provider: the name the provider gave, beside the full subject. The name
// alone could be anyone's (another provider's "mark", a user "mark"); the
// subject says whose account it is.
func providerDisplay(name, subject string) string {
	if name = DisplayText(name); name == "" || name == subject {
		return subject
	}
	return name + " (" + subject + ")"
}

func (s *Service) displayName(subject string) string {
	if u, ok := s.people.users[subject]; ok && u.Name != "" {
		return u.Name
	}
	return subject
}

// pending is what a sign-in is for: the application, the scopes it asks for
// and, for the CSP, where the flow will redirect in the end; for an
// authorization, the request, which may want the person to sign in again.
type pending struct {
	client      *client.Client
	scope       string
	resource    string
	redirectURI string
	authz       *authzRequest
}

// signInAgain says whether the person, signed in at authTime, must sign
// in again for the pending authorization (prompt=login, max_age).
func (p *pending) signInAgain(authTime time.Time) bool {
	return p.authz != nil && p.authz.signInAgain(authTime)
}

// pendingFor recovers what a login page is for from its return_to, which
// must point back into this server's own flows (so the login page is no open
// redirector): an authorization request, or a device code (looked up within
// the same attempt limits as on /device).
func (s *Service) pendingFor(r *http.Request, returnTo string) (*pending, int, *oauth.Error) {
	bad := oauth.ErrInvalidRequest("the sign-in link is not part of an authorization: start again from the application")
	u, err := url.Parse(returnTo)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return nil, http.StatusBadRequest, bad
	}
	switch u.Path {
	case s.issuer.Path + PathAuthorize, s.issuer.Path + PathConsent:
		req, e, _ := s.parseAuthzRequest(r, u.Query())
		if e != nil {
			return nil, http.StatusBadRequest, e
		}
		return &pending{client: req.client, scope: req.scope, resource: req.resource, redirectURI: req.redirectURI, authz: req}, 0, nil
	case s.issuer.Path + PathAccount:
		return &pending{}, 0, nil
	case s.issuer.Path + PathDevice:
		d, c, status, msg := s.lookupUserCode(r, u.Query().Get("user_code"))
		if d == nil {
			return nil, status, oauth.ErrInvalidRequest("%s", msg)
		}
		return &pending{client: c, scope: d.Scope, resource: d.Resource}, 0, nil
	}
	return nil, http.StatusBadRequest, bad
}

// Failed-login limits per window: failures only count, and once over, no
// password is even checked. They slow guessing without handing anyone a
// switch that locks a person out: failures count per (username, address)
// and per address, so an address with no failures always has its password
// checked. Failures for one username from everywhere count too: past
// loginSlowdownAfter, every address that already failed for that username
// gets a single try per window instead of loginLimitPerUser, which cuts a
// distributed guesser to one guess per address while the person, signing
// in from an address of their own, is not refused.
const (
	loginWindow        = 15 * time.Minute
	loginLimitPerUser  = 5
	loginLimitPerIP    = 20
	loginSlowdownAfter = 10
)

// ServeLogin is the sign-in page: a form for a username and password,
// and the login providers' links.
func (s *Service) ServeLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.renderError(w, http.StatusMethodNotAllowed, oauth.MethodNotAllowed(w, http.MethodGet, http.MethodPost), nil)
		return
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, oauth.MaxFormBytes)
		if err := r.ParseForm(); err != nil {
			s.renderError(w, http.StatusBadRequest, oauth.ErrInvalidRequest("the form could not be read"), nil)
			return
		}
	}
	returnTo := r.FormValue("return_to")
	req, status, e := s.pendingFor(r, returnTo)
	if e != nil {
		s.renderError(w, status, e, nil)
		return
	}
	if u := s.currentUser(r); u != nil && r.Method == http.MethodGet && !req.signInAgain(u.authTime) {
		// Already signed in (or authenticated upstream): carry on.
		sendRedirect(w, returnTo, http.StatusFound)
		return
	}
	sess := s.ensureSession(w, r)
	data := &PageData{Title: "Sign in", Client: pageClient(req.client), Scopes: s.pageScopes(req.scope), Resource: s.pageResource(req.resource),
		Action: s.issuer.Path + PathLogin, Hidden: map[string]string{"return_to": returnTo},
		Passwords: len(s.people.users) > 0 || len(s.people.list) == 0, Providers: s.pageProviders(returnTo)}
	if req.authz != nil {
		data.Username = req.authz.loginHint // OpenID Connect Core §3.1.2.1: a hint, pre-filled
	}
	if req.client == nil && returnTo == s.issuer.Path+PathAccount {
		// No application is asking: say why a sign-in is wanted.
		data.Message = "Sign in to see the applications you have allowed to act for you, and to remove any of them."
	}
	show := func(status int, msg string) {
		data.Error, data.CSRFToken = msg, s.csrfToken(sess)
		s.renderPage(w, status, "login.html", data, formTarget(req.redirectURI)...)
	}
	if r.Method == http.MethodGet {
		show(http.StatusOK, "")
		return
	}
	if !s.checkCSRF(r, r.PostForm.Get("csrf_token"), sess) {
		show(http.StatusForbidden, "This form expired or did not come from this site. Please sign in again.")
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	data.Username = username
	limits, err := s.loginLimits(r, username)
	if err != nil {
		show(http.StatusServiceUnavailable, "Signing in is unavailable right now; please try again shortly.")
		s.log.Error("login rate limit unavailable", zap.Error(err))
		return
	}
	if until, limited, err := limits.Locked(r.Context(), s.store); err != nil {
		show(http.StatusServiceUnavailable, "Signing in is unavailable right now; please try again shortly.")
		s.log.Error("login rate limit unavailable", zap.Error(err))
		return
	} else if limited {
		wait := time.Until(until).Round(time.Minute)
		if wait < time.Minute {
			wait = time.Minute
		}
		s.audit(r.Context(), "login refused", s.loggedUsername(username), zap.String("reason", "rate limited"))
		show(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-in attempts. Try again after %s UTC (in about %s).", until.UTC().Format("15:04"), wait))
		return
	}
	u, ok := s.people.users[username]
	var hash []byte
	if ok {
		hash = []byte(u.PasswordHash)
	} else {
		hash = s.people.dummyHash()
	}
	if !s.people.secrets.Bcrypt(r.Context(), func() bool { return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil }) || !ok {
		s.audit(r.Context(), "login failed", s.loggedUsername(username))
		limits.Fail(r.Context(), s.store, s.failures)
		show(http.StatusUnauthorized, "Wrong username or password.")
		return
	}
	// A new session ID at login: a session planted before it is useless.
	now := time.Now()
	s.writeSession(w, &session{ID: oauth.RandomToken(16), Subject: u.Username, AuthTime: now.Unix(), SignedInMS: now.UnixMilli(), Expires: now.Add(SessionTTL).Unix()})
	s.audit(r.Context(), "login succeeded", zap.String("sub", username))
	w.Header().Set("Cache-Control", "no-store")
	sendRedirect(w, returnTo, http.StatusSeeOther)
}

// dummyHashFor returns the hash an unknown username's password is compared
// against: made at the highest cost among the users' hashes, so that the
// answer takes as long as for a known username with a wrong password and
// its timing does not tell which usernames exist. It is made in the
// background at start (as long as one comparison takes).
func dummyHashFor(users []*User) func() []byte {
	cost := bcrypt.DefaultCost
	for i, u := range users {
		if c, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil && (i == 0 || c > cost) {
			cost = c
		}
	}
	h := sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte(oauth.RandomToken(16)), cost)
		return h
	})
	if len(users) > 0 {
		go h()
	}
	return h
}

// loginLimits are the failure counters of a sign-in of username from r's
// address (see the limits above). Typed usernames reach store keys only
// as keyed hashes: people type passwords into the username field.
func (s *Service) loginLimits(r *http.Request, username string) (oauth.Limits, error) {
	name, err := s.typedKey(username)
	if err != nil {
		return oauth.Limits{}, err
	}
	addr := s.address(r)
	perName := oauth.Counted{Key: "login:user:" + name, Limit: math.MaxInt64} // refuses nobody by itself
	n, _, err := s.store.Counter(r.Context(), perName.Key)
	if err != nil {
		return oauth.Limits{}, err
	}
	perNameAddr := int64(loginLimitPerUser)
	if n >= loginSlowdownAfter {
		perNameAddr = 1
	}
	return oauth.Limits{Window: loginWindow, Counters: []oauth.Counted{
		{Key: "login:user:" + name + ":" + addr, Limit: perNameAddr}, {Key: "login:ip:" + addr, Limit: loginLimitPerIP}, perName}}, nil
}

// loggedUsername names who tried to log in: only a username that exists,
// since people type their password into the username field.
func (s *Service) loggedUsername(username string) zap.Field {
	if _, ok := s.people.users[username]; ok {
		return zap.String("username", username)
	}
	return zap.String("username", "(unknown)")
}

// formTarget is the CSP form-action source for a redirect URI: browsers
// check the redirects that follow a form post against form-action, and the
// flow ends with a redirect to the client.
func formTarget(redirectURI string) []string {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme == "" {
		return nil
	}
	if u.Host == "" {
		return []string{" " + u.Scheme + ":"}
	}
	return []string{" " + u.Scheme + "://" + u.Host}
}
