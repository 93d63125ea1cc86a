package authserver

// RFC 6749 §2 and §2.3.1: clients, their registration rules and their authentication.

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/outbound"
)

// Grant types, as sent in grant_type and configured per client.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// GrantNames maps the short names used in configuration and the admin API
// to grant types (the device grant is also accepted by its URN). It is the
// one grant table: GrantType, ShortGrantName and the texts that list the
// grants all read it.
var GrantNames = map[string]string{
	"authorization_code": GrantAuthorizationCode,
	"client_credentials": GrantClientCredentials,
	"refresh_token":      GrantRefreshToken,
	"device_code":        GrantDeviceCode,
	GrantDeviceCode:      GrantDeviceCode,
}

// grantList is the short names for people: "a, b, c or d".
var grantList = func() string {
	var names []string
	for short, gt := range GrantNames {
		if short != gt || !strings.Contains(gt, ":") {
			names = append(names, short)
		}
	}
	slices.Sort(names)
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}()

// GrantType is the grant type a short name (or grant type) names; the
// error lists the names there are.
func GrantType(name string) (string, error) {
	if gt, ok := GrantNames[name]; ok {
		return gt, nil
	}
	return "", fmt.Errorf("unknown grant %q: use %s", name, grantList)
}

// ShortGrantName is a grant type's name in configuration.
func ShortGrantName(grantType string) string {
	for short, gt := range GrantNames {
		if gt == grantType && !strings.Contains(short, ":") {
			return short
		}
	}
	return grantType
}

// Client is a registered application, from the configuration or the store.
type Client = store.Client

// HashSecretSHA256 hashes a high-entropy secret for storage. Generated and
// configured plain secrets use it: they are random or held only in memory,
// so a slow hash buys nothing and would cost every token request.
func HashSecretSHA256(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return sha256Prefix + hex.EncodeToString(sum[:])
}

// sha256Prefix marks a stored secret hash as HashSecretSHA256's.
const sha256Prefix = "sha256:"

// IsBcryptHash reports whether h looks like a bcrypt hash, as made by
// `tokengate hash-password`.
func IsBcryptHash(h string) bool {
	_, err := bcrypt.Cost([]byte(h))
	return err == nil
}

// verifySecret checks a presented secret in constant time against a stored
// "sha256:<hex>" or bcrypt hash.
func verifySecret(stored, presented string) bool {
	if hexSum, ok := strings.CutPrefix(stored, sha256Prefix); ok {
		sum := sha256.Sum256([]byte(presented))
		want, err := hex.DecodeString(hexSum)
		return err == nil && subtle.ConstantTimeCompare(sum[:], want) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(stored), []byte(presented)) == nil
}

// ValidateClient checks a client's registration the way an operator needs
// to hear about it: every message names the field and the fix.
func ValidateClient(c *Client) error {
	if c.ID == "" {
		return errors.New("client_id is empty")
	}
	bad := func(field, value, format string, args ...any) error {
		return &ClientError{Client: c.ID, Field: field, Value: value, Err: fmt.Errorf(format, args...)}
	}
	if len(c.GrantTypes) == 0 {
		return bad("grant", "", "no grant types: give at least one of %s", grantList)
	}
	for _, g := range c.GrantTypes {
		if gt, err := GrantType(g); err != nil || gt != g {
			return bad("grant", "", "unknown grant type %q: use %s", g, grantList)
		}
	}
	if c.Public && c.SecretHash != "" {
		return bad("secret", "", "a public client has no secret")
	}
	if !c.Public && c.SecretHash == "" && len(c.JWKS) == 0 && c.JWKSURI == "" {
		return bad("", "", "a confidential client needs a secret, or keys for private_key_jwt")
	}
	if len(c.JWKS) > 0 && c.JWKSURI != "" {
		return bad("jwks_uri", c.JWKSURI, "give jwks_uri or jwks_file, not both")
	}
	if c.SecretHash != "" && (len(c.JWKS) > 0 || c.JWKSURI != "") {
		return bad("jwks_file", "", "a client authenticates with keys (jwks_file or jwks_uri) or a secret, not both")
	}
	if len(c.JWKS) > 0 && !json.Valid(c.JWKS) {
		return bad("jwks_file", "", "the key set is not JSON")
	}
	if c.JWKSURI != "" {
		if err := outbound.CheckURL(c.JWKSURI, true); err != nil {
			return bad("jwks_uri", c.JWKSURI, "%v", err)
		}
	}
	if c.Public && slices.Contains(c.GrantTypes, GrantClientCredentials) {
		return bad("grant", "", "client_credentials needs a confidential client: give it a secret or keys, or remove the grant")
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return bad("grant", "", "authorization_code needs at least one redirect_uri")
	}
	for _, u := range c.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return bad("redirect_uri", u, "redirect_uri %q: %w", u, err)
		}
	}
	for _, sc := range c.Scopes {
		if !oauth.ValidScopeToken(sc) {
			return bad("scope", sc, "scope %q has characters RFC 6749 §3.3 does not allow", sc)
		}
	}
	for _, a := range c.Audience {
		if a == "" {
			return bad("audience", "", "audience is empty")
		}
	}
	return nil
}

