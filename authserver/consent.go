package authserver

// RFC 6749 §4.1.1 and RFC 9700 §4.15: asking the person to approve the scopes, and remembering it.

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/authserver/store"
	"go.uber.org/zap"
)

// handleConsent shows (GET) and takes (POST) the person's decision.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
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
	if user == nil {
		s.redirectTo(w, r, PathLogin, url.Values{"return_to": {s.issuer.Path + PathConsent + "?" + req.params.Encode()}})
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
		s.renderError(w, http.StatusForbidden, ErrInvalidRequest("this form expired or did not come from this site; start again from the application"), req.client)
		return
	}
	switch decision {
	case "approve":
		if err := s.rememberConsent(r, user.subject, req); err != nil {
			s.redirectError(w, r, req, s.storeError("storing consent", err))
			return
		}
		s.audit(r.Context(), "consent granted", zap.String("client_id", req.client.ID), zap.String("sub", user.subject), zap.String("scope", req.scope))
		s.issueCode(w, r, req, user)
	case "deny":
		s.audit(r.Context(), "consent denied", zap.String("client_id", req.client.ID), zap.String("sub", user.subject), zap.String("scope", req.scope))
		s.redirect(w, r, req, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}})
	default:
		s.renderError(w, http.StatusBadRequest, ErrInvalidRequest("decision must be approve or deny"), req.client)
	}
}

// rememberConsent adds the granted scopes to what the user granted before.
func (s *Server) rememberConsent(r *http.Request, subject string, req *authzRequest) error {
	scopes := strings.Fields(req.scope)
	if old, err := s.store.Consent(r.Context(), subject, req.client.ID); err == nil {
		for _, sc := range old.Scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := time.Now().UTC()
	return s.store.PutConsent(r.Context(), &store.Consent{Subject: subject, ClientID: req.client.ID, Scopes: scopes,
		GrantedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenTTL)})
}

// needsConsent: skip_consent clients never ask; others ask unless the user
// already granted every scope requested.
func (s *Server) needsConsent(r *http.Request, subject string, req *authzRequest) (bool, error) {
	if req.client.SkipConsent {
		return false, nil
	}
	c, err := s.store.Consent(r.Context(), subject, req.client.ID)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, sc := range strings.Fields(req.scope) {
		if !slices.Contains(c.Scopes, sc) {
			return true, nil
		}
	}
	return false, nil
}
