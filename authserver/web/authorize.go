package web

// RFC 6749 §4.1.1-§4.1.2 with RFC 7636 and RFC 9207: the authorization endpoint.

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/token"
)

// authzRequest is a validated authorization request (RFC 6749 §4.1.1 with
// RFC 7636's PKCE parameters).
type authzRequest struct {
	client *client.Client
	// redirectURI is where answers go; redirectGiven says the request
	// named it (else it is the client's only registered one).
	redirectURI   string
	redirectGiven bool
	scope         string
	state         string
	challenge     string
	method        string
	// resource is the RFC 8707 resource asked for; "" for none.
	resource string
	// OpenID Connect Core §3.1.2.1: the nonce the ID token repeats; the
	// prompt values; max_age in seconds (-1: none); the login hint.
	nonce     string
	prompt    []string
	maxAge    int
	loginHint string
	// loginAfter, once the person was sent to sign in again, is when:
	// a sign-in since satisfies prompt=login and max_age.
	loginAfter time.Time
	// params are the request's parameters, carried through login and
	// consent so the request can be validated again there.
	params url.Values
}

// authzParams are the parameters an authorization request may carry
// through the login and consent pages; paramLoginAfter is tokengate's
// own, added when it sends the person to sign in again.
var authzParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "resource",
	"nonce", "prompt", "max_age", "login_hint", paramLoginAfter}

const paramLoginAfter = "login_after"

// Limits of OpenID Connect's request parameters: far above what relying
// parties send (a nonce is some 43 characters), low enough that a code's
// record stays small.
const (
	maxNonce     = 512
	maxLoginHint = 256
)

// prompts are OpenID Connect Core §3.1.2.1's prompt values.
var prompts = []string{"none", "login", "consent", "select_account"}

// hasPrompt says whether the request's prompt has value.
func (r *authzRequest) hasPrompt(value string) bool { return slices.Contains(r.prompt, value) }

// signInAgain says whether a person who signed in at authTime must sign
// in again: prompt=login (or select_account: the sign-in page is where a
// person picks who they are) or a session older than max_age, until they
// have since being sent to.
func (r *authzRequest) signInAgain(authTime time.Time) bool {
	if !r.loginAfter.IsZero() {
		return authTime.Before(r.loginAfter)
	}
	if r.hasPrompt("login") || r.hasPrompt("select_account") {
		return true
	}
	return r.maxAge >= 0 && time.Since(authTime) > time.Duration(r.maxAge)*time.Second
}