// ClientError is a problem with one field of a client's registration
// (Field and, where it has several values, the Value at fault; Field ""
// is the client as a whole), so that a configuration can point at the
// line that set it.
type ClientError struct {
	Client, Field, Value string
	Err                  error
}

func (e *ClientError) Error() string { return "client " + e.Client + ": " + e.Err.Error() }
func (e *ClientError) Unwrap() error { return e.Err }

// validateRedirectURI checks a redirect URI: absolute, no fragment (RFC
// 6749 §3.1.2), and https unless it is a loopback or a native app's
// private-use scheme (RFC 8252).
// A browser runs or reads what a javascript:, data:, vbscript: or file:
// URI says instead of taking it to an application, so a code sent there
// would be the attacker's; RFC 8252 §7.1 private-use schemes are reverse
// domain names, so a scheme without a dot is nobody's in particular.
func validateRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if !u.IsAbs() {
		return errors.New("must be an absolute URI (with scheme and host)")
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme == "http" || scheme == "https":
	case slices.Contains([]string{"javascript", "data", "vbscript", "file"}, scheme):
		return fmt.Errorf("the %s: scheme is not a place to send a code: use https, a loopback http URI, or a private-use scheme such as com.example.app:/callback", scheme)
	case !strings.Contains(scheme, "."):
		return fmt.Errorf("private-use scheme %q must be a reverse domain name you control, such as com.example.app (RFC 8252 §7.1)", scheme)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	if u.Scheme == "http" && !outbound.IsLoopbackHost(u.Hostname()) {
		return errors.New("http is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]); use https")
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

// validateExactRedirectURI is validateRedirectURI for a client that
// describes itself (a registration, a metadata document): besides, no
// wildcard, which a person reading the URI could take for one.
func validateExactRedirectURI(u string) error {
	if strings.Contains(u, "*") {
		return errors.New("wildcards are not allowed, each URI must be exact")
	}
	return validateRedirectURI(u)
}

// clientCredentials is what a request presented to authenticate a client.
type clientCredentials struct {
	id, secret string
	hasSecret  bool
	basic      bool
	// assertion is a private_key_jwt client_assertion (RFC 7523).
	assertion string
}

// readClientCredentials takes client_secret_basic or client_secret_post
// (RFC 6749 §2.3.1), or a bare client_id for public clients, refusing
// requests that use two methods at once.
func readClientCredentials(r *http.Request, form url.Values) (clientCredentials, *oauth.Error) {
	var cc clientCredentials
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, payload, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Basic") {
			e := oauth.ErrInvalidClient("client authentication uses HTTP Basic (client_secret_basic) or client_id and client_secret in the body; the Authorization header uses another scheme")
			e.BasicChallenge = true
			return cc, e
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
		id, secret, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok {
			e := oauth.ErrInvalidClient("the Basic credentials are not base64 of client_id:client_secret")
			e.BasicChallenge = true
			return cc, e
		}
		// RFC 6749 §2.3.1: both parts are form-urlencoded inside Basic.
		id, err1 := url.QueryUnescape(id)
		secret, err2 := url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			e := oauth.ErrInvalidClient("the Basic credentials are not form-urlencoded as RFC 6749 §2.3.1 requires")
			e.BasicChallenge = true
			return cc, e
		}
		if form.Has("client_secret") {
			return cc, oauth.ErrInvalidRequest("use one client authentication method: HTTP Basic or client_secret in the body, not both")
		}
		if form.Has("client_id") && form.Get("client_id") != id {
			return cc, oauth.ErrInvalidRequest("client_id in the body differs from the one in the Basic credentials")
		}
		return clientCredentials{id: id, secret: secret, hasSecret: true, basic: true}, nil
	}
	cc.id = form.Get("client_id")
	if form.Has("client_assertion_type") || form.Has("client_assertion") {
		if form.Get("client_assertion_type") != ClientAssertionType || form.Get("client_assertion") == "" {
			return cc, oauth.ErrInvalidClient("client_assertion_type must be %s, with the client_assertion", ClientAssertionType)
		}
		if form.Has("client_secret") {
			return cc, oauth.ErrInvalidRequest("use one client authentication method: client_assertion or client_secret, not both")
		}
		cc.assertion = form.Get("client_assertion")
		return cc, nil
	}
	cc.secret, cc.hasSecret = form.Get("client_secret"), form.Has("client_secret")
	if cc.id == "" {
		e := oauth.ErrInvalidClient("no client authentication: send client_id and client_secret with HTTP Basic or in the body")
		e.BasicChallenge = true
		return cc, e
	}
	return cc, nil
}

