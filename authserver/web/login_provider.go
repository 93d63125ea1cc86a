package web

// Signing in through a login provider (the organisation's OpenID Connect
// or OAuth 2.0 identity provider): /login/<name> starts, the provider
// returns the person to /login/<name>/callback, and the person then has a
// session like a password sign-in's. People from a provider have the
// subject <name>:<username>: no configured client or user may be named
// with a provider's prefix, and each provider has its own.

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/login"
)

// loginAttemptCookie carries one sign-in's state, nonce, PKCE verifier and
// return_to through the provider, MACed like the session.
const loginAttemptCookie = "tokengate_login"

// loginAttemptTTL bounds how long a person may take at the provider.
const loginAttemptTTL = 10 * time.Minute

// ProviderRedirectURI is the redirect URI to register at the provider
// named name, for an issuer.
func ProviderRedirectURI(issuer, name string) string {
	return strings.TrimSuffix(issuer, "/") + PathLoginProviders + name + "/callback"
}

// loginAttempt is what the cookie says.
type loginAttempt struct {
	Provider string `json:"p"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Expires  int64  `json:"e"`
}

// checkProviderNames refuses configured clients and users named with a
// provider's prefix, whose subjects a provider's people could take.
func checkProviderNames(providers []*login.Provider, clients []*client.Client, users []*User) error {
	for _, p := range providers {
		if p.Name() == "http" || p.Name() == "https" {
			return fmt.Errorf("login_provider %s: the name reads as a URL scheme in subjects (%s:…); choose another", p.Name(), p.Name())
		}
		prefix := p.Name() + ":"
		for _, c := range clients {
			if strings.HasPrefix(c.ID, prefix) {
				return fmt.Errorf("client %s starts with %q, the subject prefix of login_provider %s's people: rename one", c.ID, prefix, p.Name())
			}
		}
		for _, u := range users {
			if strings.HasPrefix(u.Username, prefix) {
				return fmt.Errorf("user %s starts with %q, the subject prefix of login_provider %s's people: rename one", u.Username, prefix, p.Name())
			}
		}
	}
	return nil
}

// pageProviders are the login page's links, each carrying the page's
// return_to.
func (s *Service) pageProviders(returnTo string) []PageProvider {
	var out []PageProvider
	for _, p := range s.people.list {
		out = append(out, PageProvider{Name: p.DisplayName(), URL: s.issuer.Path + PathLoginProviders + p.Name() + "?" + url.Values{"return_to": {returnTo}}.Encode()})
	}
	return out
}

// ServeLoginProvider serves /login/<name> and /login/<name>/callback.
func (s *Service) ServeLoginProvider(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, s.issuer.Path+PathLoginProviders)
	name, callback := strings.CutSuffix(rest, "/callback")
	p := s.people.providers[name] // a name with a slash is no provider's
	if p == nil {
		s.renderError(w, http.StatusNotFound, oauth.ErrInvalidRequest("there is no login provider %q", name), nil)
		return
	}
	if r.Method != http.MethodGet {
		s.renderError(w, http.StatusMethodNotAllowed, oauth.MethodNotAllowed(w, http.MethodGet), nil)
		return
	}
	if callback {
		s.finishProviderLogin(w, r, p)
		return
	}
	s.startProviderLogin(w, r, p)
}

// startProviderLogin sends the person to the provider, with this
// attempt's state, nonce and PKCE challenge kept in a MACed cookie.
func (s *Service) startProviderLogin(w http.ResponseWriter, r *http.Request, p *login.Provider) {
	returnTo := r.URL.Query().Get("return_to")
	if _, status, e := s.pendingFor(r, returnTo); e != nil {
		s.renderError(w, status, e, nil)
		return
	}
	a := loginAttempt{Provider: p.Name(), State: oauth.RandomToken(16), Nonce: oauth.RandomToken(16), Verifier: oauth.RandomToken(32),
		ReturnTo: returnTo, Expires: time.Now().Add(loginAttemptTTL).Unix()}
	// A provider that is down gets the person this server's page with a
	// way back, not the browser's error at the provider's address.
	if err := p.Available(r.Context()); err != nil {
		s.providerFailed(w, r, p, err, returnTo)
		return
	}
	target, err := p.AuthCodeURL(r.Context(), a.State, a.Nonce, oauth.S256Challenge(a.Verifier))
	if err != nil {
		s.providerFailed(w, r, p, err, returnTo)
		return
	}
	if !s.writeSigned(w, loginAttemptCookie, "login attempt", &a, loginAttemptTTL) {
		s.renderError(w, http.StatusServiceUnavailable, oauth.ErrTemporarilyUnavailable("the sign-in keys are not loaded"), nil)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	sendRedirect(w, target, http.StatusSeeOther)
}

// finishProviderLogin takes the person back from the provider: the state
// must be this browser's attempt's, then the provider's answer checked.
func (s *Service) finishProviderLogin(w http.ResponseWriter, r *http.Request, p *login.Provider) {
	a := s.readLoginAttempt(r)
	// The attempt is used once, whatever happens next.
	s.clearCookie(w, loginAttemptCookie)
	q := r.URL.Query()
	if a == nil || a.Provider != p.Name() || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(a.State)) != 1 {
		s.audit(r.Context(), "login failed", zap.String("provider", p.Name()), zap.String("reason", "state"))
		s.metrics.LoginProviderError(p.Name(), string(login.Invalid))
		s.renderPage(w, http.StatusBadRequest, "error.html", &PageData{Title: "This sign-in expired",
			Error: "This sign-in did not start here, or it took too long.", Message: "Go back to the application and sign in again."})
		return
	}
	id, err := p.Finish(r.Context(), q, a.Nonce, a.Verifier)
	if err != nil {
		s.providerFailed(w, r, p, err, a.ReturnTo)
		return
	}
	now := time.Now()
	subject := p.Name() + ":" + id.Username
	// What the provider said of the person is what this server's ID
	// tokens say (OpenID Connect Core §5.1): kept in the session, then in
	// the grants made in it.
	email, _ := id.Claims["email"].(string)
	s.writeSession(w, &session{ID: oauth.RandomToken(16), Subject: subject, Name: id.DisplayName, Provider: p.Name(),
		Username: id.Username, Email: email, EmailVerified: email != "" && claimTrue(id.Claims["email_verified"]),
		AuthTime: now.Unix(), SignedInMS: now.UnixMilli(), Expires: now.Add(SessionTTL).Unix()})
	s.audit(r.Context(), "login succeeded", zap.String("sub", subject), zap.String("provider", p.Name()))
	w.Header().Set("Cache-Control", "no-store")
	sendRedirect(w, a.ReturnTo, http.StatusSeeOther)
}

// readLoginAttempt is the browser's attempt, if its MAC holds and it is
// not over.
func (s *Service) readLoginAttempt(r *http.Request) *loginAttempt {
	a := new(loginAttempt)
	if !s.readSigned(r, loginAttemptCookie, "login attempt", a) || time.Now().Unix() >= a.Expires {
		return nil
	}
	return a
}

// providerFailed tells the person what went wrong at the provider, in
// their terms, with a way back to the sign-in page (for returnTo), and
// the log and metrics in the operator's.
func (s *Service) providerFailed(w http.ResponseWriter, r *http.Request, p *login.Provider, err error, returnTo string) {
	var le *login.Error
	kind := login.Unavailable
	if errors.As(err, &le) {
		kind = le.Kind
	}
	s.metrics.LoginProviderError(p.Name(), string(kind))
	s.audit(r.Context(), "login failed", zap.String("provider", p.Name()), zap.String("reason", string(kind)))
	data := &PageData{Title: "Signing in with " + p.DisplayName() + " did not work",
		BackURL: s.issuer.Path + PathLogin}
	if returnTo != "" {
		data.BackURL += "?" + url.Values{"return_to": {returnTo}}.Encode()
	}
	status := http.StatusBadGateway
	switch kind {
	case login.Unavailable:
		s.log.Warn("login provider unavailable", zap.String("provider", p.Name()), zap.Error(err))
		status = http.StatusServiceUnavailable
		data.Error = p.DisplayName() + " cannot be reached right now."
		data.Message = "Please try again in a few minutes, or go back and sign in another way if there is one."
	case login.Denied:
		status = http.StatusForbidden
		data.Error = p.DisplayName() + " did not sign you in."
		data.Message = "Go back to the application and try again if you meant to allow it."
	case login.Refused:
		s.log.Info("login provider's person refused", zap.String("provider", p.Name()), zap.Error(err))
		status = http.StatusForbidden
		data.Error = "You signed in with " + p.DisplayName() + ", but your account is not allowed here."
		data.Message = "Ask the people who run this service to give your account access."
	default:
		s.log.Warn("login provider's answer refused", zap.String("provider", p.Name()), zap.Error(err))
		data.Error = p.DisplayName() + "'s answer could not be accepted."
		data.Message = "Go back to the application and sign in again; if it happens again, tell the people who run this service."
	}
	s.renderPage(w, status, "error.html", data)
}

// claimTrue reads a boolean claim, which some providers send as a string
// ("true").
func claimTrue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}
