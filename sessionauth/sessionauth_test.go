package sessionauth

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/login"
)

// The way back after sign-in is a path on the site, never another site.
func TestSameSitePath(t *testing.T) {
	for in, want := range map[string]string{
		"/dashboard?tab=2":       "/dashboard?tab=2",
		"//evil.example/x":       "/",
		"/\\evil.example":        "/",
		"https://evil.example/x": "/",
		"javascript:alert(1)":    "/",
		"":                       "/",
		"/a\r\nSet-Cookie: x=y":  "/",
	} {
		if got := sameSitePath(in); got != want {
			t.Errorf("sameSitePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// On https the cookies are __Host- ones, which no other host or path can
// set; plain http (loopback) cannot have them.
func TestCookieNames(t *testing.T) {
	r := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
	if cookieName(r) != "tg_session" || loginCookieName(r) != "tg_login" {
		t.Fatalf("on http: %s %s", cookieName(r), loginCookieName(r))
	}
	r.TLS = &tls.ConnectionState{}
	if cookieName(r) != "__Host-tg_session" || loginCookieName(r) != "__Host-tg_login" || origin(r) != "https://127.0.0.1" {
		t.Fatalf("on https: %s %s %s", cookieName(r), loginCookieName(r), origin(r))
	}
}

// A page load is sent to sign in; a script's request is not.
func TestIsNavigation(t *testing.T) {
	for _, c := range []struct {
		method string
		header map[string]string
		want   bool
	}{
		{"GET", map[string]string{"Sec-Fetch-Mode": "navigate"}, true},
		{"GET", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "text/html"}, false},
		{"GET", map[string]string{"Accept": "text/html,application/xhtml+xml"}, true},
		{"GET", map[string]string{"Accept": "application/json"}, false},
		{"POST", map[string]string{"Sec-Fetch-Mode": "navigate"}, false},
	} {
		r := httptest.NewRequest(c.method, "/", nil)
		for k, v := range c.header {
			r.Header.Set(k, v)
		}
		if got := isNavigation(r); got != c.want {
			t.Errorf("%s %v: %v, want %v", c.method, c.header, got, c.want)
		}
	}
}

// A token is refreshed when less than a quarter of its life, or a minute,
// is left, whichever is less.
func TestRefreshDue(t *testing.T) {
	h := &Handler{}
	now := time.Now()
	for _, c := range []struct {
		life, left time.Duration
		want       bool
	}{
		{time.Hour, 2 * time.Minute, false},
		{time.Hour, 50 * time.Second, true},
		{4 * time.Second, 2 * time.Second, false},
		{4 * time.Second, 900 * time.Millisecond, true},
	} {
		s := &store.EdgeSession{RefreshToken: "rt", AccessIssuedAt: now.Add(c.left - c.life), AccessExpiresAt: now.Add(c.left)}
		if got := h.refreshDue(s, now); got != c.want {
			t.Errorf("life %s, %s left: %v, want %v", c.life, c.left, got, c.want)
		}
	}
	if h.refreshDue(&store.EdgeSession{AccessExpiresAt: now}, now) {
		t.Error("a session without a refresh token is due")
	}
}

// downStore is a store that cannot be reached.
type downStore struct{ Stores }

func (downStore) EdgeSession(context.Context, string) (*store.EdgeSession, error) {
	return nil, errors.New("connection refused")
}

// A store that cannot be reached is this side's trouble: 503, not a
// sign-in (which would send every person round in circles).
func TestStoreDownIsUnavailable(t *testing.T) {
	p, err := login.New(login.Config{Name: "self", Issuer: "http://127.0.0.1:9", ClientID: "app", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Site: "self:app", Provider: p, Self: true}, downStore{}, Collaborators{Revocations: introspect.NewRevocations()})
	if err != nil {
		t.Fatal(err)
	}
	for _, accept := range []string{"text/html", "application/json"} {
		r := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
		r.Header.Set("Accept", accept)
		r.AddCookie(&http.Cookie{Name: "tg_session", Value: "abc"})
		w := httptest.NewRecorder()
		if s := h.Authenticate(w, r); s != nil || w.Code != http.StatusServiceUnavailable {
			t.Errorf("Accept %s: session %v, status %d, want 503", accept, s, w.Code)
		}
	}
}
