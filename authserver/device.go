package authserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	qrcode "github.com/yeqown/go-qrcode/v2"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/store"
)

// The device authorization grant (RFC 8628).

// userCodeAlphabet is RFC 8628 §6.1's: consonants only, so no words form,
// and no letters that read like digits.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// userCodeLen letters give 20^8 ≈ 2.56·10^10 codes (34 bits). An attacker
// with A addresses (IPv6: /64s) gets DefaultDeviceFailuresPerIP guesses per
// address per deviceWindow; with L codes live at once, the chance that any
// guess in a window hits one is about A·10·L / 2.56·10^10: for 1,000
// addresses and 1,000 live codes, 4·10^-4 per 15 minutes. There is no
// limit over all addresses, which an attacker could trip to shut the flow
// off for everyone.
const userCodeLen = 8

// deviceGrace keeps an expired device code's record so that late polls get
// expired_token rather than invalid_grant.
const deviceGrace = 10 * time.Minute

// Default limit on entering user codes on /device (RFC 8628 §5.1): wrong
// codes per client address (IPv6: per /64) in deviceWindow.
const (
	deviceWindow               = 15 * time.Minute
	DefaultDeviceFailuresPerIP = 10
)

func newUserCode() string {
	// Rejection sampling: 256 is not a multiple of 20, so bytes ≥ 240
	// would bias the first letters.
	out := make([]byte, 0, userCodeLen)
	buf := make([]byte, 16)
	for len(out) < userCodeLen {
		_, _ = rand.Read(buf)
		for _, b := range buf {
			if b < 240 && len(out) < userCodeLen {
				out = append(out, userCodeAlphabet[int(b)%len(userCodeAlphabet)])
			}
		}
	}
	return string(out)
}

// normalizeUserCode accepts a user code in any case, with or without the
// dash and spaces; it returns the stored form.
func normalizeUserCode(s string) (string, bool) {
	s = strings.ToUpper(strings.NewReplacer("-", "", " ", "", "\t", "").Replace(s))
	if len(s) != userCodeLen {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(userCodeAlphabet, rune(s[i])) {
			return "", false
		}
	}
	return s, true
}

// formatUserCode is how people see a code: WDJB-MJHT.
func formatUserCode(c string) string { return c[:4] + "-" + c[4:] }

// DeviceAuthorization is the device authorization response (RFC 8628 §3.2).
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// handleDeviceAuthorization is POST /oauth/device.
func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	client, e := s.authenticateClient(r, form)
	if e != nil {
		writeError(w, e)
		return
	}
	if !slices.Contains(client.GrantTypes, GrantDeviceCode) {
		writeError(w, ErrUnauthorizedClient("client %q is not allowed the device_code grant", client.ID))
		return
	}
	scope, e := resolveScope(form.Get("scope"), client.Scopes)
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	secret := randomToken(32)
	now := time.Now().UTC()
	for range 5 {
		d := &store.DeviceCode{UserCode: newUserCode(), DeviceCodeHash: hashToken(secret), ClientID: client.ID, Scope: scope,
			Status: store.DevicePending, GrantID: randomToken(16), Interval: s.cfg.DeviceInterval,
			ValidUntil: now.Add(s.cfg.DeviceCodeTTL), ExpiresAt: now.Add(s.cfg.DeviceCodeTTL + deviceGrace)}
		err := s.store.CreateDeviceCode(ctx, d)
		if errors.Is(err, store.ErrExists) {
			continue // a live code has these letters: draw again
		}
		if err != nil {
			writeError(w, s.storeError("storing a device code", err))
			return
		}
		s.audit(ctx, "device authorization started", zap.String("client_id", client.ID), zap.String("scope", scope), zap.String("grant_id", d.GrantID))
		shown := formatUserCode(d.UserCode)
		// The device code names its record (the grant) and carries a
		// secret only the device has.
		writeJSON(w, http.StatusOK, &DeviceAuthorization{
			DeviceCode:              d.GrantID + "." + secret,
			UserCode:                shown,
			VerificationURI:         s.endpointURL(PathDevice),
			VerificationURIComplete: s.endpointURL(PathDevice) + "?user_code=" + shown,
			ExpiresIn:               int64(s.cfg.DeviceCodeTTL / time.Second),
			Interval:                int64(s.cfg.DeviceInterval / time.Second),
		})
		return
	}
	writeError(w, ErrTemporarilyUnavailable("could not find a free user code; retry"))
}

// deviceCodeGrant is the token request of RFC 8628 §3.4: each poll is one
// atomic step in the store (store.DevicePoll), which paces the device,
// redeems an approved authorization and stores its first refresh token.
// Polls come up to a fifth of the interval early before they count as too
// fast (store.PollTolerance), so that clients polling on a ticker (as
// golang.org/x/oauth2 does) are not punished for network jitter.
type deviceCodeGrant struct{ s *Server }