// parseAuthzRequest validates an authorization request. An error with
// redirect false must be shown as a page: the client or redirect URI is not
// established, and redirecting would make tokengate an open redirector.
// Otherwise the error goes back to the client by redirect (RFC 6749 §4.1.2.1).
func (s *Service) parseAuthzRequest(r *http.Request, params url.Values) (req *authzRequest, e *oauth.Error, redirect bool) {
	one := func(name string) (string, bool) {
		v := params[name]
		return strings.Join(v, ""), len(v) <= 1
	}
	clientID, ok1 := one("client_id")
	redirectURI, ok2 := one("redirect_uri")
	if !ok1 || !ok2 {
		return nil, oauth.ErrInvalidRequest("client_id and redirect_uri may appear only once"), false
	}
	if clientID == "" {
		return nil, oauth.ErrInvalidRequest("the request has no client_id: the application's link is broken"), false
	}
	cl, _, err := s.clients.Lookup(r.Context(), clientID)
	var de *client.DocumentError
	if errors.Is(err, store.ErrNotFound) {
		return nil, oauth.ErrInvalidRequest("there is no application with client_id %q", clientID), false
	} else if errors.As(err, &de) {
		return nil, oauth.ErrInvalidRequest("%v", de), false
	}
	if err != nil {
		return nil, s.failures.Store("looking up a client", err), false
	}
	req = &authzRequest{client: cl, params: url.Values{}}
	if len(cl.RedirectURIs) == 0 && !slices.Contains(cl.GrantTypes, client.GrantAuthorizationCode) {
		// Nowhere to send the person back to: a machine client (client
		// credentials, device) sent here by mistake. Name what is missing
		// rather than the redirect URI it cannot have.
		return nil, oauth.ErrUnauthorizedClient("%s (client_id %q) is not allowed the authorization_code grant, so it cannot send people here: "+
			"its configuration needs grant authorization_code and a redirect_uri", cl.Name, cl.ID), false
	}
	switch {
	case redirectURI != "":
		if !redirectURIAllowed(cl.RedirectURIs, redirectURI) {
			return nil, oauth.ErrInvalidRequest("redirect_uri %q is not registered for %s: it must match a registered one exactly", redirectURI, cl.Name), false
		}
		req.redirectURI, req.redirectGiven = redirectURI, true
	case len(cl.RedirectURIs) == 1:
		req.redirectURI = cl.RedirectURIs[0]
	default:
		return nil, oauth.ErrInvalidRequest("the request has no redirect_uri and %s has %d registered: name one", cl.Name, len(cl.RedirectURIs)), false
	}
	for _, name := range authzParams {
		if v, ok := params[name]; ok {
			req.params[name] = v
		}
	}
	req.state, _ = one("state")

	// From here on, errors are redirected to the client.
	for name, v := range params {
		if len(v) > 1 {
			return req, oauth.ErrInvalidRequest("parameter %q is given more than once", name), true
		}
	}
	switch rt := params.Get("response_type"); rt {
	case "code":
	case "":
		return req, oauth.ErrInvalidRequest("response_type is missing; use response_type=code"), true
	default:
		return req, &oauth.Error{Code: "unsupported_response_type", Description: "response_type " + rt + " is not supported; use code (the implicit flow is not offered)"}, true
	}
	if !slices.Contains(cl.GrantTypes, client.GrantAuthorizationCode) {
		return req, oauth.ErrUnauthorizedClient("client %q is not allowed the authorization_code grant", cl.ID), true
	}
	if req.scope, e = client.ResolveScope(params.Get("scope"), cl.Scopes); e != nil {
		return req, e, true
	}
	if req.resource, e = s.tokens.Resources().Requested(params); e != nil {
		return req, e, true
	}
	req.challenge, req.method = params.Get("code_challenge"), params.Get("code_challenge_method")
	switch {
	case req.challenge == "" && req.method != "":
		return req, oauth.ErrInvalidRequest("code_challenge_method without code_challenge"), true
	case req.challenge == "" && cl.Public:
		return req, oauth.ErrInvalidRequest("public clients must use PKCE: send code_challenge and code_challenge_method=S256"), true
	case req.challenge == "":
	case req.method != "S256":
		// Absent means plain (RFC 7636 §4.3), which a code thief defeats.
		return req, oauth.ErrInvalidRequest("code_challenge_method must be S256 (plain is not accepted)"), true
	case !oauth.PKCEChallenge.MatchString(req.challenge):
		return req, oauth.ErrInvalidRequest("code_challenge must be the base64url SHA-256 of the verifier: 43 characters"), true
	}
	if e := req.parseOpenID(params); e != nil {
		return req, e, true
	}
	return req, nil, true
}

