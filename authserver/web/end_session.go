package web

// OpenID Connect RP-Initiated Logout 1.0: the end_session_endpoint, where an
// application sends a person to sign out, and the account page's sign-out.

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/token"
)

// logoutRequest is a validated logout request (§2).
type logoutRequest struct {
	// hint is the id_token_hint's, when one was sent.
	hint *token.IDTokenHint
	// client is the application asking (client_id, or the hint's
	// audience); nil when it names none.
	client *client.Client
	// redirectURI is the post_logout_redirect_uri, exactly one the
	// client registered; state goes back with it.
	redirectURI, state string
}

// logoutParams are what the confirmation page's form carries back.
var logoutParams = []string{"client_id", "post_logout_redirect_uri", "state"}

// parseLogoutRequest checks a logout request. Its errors are shown as a
// page: a post_logout_redirect_uri not checked against the client that
// registered it is nowhere to send a person.
func (s *Service) parseLogoutRequest(r *http.Request, params url.Values) (*logoutRequest, *oauth.Error) {
	for name, v := range params {
		if len(v) > 1 {
			return nil, oauth.ErrInvalidRequest("parameter %q is given more than once", name)
		}
	}
	lr := &logoutRequest{redirectURI: params.Get("post_logout_redirect_uri"), state: params.Get("state")}
	if raw := params.Get("id_token_hint"); raw != "" {
		h, err := s.tokens.ReadIDTokenHint(raw)
		if err != nil {
			return nil, oauth.ErrInvalidRequest("%v", err)
		}
		lr.hint = h
	}
	clientID := params.Get("client_id")
	switch {
	case clientID != "" && lr.hint != nil && !slices.Contains(lr.hint.Audience, clientID):
		return nil, oauth.ErrInvalidRequest("client_id %q is not the application the id_token_hint was issued to", clientID)
	case clientID == "" && lr.hint != nil:
		clientID = lr.hint.Audience[0]
	}
	if clientID != "" {
		c, _, err := s.clients.Lookup(r.Context(), clientID)
		var de *client.DocumentError
		switch {
		case errors.Is(err, store.ErrNotFound) && params.Get("client_id") == "":
			// The hint's application was deleted since: sign out all
			// the same, only not back to it.
		case errors.Is(err, store.ErrNotFound):
			return nil, oauth.ErrInvalidRequest("there is no application with client_id %q", clientID)
		case errors.As(err, &de):
			return nil, oauth.ErrInvalidRequest("%v", de)
		case err != nil:
			return nil, s.failures.Store("looking up a client", err)
		}
		lr.client = c
	}
	if lr.redirectURI != "" {
		switch {
		case lr.client == nil:
			return nil, oauth.ErrInvalidRequest("post_logout_redirect_uri needs client_id or id_token_hint to say which application registered it")
		case !slices.Contains(lr.client.PostLogoutRedirectURIs, lr.redirectURI):
			return nil, oauth.ErrInvalidRequest("post_logout_redirect_uri %q is not registered for %s: it must match a registered one exactly",
				lr.redirectURI, lr.client.Name)
		}
	}
	return lr, nil
}

// ServeEndSession is the end_session_endpoint (GET or POST). A request
// whose id_token_hint names the signed-in person ends the session at
// once; any other asks the person first (a link anyone can send is no
// reason to sign someone out), with a CSRF-checked form. Then the person
// goes back to the post_logout_redirect_uri with state, or sees that they
// are signed out.
func (s *Service) ServeEndSession(w http.ResponseWriter, r *http.Request) {
	params, e := authzParamsOf(w, r)
	if e != nil {
		s.renderError(w, e.Status, e, nil)
		return
	}
	decision, csrf := params.Get("decision"), params.Get("csrf_token")
	params.Del("decision")
	params.Del("csrf_token")
	lr, e := s.parseLogoutRequest(r, params)
	if e != nil {
		s.renderError(w, http.StatusBadRequest, e, nil)
		return
	}
	sess := s.readSession(r)
	signedIn := sess != nil && sess.Subject != ""
	switch {
	case !signedIn:
		s.finishLogout(w, r, lr) // nobody to sign out
	case r.Method == http.MethodPost && decision != "":
		if !s.checkCSRF(r, csrf, sess) {
			s.renderError(w, http.StatusForbidden, oauth.ErrInvalidRequest("this form expired or did not come from this site; sign out from the application again"), lr.client)
			return
		}
		if decision != "logout" {
			s.renderPage(w, http.StatusOK, "signed_out.html", &PageData{Title: "You are still signed in", Message: "Nothing changed: you are still signed in."})
			return
		}
		s.endSession(w, r, sess, lr)
	case lr.hint != nil && lr.hint.Subject == sess.Subject:
		s.endSession(w, r, sess, lr)
	default:
		hidden := map[string]string{}
		for _, name := range logoutParams {
			if v := params.Get(name); v != "" {
				hidden[name] = v
			}
		}
		if lr.client != nil {
			hidden["client_id"] = lr.client.ID
		}
		data := &PageData{Title: "Sign out?", Client: pageClient(lr.client), User: s.currentUserDisplay(r),
			Message: "Signing out here signs you out of every application that uses this sign-in.",
			Action:  s.issuer.Path + PathEndSession, CSRFToken: s.csrfToken(sess), Hidden: hidden}
		s.renderPage(w, http.StatusOK, "logout.html", data, formTarget(lr.redirectURI)...)
	}
}