func pollError(code, format string, args ...any) *Error {
	return oauthError(code, http.StatusBadRequest, format, args...)
}

func (g deviceCodeGrant) handle(ctx context.Context, req *tokenRequest) (*TokenResponse, *Error) {
	raw := req.form.Get("device_code")
	if raw == "" {
		return nil, ErrInvalidRequest("device_code is missing")
	}
	invalid := ErrInvalidGrant("the device_code is not valid: it was never issued, or expired long ago")
	grantID, secret, ok := strings.Cut(raw, ".")
	if !ok || grantID == "" || secret == "" {
		return nil, invalid
	}
	var first *store.Successor
	var refresh string
	if slices.Contains(req.client.GrantTypes, GrantRefreshToken) {
		first, refresh = g.s.newRefreshToken(grantID)
	}
	d, outcome, err := g.s.store.PollDeviceCode(ctx, store.DevicePoll{GrantID: grantID, Hash: hashToken(secret),
		ClientID: req.client.ID, Now: time.Now(), First: first})
	switch {
	case errors.Is(err, store.ErrNotFound):
		g.s.metrics.DevicePoll("invalid")
		return nil, invalid
	case err != nil:
		return nil, g.s.storeError("polling a device code", err)
	}
	g.s.metrics.DevicePoll(pollResults[outcome])
	switch outcome {
	case store.PollRedeemed:
		return g.s.issueTokens(req, grantState{id: d.GrantID, subject: d.Subject, scope: d.Scope, authTime: d.AuthTime}, d.Scope, refresh)
	case store.PollUsed:
		return nil, ErrInvalidGrant("the device_code was already redeemed")
	case store.PollExpired:
		return nil, pollError("expired_token", "the device code expired; start a new device authorization")
	case store.PollSlowDown:
		return nil, pollError("slow_down", "polling too fast: wait at least %d seconds between requests", int64(d.Interval/time.Second))
	case store.PollDenied:
		return nil, pollError("access_denied", "the user denied the request")
	default:
		return nil, pollError("authorization_pending", "the user has not yet approved or denied the request")
	}
}

// pollResults names each poll outcome in the metrics: the RFC 8628 error
// code it answers with, or what happened.
var pollResults = map[store.PollOutcome]string{
	store.PollPending:  "authorization_pending",
	store.PollSlowDown: "slow_down",
	store.PollDenied:   "access_denied",
	store.PollExpired:  "expired_token",
	store.PollRedeemed: "issued",
	store.PollUsed:     "redeemed_before",
}

// lookupUserCode finds the pending device authorization a person typed,
// within the attempt limit: failures count per client address, and once
// over, no code is even looked up. On failure
// it returns the HTTP status and a message for the person.
func (s *Server) lookupUserCode(r *http.Request, typed string) (*store.DeviceCode, *Client, int, string) {
	ctx := r.Context()
	limits := failureLimits{window: deviceWindow, counters: []limitedCounter{
		{"device:ip:" + s.addressKey(r), s.cfg.DeviceFailuresPerIP}}}
	if until, limited, err := s.locked(ctx, limits); err != nil {
		s.storeError("reading a rate limit", err)
		return nil, nil, http.StatusServiceUnavailable, "This page is unavailable right now; please try again shortly."
	} else if limited {
		return nil, nil, http.StatusTooManyRequests, fmt.Sprintf("Too many wrong codes. Try again after %s UTC.", until.UTC().Format("15:04"))
	}
	fail := func() (*store.DeviceCode, *Client, int, string) {
		s.failed(ctx, limits)
		s.audit(ctx, "wrong user code")
		return nil, nil, http.StatusBadRequest, "That code is not valid. Check the code your device shows and try again."
	}
	code, ok := normalizeUserCode(typed)
	if !ok {
		return fail()
	}
	d, err := s.store.DeviceCode(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return fail()
	}
	if err != nil {
		s.storeError("looking up a device code", err)
		return nil, nil, http.StatusServiceUnavailable, "This page is unavailable right now; please try again shortly."
	}
	if d.Status != store.DevicePending || time.Now().After(d.ValidUntil) {
		return fail()
	}
	c, err := s.lookupClient(ctx, d.ClientID)
	if err != nil {
		return fail() // the client was deleted meanwhile
	}
	return d, c, http.StatusOK, ""
}