// parseOpenID reads OpenID Connect Core §3.1.2.1's parameters. Request
// objects are not supported (§6: the discovery document says so).
func (req *authzRequest) parseOpenID(params url.Values) *oauth.Error {
	switch {
	case params.Has("request"):
		return &oauth.Error{Code: "request_not_supported", Description: "request objects are not supported: send the parameters in the query"}
	case params.Has("request_uri"):
		return &oauth.Error{Code: "request_uri_not_supported", Description: "request_uri is not supported: send the parameters in the query"}
	}
	req.nonce, req.loginHint = params.Get("nonce"), params.Get("login_hint")
	if len(req.nonce) > maxNonce {
		return oauth.ErrInvalidRequest("nonce is longer than %d characters", maxNonce)
	}
	if len(req.loginHint) > maxLoginHint {
		return oauth.ErrInvalidRequest("login_hint is longer than %d characters", maxLoginHint)
	}
	req.prompt = strings.Fields(params.Get("prompt"))
	for _, p := range req.prompt {
		if !slices.Contains(prompts, p) {
			return oauth.ErrInvalidRequest("prompt %q is not supported: use none, login, consent or select_account", p)
		}
	}
	if req.hasPrompt("none") && len(req.prompt) > 1 {
		return oauth.ErrInvalidRequest("prompt none cannot be combined with other values")
	}
	req.maxAge = -1
	if v := params.Get("max_age"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return oauth.ErrInvalidRequest("max_age must be a number of seconds, 0 or more")
		}
		req.maxAge = n
	}
	if v := params.Get(paramLoginAfter); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return oauth.ErrInvalidRequest("%s must be a time in Unix seconds", paramLoginAfter)
		}
		req.loginAfter = time.Unix(n, 0)
	}
	return nil
}

