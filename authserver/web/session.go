package web

// The browser session and CSRF tokens of the pages (RFC 6749 §10.12).

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/oauth"
)

// sessionCookie holds a browser's login state. It is stateless: signed
// with the issuer's cookie secret (shared through the store), so every
// instance reads it and nobody can forge or alter it.
const sessionCookie = "tokengate_session"

// SessionTTL keeps browser sessions short: a person signed in signs in to
// the applications they open within it without a page, and signs in again
// after it.
const SessionTTL = 30 * time.Minute

// session is what the cookie says.
type session struct {
	// ID is random and renewed at login, so a session fixed before login
	// is worthless after it.
	ID       string `json:"sid"`
	Subject  string `json:"sub,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
	// SignedInMS is AuthTime in milliseconds: a revocation of the person
	// ends the sessions signed in before it, not one signed in just
	// after it within the same second.
	SignedInMS int64 `json:"at_ms,omitempty"`
	Expires    int64 `json:"exp"`
	// Provider names the login provider the person signed in through,
	// and Name, Username, Email and EmailVerified what it said of them
	// (OpenID Connect's claims); all empty for a password sign-in.
	Provider      string `json:"idp,omitempty"`
	Name          string `json:"name,omitempty"`
	Username      string `json:"un,omitempty"`
	Email         string `json:"em,omitempty"`
	EmailVerified bool   `json:"ev,omitempty"`
}

// errNoCookieSecret means the issuer holds no usable cookie secret.
var errNoCookieSecret = errors.New("no cookie secret is loaded")

// mac is the issuer's MAC of parts, or nil when it holds no usable secret.
func (s *Service) mac(parts ...string) []byte {
	key := s.keys.CookieSecret()
	if len(key) < keys.MinCookieSecret {
		return nil
	}
	return keyedMAC(nil, key, parts...)
}

// maxTypedBytes caps what of a person's typing goes into a key's hash:
// enough to tell usernames apart, no more work for a 64 KB one.
const maxTypedBytes = 256

// typedKey is how text a person typed (a username, perhaps a password
// typed in its place) appears in store keys: a keyed hash, shared by every
// instance, of its first maxTypedBytes bytes.
func (s *Service) typedKey(typed string) (string, error) {
	if len(typed) > maxTypedBytes {
		typed = typed[:maxTypedBytes]
	}
	m := s.mac("store key", typed)
	if m == nil {
		return "", errNoCookieSecret
	}
	return base64.RawURLEncoding.EncodeToString(m[:16]), nil
}

// keyedMAC appends to dst the HMAC-SHA256 under key of parts, each ended by
// a zero byte so that no two lists of parts read the same.
func keyedMAC(dst, key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(dst)
}

// readSession returns the browser's valid session, or nil. A session
// someone signed in to and that was ended since (a logout on any
// instance, the person's revocation) is none.
func (s *Service) readSession(r *http.Request) *session {
	sess := new(session)
	if !s.readSigned(r, sessionCookie, "session", sess) || time.Now().Unix() >= sess.Expires || sess.ID == "" {
		return nil
	}
	signedIn := time.Unix(sess.AuthTime, 0)
	if sess.SignedInMS != 0 {
		signedIn = time.UnixMilli(sess.SignedInMS)
	}
	if sess.Subject != "" && s.sessions.Ended(sess.ID, sess.Subject, signedIn) {
		return nil
	}
	return sess
}

// writeSession sets the session cookie; without a cookie secret there is
// none to set, and the next page finds no session.
func (s *Service) writeSession(w http.ResponseWriter, sess *session) {
	s.writeSigned(w, sessionCookie, "session", sess, time.Until(time.Unix(sess.Expires, 0)))
}

// readSigned decodes into v the JSON of the cookie name that the issuer
// MACed for purpose; false when it is absent, altered or unreadable.
func (s *Service) readSigned(r *http.Request, name, purpose string, v any) bool {
	c, err := r.Cookie(name)
	if err != nil {
		return false
	}
	payload, sig, ok := strings.Cut(c.Value, ".")
	m := s.mac(purpose, payload)
	if !ok || m == nil || subtle.ConstantTimeCompare([]byte(sig), []byte(base64.RawURLEncoding.EncodeToString(m))) != 1 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	return err == nil && json.Unmarshal(raw, v) == nil
}

// writeSigned sets the cookie name to v's JSON, MACed for purpose, for
// life (HttpOnly, Secure on https, SameSite Lax: the top-level GETs that
// bring a person back from elsewhere carry it, nothing else does). It
// reports false, setting nothing, without a cookie secret.
func (s *Service) writeSigned(w http.ResponseWriter, name, purpose string, v any, life time.Duration) bool {
	raw, _ := json.Marshal(v)
	payload := base64.RawURLEncoding.EncodeToString(raw)
	m := s.mac(purpose, payload)
	if m == nil {
		return false
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: payload + "." + base64.RawURLEncoding.EncodeToString(m), Path: s.cookiePath(),
		MaxAge: int(life.Seconds()), HttpOnly: true, Secure: s.issuer.Scheme == "https", SameSite: http.SameSiteLaxMode})
	return true
}

// clearCookie removes the cookie name.
func (s *Service) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Path: s.cookiePath(), MaxAge: -1, HttpOnly: true, Secure: s.issuer.Scheme == "https", SameSite: http.SameSiteLaxMode})
}

func (s *Service) cookiePath() string {
	if s.issuer.Path == "" {
		return "/"
	}
	return s.issuer.Path
}

// ensureSession returns the browser's session, starting an anonymous one
// (which anchors the CSRF token of the login form) if there is none.
func (s *Service) ensureSession(w http.ResponseWriter, r *http.Request) *session {
	if sess := s.readSession(r); sess != nil {
		return sess
	}
	sess := &session{ID: oauth.RandomToken(16), Expires: time.Now().Add(SessionTTL).Unix()}
	s.writeSession(w, sess)
	return sess
}

// csrfToken is the token a form of this session must carry back; "" when
// there is no cookie secret, which no check accepts.
func (s *Service) csrfToken(sess *session) string {
	m := s.mac("csrf", sess.ID)
	if m == nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(m)
}

// formOrigins is the one check of where a posted form came from, for
// every page form (sign-in, consent, device, account, sign-out and the
// console): the browser's Sec-Fetch-Site, else its Origin against the
// Host, as Go's CrossOriginProtection does it. The CSRF token is a second
// check that does not depend on the browser.
var formOrigins = http.NewCrossOriginProtection()

// SameOriginForm says whether a posted form came from this site's pages,
// or from no browser at all (a script sends neither header).
func SameOriginForm(r *http.Request) bool { return formOrigins.Check(r) == nil }

// checkCSRF verifies a posted form: it came from this site (SameOriginForm)
// and its csrf_token is the session's.
func (s *Service) checkCSRF(r *http.Request, token string, sess *session) bool {
	if sess == nil || token == "" || !SameOriginForm(r) {
		return false
	}
	want := s.csrfToken(sess)
	return want != "" && subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1
}