// handleDevice is the person's page: type the code (or arrive with it from
// verification_uri_complete), sign in, then approve or deny on the consent
// page, which names the application and scopes so a person can spot a
// phishing attempt. Device requests always ask: the device is not the
// browser, so a remembered consent proves nothing about who started it.
func (s *Server) handleDevice(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		s.renderError(w, http.StatusMethodNotAllowed, ErrInvalidRequest("use GET or POST"), nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, http.StatusBadRequest, ErrInvalidRequest("the form could not be read"), nil)
		return
	}
	sess := s.ensureSession(w, r)
	typed := r.Form.Get("user_code")
	entry := func(status int, msg string) {
		s.renderPage(w, status, "device.html", &PageData{Title: "Connect a device", Error: msg, UserCode: typed,
			Action: s.issuer.Path + PathDevice, CSRFToken: s.csrfToken(sess)})
	}
	if r.Method == http.MethodPost && !s.checkCSRF(r.PostForm.Get("csrf_token"), sess) {
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
	shown := formatUserCode(d.UserCode)
	if user == nil {
		s.redirectTo(w, r, PathLogin, url.Values{"return_to": {s.issuer.Path + PathDevice + "?" + url.Values{"user_code": {shown}}.Encode()}})
		return
	}
	decision := r.PostForm.Get("decision")
	if decision == "" {
		s.renderPage(w, http.StatusOK, "consent.html", &PageData{Title: "Allow access?", Client: pageClient(client),
			Scopes: strings.Fields(d.Scope), User: user.display, Action: s.issuer.Path + PathDevice, UserCode: shown,
			CSRFToken: s.csrfToken(sess), Hidden: map[string]string{"user_code": shown}})
		return
	}
	status2 := map[string]store.DeviceStatus{"approve": store.DeviceApproved, "deny": store.DeviceDenied}[decision]
	if status2 == "" {
		s.renderError(w, http.StatusBadRequest, ErrInvalidRequest("decision must be approve or deny"), client)
		return
	}
	_, err := s.store.UpdateDeviceCode(r.Context(), d.UserCode, func(d *store.DeviceCode) error {
		if d.Status != store.DevicePending {
			return errors.New("decided already")
		}
		d.Status, d.Subject, d.AuthTime = status2, user.subject, user.authTime
		return nil
	})
	if err != nil {
		entry(http.StatusConflict, "This code was already used. Start again on your device.")
		return
	}
	data := &PageData{Client: pageClient(client), Scopes: strings.Fields(d.Scope)}
	if status2 == store.DeviceApproved {
		s.audit(r.Context(), "consent granted", zap.String("client_id", client.ID), zap.String("sub", user.subject), zap.String("scope", d.Scope),
			zap.String("grant_id", d.GrantID), zap.String("flow", "device"))
		data.Title, data.Message = "Device connected", "You can return to your device now: it will finish signing in by itself."
	} else {
		s.audit(r.Context(), "consent denied", zap.String("client_id", client.ID), zap.String("sub", user.subject), zap.String("scope", d.Scope),
			zap.String("grant_id", d.GrantID), zap.String("flow", "device"))
		data.Title, data.Message = "Request denied", "The device will not get access. You can close this page."
	}
	s.renderPage(w, http.StatusOK, "device_done.html", data)
}

// handleDeviceQR draws verification_uri_complete for a user code as a PNG
// QR code that a device can show. It looks nothing up, so it reveals
// nothing about which codes exist.
func (s *Server) handleDeviceQR(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &Error{Code: "invalid_request", Description: "use GET", Status: http.StatusMethodNotAllowed})
		return
	}
	code, ok := normalizeUserCode(r.URL.Query().Get("user_code"))
	if !ok {
		writeError(w, ErrInvalidRequest("user_code must be a code like WDJB-MJHT"))
		return
	}
	qr, err := qrcode.NewWith(s.endpointURL(PathDevice)+"?user_code="+formatUserCode(code),
		qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		writeError(w, s.internalError("encoding a QR code", err))
		return
	}
	pw := &pngWriter{scale: 8, quiet: 4}
	if err := qr.Save(pw); err != nil {
		writeError(w, s.internalError("drawing a QR code", err))
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	_ = png.Encode(w, pw.img)
}

// pngWriter renders the QR library's module matrix as a black-on-white
// image: scale pixels per module and a quiet zone of quiet modules.
type pngWriter struct {
	scale, quiet int
	img          *image.Paletted
}

func (p *pngWriter) Write(m qrcode.Matrix) error {
	side := (m.Width() + 2*p.quiet) * p.scale
	p.img = image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.White, color.Black})
	m.Iterate(qrcode.IterDirection_ROW, func(x, y int, v qrcode.QRValue) {
		if !v.IsSet() {
			return
		}
		x0, y0 := (x+p.quiet)*p.scale, (y+p.quiet)*p.scale
		for dy := range p.scale {
			for dx := range p.scale {
				p.img.SetColorIndex(x0+dx, y0+dy, 1)
			}
		}
	})
	return nil
}

func (p *pngWriter) Close() error { return nil }