// redirectURIAllowed matches a requested redirect URI exactly against the
// registered ones, except that for http loopback IP literals any port
// matches (RFC 8252 §7.3): native apps listen on ephemeral ports.
func redirectURIAllowed(registered []string, requested string) bool {
	if slices.Contains(registered, requested) {
		return true
	}
	u, err := url.Parse(requested)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || strings.Contains(requested, "#") {
		return false
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "::1" {
		return false
	}
	for _, reg := range registered {
		ru, err := url.Parse(reg)
		if err != nil || ru.User != nil {
			continue
		}
		if ru.Scheme == u.Scheme && ru.Hostname() == u.Hostname() && ru.EscapedPath() == u.EscapedPath() && ru.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}

// redirect sends the answer to the client: params plus state and iss
// (RFC 9207, so a client talking to several servers can tell who answered).
func (s *Service) redirect(w http.ResponseWriter, r *http.Request, req *authzRequest, params url.Values) {
	u, _ := url.Parse(req.redirectURI) // validated at registration
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	q.Set("iss", s.cfg.Issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	sendRedirect(w, u.String(), http.StatusFound)
}

func (s *Service) redirectError(w http.ResponseWriter, r *http.Request, req *authzRequest, e *oauth.Error) {
	s.audit(r.Context(), "authorization refused", zap.String("client_id", req.client.ID), zap.String("error", e.Code), zap.String("description", e.Description))
	s.redirect(w, r, req, url.Values{"error": {e.Code}, "error_description": {e.Description}})
}

// authzParamsOf returns an authorization request's parameters: the query
// for GET, the form body for POST (RFC 6749 §3.1 allows both).
func authzParamsOf(w http.ResponseWriter, r *http.Request) (url.Values, *oauth.Error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return r.URL.Query(), nil
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, oauth.MaxFormBytes)
		if err := r.ParseForm(); err != nil {
			return nil, oauth.ErrInvalidRequest("the request body is not a valid form")
		}
		return r.PostForm, nil
	default:
		return nil, oauth.MethodNotAllowed(w, http.MethodGet, http.MethodPost)
	}
}

// ServeAuthorize is the authorization endpoint.
func (s *Service) ServeAuthorize(w http.ResponseWriter, r *http.Request) {
	params, e := authzParamsOf(w, r)
	if e != nil {
		s.renderError(w, e.Status, e, nil)
		return
	}
	req, e, redirect := s.parseAuthzRequest(r, params)
	if e != nil {
		s.failAuthz(w, r, req, e, redirect)
		return
	}
	s.continueAuthz(w, r, req)
}

func (s *Service) failAuthz(w http.ResponseWriter, r *http.Request, req *authzRequest, e *oauth.Error, redirect bool) {
	if redirect {
		s.redirectError(w, r, req, e)
		return
	}
	status := http.StatusBadRequest
	if e.Status == http.StatusServiceUnavailable {
		status = e.Status
	}
	var c *client.Client
	if req != nil {
		c = req.client
	}
	s.renderError(w, status, e, c)
}

// continueAuthz takes a valid request to its next step: login, consent, or
// the code. With prompt=none (OpenID Connect Core §3.1.2.1) no page is
// shown: where one would be, the client hears why instead.
func (s *Service) continueAuthz(w http.ResponseWriter, r *http.Request, req *authzRequest) {
	user := s.currentUser(r)
	if user == nil || req.signInAgain(user.authTime) {
		if req.hasPrompt("none") {
			s.redirectError(w, r, req, &oauth.Error{Code: "login_required", Description: "the person must sign in, and prompt=none lets no page be shown"})
			return
		}
		s.redirectTo(w, r, PathLogin, url.Values{"return_to": {s.issuer.Path + PathAuthorize + "?" + req.signInParams().Encode()}})
		return
	}
	need, err := s.needsConsent(r, user.subject, req)
	if err != nil {
		s.redirectError(w, r, req, s.failures.Store("reading consent", err))
		return
	}
	switch {
	case need && req.hasPrompt("none"):
		s.redirectError(w, r, req, &oauth.Error{Code: "consent_required", Description: "the person must approve this access, and prompt=none lets no page be shown"})
	case need || req.hasPrompt("consent"):
		s.redirectTo(w, r, PathConsent, req.params)
	default:
		s.issueCode(w, r, req, user)
	}
}

// signInParams are the request's parameters for the sign-in page's way
// back: when the request wants a sign-in newer than the session's
// (prompt=login, max_age), they say from when, so that the one the person
// is sent to make is enough.
func (req *authzRequest) signInParams() url.Values {
	if !req.loginAfter.IsZero() || (!req.hasPrompt("login") && !req.hasPrompt("select_account") && req.maxAge < 0) {
		return req.params
	}
	q := maps.Clone(req.params)
	q.Set(paramLoginAfter, strconv.FormatInt(time.Now().Unix(), 10))
	return q
}

// redirectTo redirects within the authorization server.
func (s *Service) redirectTo(w http.ResponseWriter, r *http.Request, path string, q url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	sendRedirect(w, s.issuer.Path+path+"?"+q.Encode(), http.StatusFound)
}

// sendRedirect answers with a redirect to location and no body: unlike
// http.Redirect's, no HTML link that a browser could show or follow for a
// URI it should not (and nothing more of the code or state to leak).
func sendRedirect(w http.ResponseWriter, location string, status int) {
	w.Header().Set("Location", location)
	w.WriteHeader(status)
}

// issueCode stores a new authorization code and sends it to the client.
func (s *Service) issueCode(w http.ResponseWriter, r *http.Request, req *authzRequest, user *authUser) {
	// A code is "<grant ID>.<secret>", like a refresh token: the store
	// keeps it under both, next to the grant's refresh tokens.
	code := token.NewGrantToken(oauth.RandomToken(16))
	grantID := code.Grant
	now := time.Now().UTC()
	ac := &store.AuthCode{
		Hash: code.Hash(), ClientID: req.client.ID, Subject: user.subject,
		RedirectURI: req.redirectURI, RedirectURIGiven: req.redirectGiven, Scope: req.scope,
		CodeChallenge: req.challenge, CodeChallengeMethod: req.method,
		GrantID: grantID, AuthTime: user.authTime, ExpiresAt: now.Add(s.cfg.CodeTTL), Resource: req.resource,
		Nonce: req.nonce, OpenID: user.openIDFor(req.scope),
	}
	// The grant is recorded with its code, for the person's account page.
	ac.Grant = s.newGrant(grantID, req.client, user, req.scope, req.resource, ac.ExpiresAt)
	if err := s.store.CreateCode(r.Context(), ac); err != nil {
		s.redirectError(w, r, req, s.failures.Store("storing an authorization code", err))
		return
	}
	s.audit(r.Context(), "authorization code issued", zap.String("client_id", req.client.ID), zap.String("sub", user.subject),
		zap.String("scope", req.scope), zap.String("grant_id", grantID))
	s.redirect(w, r, req, url.Values{"code": {code.String()}})
}