// authenticateClient authenticates the client of a token-endpoint style
// request. Public clients authenticate with client_id alone.
func (s *Server) authenticateClient(r *http.Request, form url.Values) (*Client, *oauth.Error) {
	cc, e := readClientCredentials(r, form)
	if e != nil {
		return nil, e
	}
	if cc.assertion != "" {
		return s.authenticateAssertion(r.Context(), cc)
	}
	fail := func(format string, args ...any) *oauth.Error {
		e := oauth.ErrInvalidClient(format, args...)
		e.BasicChallenge = cc.basic
		return e
	}
	c, _, err := s.clients.lookup(r.Context(), cc.id)
	var de *cimdError
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail("unknown client_id %q", cc.id)
	} else if errors.As(err, &de) {
		return nil, fail("%v", de)
	}
	if err != nil {
		return nil, s.storeError("looking up a client", err)
	}
	if c.Public {
		if cc.hasSecret && cc.secret != "" {
			return nil, fail("client %q is public and has no secret: send client_id only", cc.id)
		}
		return c, nil
	}
	if !cc.hasSecret {
		if usesAssertion(c) {
			return nil, fail("client %q authenticates with private_key_jwt: send client_assertion_type and client_assertion", cc.id)
		}
		return nil, fail("client %q is confidential: authenticate with its client_secret", cc.id)
	}
	if c.SecretHash == "" {
		return nil, fail("client %q has no secret: it authenticates with private_key_jwt", cc.id)
	}
	// Registered clients' secrets are generated (256 random bits): only
	// the configuration's, which people choose, are worth guessing.
	chosen := s.clients.configured(c.ID)
	var addr string
	if chosen {
		addr = s.addressKey(r)
	}
	ok, locked, retry := s.secrets.check(r.Context(), c, cc.secret, addr, chosen)
	if locked {
		return nil, fail("too many failed authentications for client %q from this address: retry after %s UTC", cc.id, retry.UTC().Format("15:04:05"))
	}
	if !ok {
		return nil, fail("client authentication failed: wrong client_secret for client %q", cc.id)
	}
	return c, nil
}
