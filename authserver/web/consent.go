package web

// RFC 6749 §4.1.1 and RFC 9700 §4.15: asking the person to approve the
// scopes, and remembering it for as long as the grant it made lives.

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"go.uber.org/zap"
)

// ServeConsent shows (GET) and takes (POST) the person's decision.
func (s *Service) ServeConsent(w http.ResponseWriter, r *http.Request) {
	params, e := authzParamsOf(w, r)
	if e != nil {
		s.renderError(w, e.Status, e, nil)
		return
	}
	decision, csrf := params.Get("decision"), params.Get("csrf_token")
	authz := url.Values{}
	for k, v := range params {
		if k != "decision" && k != "csrf_token" {
			authz[k] = v
		}
	}
	req, e, redirect := s.parseAuthzRequest(r, authz)
	if e != nil {
		s.failAuthz(w, r, req, e, redirect)
		return
	}
	user := s.currentUser(r)
	if user == nil || req.signInAgain(user.authTime) {
		s.redirectTo(w, r, PathLogin, url.Values{"return_to": {s.issuer.Path + PathConsent + "?" + req.signInParams().Encode()}})
		return
	}
	sess := s.ensureSession(w, r)
	if r.Method == http.MethodGet {
		hidden := map[string]string{}
		for k := range req.params {
			hidden[k] = req.params.Get(k)
		}
		s.renderPage(w, http.StatusOK, "consent.html", &PageData{Title: "Allow access?", Client: pageClientTo(req.client, req.redirectURI),
			Scopes: s.pageScopes(req.scope), Resource: s.pageResource(req.resource), User: user.display, Action: s.issuer.Path + PathConsent,
			CSRFToken: s.csrfToken(sess), Hidden: hidden}, formTarget(req.redirectURI)...)
		return
	}
	if !s.checkCSRF(r, csrf, sess) {
		s.renderError(w, http.StatusForbidden, oauth.ErrInvalidRequest("this form expired or did not come from this site; start again from the application"), req.client)
		return
	}
	switch decision {
	case "approve":
		// The consent is remembered as the grant the code records.
		s.audit(r.Context(), "consent granted", zap.String("client_id", req.client.ID), zap.String("sub", user.subject), zap.String("scope", req.scope))
		s.issueCode(w, r, req, user)
	case "deny":
		s.audit(r.Context(), "consent denied", zap.String("client_id", req.client.ID), zap.String("sub", user.subject), zap.String("scope", req.scope))
		s.redirect(w, r, req, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}})
	default:
		s.renderError(w, http.StatusBadRequest, oauth.ErrInvalidRequest("decision must be approve or deny"), req.client)
	}
}

// needsConsent says whether to ask the person: skip_consent clients never
// ask; others ask unless the person's live grants to the client already
// cover every scope requested. A remembered consent is its grants: when
// they end (revoked in any way, the person offboarded, expired, past
// grant_max_age), the person is asked again.
func (s *Service) needsConsent(r *http.Request, subject string, req *authzRequest) (bool, error) {
	if req.client.SkipConsent {
		return false, nil
	}
	grants, err := s.tokens.LiveGrants(r.Context(), store.GrantQuery{Subject: subject, ClientID: req.client.ID})
	if err != nil {
		return false, err
	}
	var granted []string
	for _, g := range grants {
		granted = append(granted, strings.Fields(g.Scope)...)
	}
	for _, sc := range strings.Fields(req.scope) {
		if !slices.Contains(granted, sc) {
			return true, nil
		}
	}
	return false, nil
}

// Logins a grant records (store.Grant.Login) besides a provider's name.
const (
	LoginPassword = "password"
	LoginUpstream = "upstream"
)

// newGrant is the record of a grant the person just approved, stored
// before its code or device authorization can be redeemed: the token
// endpoint then only notes its uses, in the step that redeems or rotates.
// The record lives as long as a token from an unredeemed code could
// (codeExpiry and one access token); redemption extends it to the
// refresh token's life.
func (s *Service) newGrant(id string, client *client.Client, user *authUser, scope, resource string, codeExpiry time.Time) *store.Grant {
	now := time.Now().UTC()
	authTime := user.authTime
	if authTime.IsZero() {
		authTime = now
	}
	return &store.Grant{ID: id, ClientID: client.ID, Subject: user.subject, Scope: scope, Resource: resource,
		Login: user.login, CreatedAt: now, ExpiresAt: codeExpiry.Add(s.cfg.AccessTokenTTL), EndsBy: authTime.Add(s.cfg.GrantMaxAge),
		OpenID: user.openIDFor(scope)}
}
