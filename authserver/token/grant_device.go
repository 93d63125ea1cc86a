package token

// RFC 8628 §3.1-§3.5: the device authorization endpoint and the device code grant.

import (
	"crypto/rand"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// userCodeAlphabet is RFC 8628 §6.1's: consonants only, so no words form,
// and no letters that read like digits.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// userCodeLen letters give 20^8 ≈ 2.56·10^10 codes (34 bits). An attacker
// with A addresses (IPv6: /64s) gets authserver's DefaultDeviceFailuresPerIP
// guesses per address per 15 minutes on the device page; with L codes live at once, the chance that any
// guess in a window hits one is about A·10·L / 2.56·10^10: for 1,000
// addresses and 1,000 live codes, 4·10^-4 per 15 minutes. There is no
// limit over all addresses, which an attacker could trip to shut the flow
// off for everyone.
const userCodeLen = 8

// deviceGrace keeps an expired device code's record so that late polls get
// expired_token rather than invalid_grant.
const deviceGrace = 10 * time.Minute

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

// NormalizeUserCode accepts a user code in any case, with or without the
// dash and spaces; it returns the stored form.
func NormalizeUserCode(s string) (string, bool) {
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

// FormatUserCode is how people see a code: WDJB-MJHT.
func FormatUserCode(c string) string { return c[:4] + "-" + c[4:] }

// DeviceAuthorization is the device authorization response (RFC 8628 §3.2).
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// ServeDeviceAuthorization is POST /oauth/device.
func (s *Service) ServeDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	form, e := oauth.ReadForm(w, r)
	if e != nil {
		oauth.WriteError(w, e)
		return
	}
	cl, e := s.clientAuth.Authenticate(r, form)
	if e != nil {
		oauth.WriteError(w, e)
		return
	}
	if !slices.Contains(cl.GrantTypes, client.GrantDeviceCode) {
		oauth.WriteError(w, oauth.ErrUnauthorizedClient("client %q is not allowed the device_code grant", cl.ID))
		return
	}
	scope, e := client.ResolveScope(form.Get("scope"), cl.Scopes)
	if e != nil {
		oauth.WriteError(w, e)
		return
	}
	resource, e := s.resources.Requested(form)
	if e != nil {
		oauth.WriteError(w, e)
		return
	}
	ctx, cancel := oauth.RequestContext(r)
	defer cancel()
	now := time.Now().UTC()
	for range 5 {
		dc := NewGrantToken(oauth.RandomToken(16))
		d := &store.DeviceCode{UserCode: newUserCode(), DeviceCodeHash: dc.Hash(), ClientID: cl.ID, Scope: scope,
			Status: store.DevicePending, GrantID: dc.Grant, Interval: s.cfg.DeviceInterval,
			ValidUntil: now.Add(s.cfg.DeviceCodeTTL), ExpiresAt: now.Add(s.cfg.DeviceCodeTTL + deviceGrace), Resource: resource}
		err := s.store.CreateDeviceCode(ctx, d)
		if errors.Is(err, store.ErrExists) {
			continue // a live code has these letters: draw again
		}
		if err != nil {
			oauth.WriteError(w, s.failures.Store("storing a device code", err))
			return
		}
		s.audit(ctx, "device authorization started", zap.String("client_id", cl.ID), zap.String("scope", scope), zap.String("grant_id", d.GrantID))
		shown := FormatUserCode(d.UserCode)
		// The device code names its record (the grant) and carries a
		// secret only the device has.
		oauth.WriteJSON(w, http.StatusOK, &DeviceAuthorization{
			DeviceCode:              dc.String(),
			UserCode:                shown,
			VerificationURI:         s.cfg.VerificationURI,
			VerificationURIComplete: s.cfg.VerificationURI + "?user_code=" + shown,
			ExpiresIn:               int64(s.cfg.DeviceCodeTTL / time.Second),
			Interval:                int64(s.cfg.DeviceInterval / time.Second),
		})
		return
	}
	oauth.WriteError(w, oauth.ErrTemporarilyUnavailable("could not find a free user code; retry"))
}

// deviceCodeGrant is the token request of RFC 8628 §3.4: each poll is one
// atomic step in the store (store.DevicePoll), which paces the device,
// redeems an approved authorization and stores its first refresh token.
// Polls come up to a fifth of the interval early before they count as too
// fast (store.PollTolerance), so that clients polling on a ticker (as
// golang.org/x/oauth2 does) are not punished for network jitter.
type deviceCodeGrant struct{ s *Service }

func pollError(code, format string, args ...any) *oauth.Error {
	return oauth.NewError(code, http.StatusBadRequest, format, args...)
}

func (g deviceCodeGrant) handle(req *tokenRequest) (*TokenResponse, *oauth.Error) {
	ctx := req.storeContext()
	invalid := oauth.ErrInvalidGrant("the device_code is not valid: it was never issued, or expired long ago")
	dc, e := req.grantToken("device_code", invalid)
	if e != nil {
		return nil, e
	}
	grantID := dc.Grant
	requested, e := g.s.resources.Requested(req.form)
	if e != nil {
		return nil, e
	}
	first, refresh, e := g.s.firstRefreshToken(req, grantID)
	if e != nil {
		return nil, e
	}
	d, outcome, err := g.s.store.PollDeviceCode(ctx, store.DevicePoll{GrantID: grantID, Hash: dc.Hash(),
		ClientID: req.client.ID, Now: time.Now(), First: first})
	switch {
	case errors.Is(err, store.ErrNotFound):
		g.s.metrics.DevicePoll("invalid")
		return nil, invalid
	case err != nil:
		return nil, g.s.failures.Store("polling a device code", err)
	}
	g.s.metrics.DevicePoll(pollResults[outcome])
	switch outcome {
	case store.PollRedeemed:
		if e := sameResource(requested, d.Resource); e != nil {
			return nil, e
		}
		return g.s.issueTokens(req, grantState{id: d.GrantID, subject: d.Subject, scope: d.Scope, authTime: d.AuthTime, resource: d.Resource,
			openID: d.OpenID}, d.Scope, refresh)
	case store.PollUsed:
		return nil, oauth.ErrInvalidGrant("the device_code was already redeemed")
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
