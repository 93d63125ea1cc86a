package authserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// sessionCookie holds a browser's login state. It is stateless: signed
// with the issuer's cookie secret (shared through the store), so every
// instance reads it and nobody can forge or alter it.
const sessionCookie = "tokengate_session"

// sessionTTL keeps login sessions short: they only carry a person through
// one authorization.
const sessionTTL = 30 * time.Minute

// session is what the cookie says.
type session struct {
	// ID is random and renewed at login, so a session fixed before login
	// is worthless after it.
	ID       string `json:"sid"`
	Subject  string `json:"sub,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
	Expires  int64  `json:"exp"`
}

func (s *Server) mac(parts ...string) []byte {
	return keyedMAC(nil, s.keys.CookieSecret(), parts...)
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

// readSession returns the browser's valid session, or nil.
func (s *Server) readSession(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	payload, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil
	}
	want := base64.RawURLEncoding.EncodeToString(s.mac("session", payload))
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	sess := new(session)
	if json.Unmarshal(raw, sess) != nil || time.Now().Unix() >= sess.Expires || sess.ID == "" {
		return nil
	}
	return sess
}

// writeSession sets the session cookie.
func (s *Server) writeSession(w http.ResponseWriter, sess *session) {
	raw, _ := json.Marshal(sess)
	payload := base64.RawURLEncoding.EncodeToString(raw)
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    payload + "." + base64.RawURLEncoding.EncodeToString(s.mac("session", payload)),
		Path:     s.cookiePath(),
		MaxAge:   int(time.Until(time.Unix(sess.Expires, 0)).Seconds()),
		HttpOnly: true,
		Secure:   s.issuer.Scheme == "https",
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) cookiePath() string {
	if s.issuer.Path == "" {
		return "/"
	}
	return s.issuer.Path
}

// ensureSession returns the browser's session, starting an anonymous one
// (which anchors the CSRF token of the login form) if there is none.
func (s *Server) ensureSession(w http.ResponseWriter, r *http.Request) *session {
	if sess := s.readSession(r); sess != nil {
		return sess
	}
	sess := &session{ID: randomToken(16), Expires: time.Now().Add(sessionTTL).Unix()}
	s.writeSession(w, sess)
	return sess
}

// csrfToken is the token a form of this session must carry back.
func (s *Server) csrfToken(sess *session) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", sess.ID))
}

// checkCSRF verifies a posted form's csrf_token against the session.
func (s *Server) checkCSRF(token string, sess *session) bool {
	return sess != nil && token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrfToken(sess))) == 1
}
