package web

// RFC 8628 §3.3: the person's page, where the user code is entered and the request approved.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/token"
	"go.uber.org/zap"
)

// Default limit on entering user codes on /device (RFC 8628 §5.1): wrong
// codes per client address (IPv6: per /64) in deviceWindow (see
// token's userCodeLen for what that allows).
const (
	deviceWindow               = 15 * time.Minute
	DefaultDeviceFailuresPerIP = 10
)

// lookupUserCode finds the pending device authorization a person typed,
// within the attempt limit: failures count per client address, and once
// over, no code is even looked up. On failure
// it returns the HTTP status and a message for the person.
func (s *Service) lookupUserCode(r *http.Request, typed string) (*store.DeviceCode, *client.Client, int, string) {
	ctx := r.Context()
	limits := oauth.Limits{Window: deviceWindow, Counters: []oauth.Counted{
		{Key: "device:ip:" + s.address(r), Limit: s.cfg.DeviceFailuresPerIP}}}
	if until, limited, err := limits.Locked(ctx, s.store); err != nil {
		s.failures.Store("reading a rate limit", err)
		return nil, nil, http.StatusServiceUnavailable, "This page is unavailable right now; please try again shortly."
	} else if limited {
		return nil, nil, http.StatusTooManyRequests, fmt.Sprintf("Too many wrong codes. Try again after %s UTC.", until.UTC().Format("15:04"))
	}
	fail := func() (*store.DeviceCode, *client.Client, int, string) {
		limits.Fail(ctx, s.store, s.failures)
		s.audit(ctx, "wrong user code")
		return nil, nil, http.StatusBadRequest, "That code is not valid. Check the code your device shows and try again."
	}
	code, ok := token.NormalizeUserCode(typed)
	if !ok {
		return fail()
	}
	d, err := s.store.DeviceCode(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return fail()
	}
	if err != nil {
		s.failures.Store("looking up a device code", err)
		return nil, nil, http.StatusServiceUnavailable, "This page is unavailable right now; please try again shortly."
	}
	if d.Status != store.DevicePending || time.Now().After(d.ValidUntil) {
		return fail()
	}
	c, _, err := s.clients.Lookup(ctx, d.ClientID)
	if err != nil {
		return fail() // the client was deleted meanwhile
	}
	return d, c, http.StatusOK, ""
}

// ServeDevice is the person's page: type the code (or arrive with it from
// verification_uri_complete), sign in, then approve or deny on the consent
// page, which names the application and scopes so a person can spot a
// phishing attempt. Device requests always ask: the device is not the
// browser, so a remembered consent proves nothing about who started it.
func (s *Service) ServeDevice(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.renderError(w, http.StatusMethodNotAllowed, oauth.MethodNotAllowed(w, http.MethodGet, http.MethodPost), nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, oauth.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, http.StatusBadRequest, oauth.ErrInvalidRequest("the form could not be read"), nil)
		return
	}
	sess := s.ensureSession(w, r)
	typed := r.Form.Get("user_code")
	entry := func(status int, msg string) {
		s.renderPage(w, status, "device.html", &PageData{Title: "Connect a device", Error: msg, UserCode: typed,
			Action: s.issuer.Path + PathDevice, CSRFToken: s.csrfToken(sess)})
	}
	if r.Method == http.MethodPost && !s.checkCSRF(r, r.PostForm.Get("csrf_token"), sess) {
		entry(http.StatusForbidden, "This form expired or did not come from this site. Please enter the code again.")
		return
	}
	user := s.currentUser(r)
	if typed == "" || (r.Method == http.MethodGet && user == nil) {
		// From verification_uri_complete the code arrives pre-filled: the
		// person still confirms it matches the device (RFC 8628 §5.4).
		entry(http.StatusOK, "")
		return
	}
	d, client, status, msg := s.lookupUserCode(r, typed)
	if d == nil {
		entry(status, msg)
		return
	}
	shown := token.FormatUserCode(d.UserCode)
	if user == nil {
		s.redirectTo(w, r, PathLogin, url.Values{"return_to": {s.issuer.Path + PathDevice + "?" + url.Values{"user_code": {shown}}.Encode()}})
		return
	}
	decision := r.PostForm.Get("decision")
	if decision == "" {
		s.renderPage(w, http.StatusOK, "consent.html", &PageData{Title: "Allow access?", Client: pageClient(client),
			Scopes: s.pageScopes(d.Scope), Resource: s.pageResource(d.Resource), User: user.display, Action: s.issuer.Path + PathDevice, UserCode: shown,
			CSRFToken: s.csrfToken(sess), Hidden: map[string]string{"user_code": shown}})
		return
	}
	status2 := map[string]store.DeviceStatus{"approve": store.DeviceApproved, "deny": store.DeviceDenied}[decision]
	if status2 == "" {
		s.renderError(w, http.StatusBadRequest, oauth.ErrInvalidRequest("decision must be approve or deny"), client)
		return
	}
	if status2 == store.DeviceApproved {
		// Recorded before the approval, so that the device's first poll
		// after it finds the record to note its use on.
		if err := s.store.PutGrant(r.Context(), s.newGrant(d.GrantID, client, user, d.Scope, d.Resource, d.ExpiresAt)); err != nil {
			s.renderError(w, http.StatusServiceUnavailable, s.failures.Store("recording a grant", err), client)
			return
		}
	}
	_, err := s.store.UpdateDeviceCode(r.Context(), d.UserCode, func(d *store.DeviceCode) error {
		if d.Status != store.DevicePending {
			return errors.New("decided already")
		}
		d.Status, d.Subject, d.AuthTime, d.OpenID = status2, user.subject, user.authTime, user.openIDFor(d.Scope)
		return nil
	})
	if err != nil {
		entry(http.StatusConflict, "This code was already used. Start again on your device.")
		return
	}

	data := &PageData{Client: pageClient(client), Scopes: s.pageScopes(d.Scope), Resource: s.pageResource(d.Resource), Decided: true}
	if status2 == store.DeviceApproved {
		s.audit(r.Context(), "consent granted", zap.String("client_id", client.ID), zap.String("sub", user.subject), zap.String("scope", d.Scope),
			zap.String("grant_id", d.GrantID), zap.String("flow", "device"))
		data.Title, data.Message = "Device connected", "You can return to your device now: it will finish signing in by itself."
	} else {
		s.audit(r.Context(), "consent denied", zap.String("client_id", client.ID), zap.String("sub", user.subject), zap.String("scope", d.Scope),
			zap.String("grant_id", d.GrantID), zap.String("flow", "device"))
		data.Title, data.Message = "Request denied", "The device will not get access. You can close this page."
		data.Scopes = nil // nothing was granted
	}
	s.renderPage(w, http.StatusOK, "device_done.html", data)
}