// currentUserDisplay names the signed-in person for a page; "" for none.
func (s *Service) currentUserDisplay(r *http.Request) string {
	if u := s.currentUser(r); u != nil {
		return u.display
	}
	return ""
}

// endSession ends sess everywhere (which tells the applications that got
// ID tokens in it, in the background) and takes the person on.
func (s *Service) endSession(w http.ResponseWriter, r *http.Request, sess *session, lr *logoutRequest) {
	by := "the person"
	if lr.client != nil {
		by = "the person, through " + lr.client.ID
	}
	if err := s.sessions.EndSession(r.Context(), sess.ID, sess.Subject, by); err != nil {
		s.renderError(w, http.StatusServiceUnavailable, s.failures.Store("ending a session", err), lr.client)
		return
	}
	s.clearCookie(w, sessionCookie)
	s.finishLogout(w, r, lr)
}

// finishLogout sends the person back to the application (§3: with state),
// or shows that they are signed out.
func (s *Service) finishLogout(w http.ResponseWriter, r *http.Request, lr *logoutRequest) {
	if lr.redirectURI != "" {
		u, _ := url.Parse(lr.redirectURI) // registered, so valid
		if lr.state != "" {
			q := u.Query()
			q.Set("state", lr.state)
			u.RawQuery = q.Encode()
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		sendRedirect(w, u.String(), http.StatusSeeOther)
		return
	}
	s.renderPage(w, http.StatusOK, "signed_out.html", s.signedOutPage(r))
}

// signedOutPage says what signing out did.
func (s *Service) signedOutPage(r *http.Request) *PageData {
	data := &PageData{Title: "Signed out", Message: "You are signed out. The applications you signed in to here were told, if they listen for it.",
		Detail: "Applications you allowed to act for you while you are away keep that access until you remove it on your account page."}
	if s.cfg.UpstreamUser != nil && s.cfg.UpstreamUser(r) != "" {
		data.Detail = "This site signs you in through its own sign-in, which is still in effect: close the browser to end it."
	}
	return data
}

// ServeLogout signs the person out from the account page (a CSRF-checked
// POST: a link or an image elsewhere must not sign anyone out), on every
// instance, telling the applications that got ID tokens in the session.
func (s *Service) ServeLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.renderError(w, http.StatusMethodNotAllowed, oauth.MethodNotAllowed(w, http.MethodPost), nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, oauth.MaxFormBytes)
	sess := s.readSession(r)
	if err := r.ParseForm(); err != nil || !s.checkCSRF(r, r.PostForm.Get("csrf_token"), sess) {
		s.renderError(w, http.StatusForbidden, oauth.ErrInvalidRequest("this form expired or did not come from this site; open your account page again"), nil)
		return
	}
	if sess != nil && sess.Subject != "" {
		if err := s.sessions.EndSession(r.Context(), sess.ID, sess.Subject, "the person, on the account page"); err != nil {
			s.renderError(w, http.StatusServiceUnavailable, s.failures.Store("ending a session", err), nil)
			return
		}
		s.audit(r.Context(), "logout", zap.String("sub", sess.Subject))
	}
	s.clearCookie(w, sessionCookie)
	s.renderPage(w, http.StatusOK, "signed_out.html", s.signedOutPage(r))
}
