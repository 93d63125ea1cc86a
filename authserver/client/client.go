// Package client is RFC 6749 §2's client: the one model of a registered
// application (store.Client) and its rules, used wherever a client is
// described (configuration, admin API, CLI, RFC 7591 registration,
// metadata documents); where clients are found (Registry); and how they
// authenticate (Authenticator: secrets, RFC 7523 assertions).
package client

// RFC 6749 §2 and §3.1.2: clients, their grants and their redirect URIs.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/jose"
	"github.com/tokengate/tokengate/outbound"
)

// Client is a registered application, from the configuration, the store
// or a metadata document.
type Client = store.Client

// ExchangeTarget is a resource a client may exchange tokens into (RFC
// 8693), with the most scope there.
type ExchangeTarget = store.ExchangeTarget

// Federation is a federated client's workload identity.
type Federation = store.Federation

// Metadata is RFC 7591 §2's client metadata, as registered and as
// answered (unknown members are ignored).
type Metadata = store.ClientMetadata

// Sources of a client that describes itself (Client.Source).
const (
	// SourceDynamic is a client that registered itself (RFC 7591).
	SourceDynamic = "dynamic"
	// SourceMetadataDocument is a client described by its metadata
	// document.
	SourceMetadataDocument = "metadata document"
)

// SelfDescribed says whether c described itself (a registration, a
// metadata document) rather than being registered by the operator: what
// it says of itself is its claim.
func SelfDescribed(c *Client) bool {
	return c.Source == SourceDynamic || c.Source == SourceMetadataDocument
}

// Grant types, as sent in grant_type and configured per client.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
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
	"token_exchange":     GrantTokenExchange,
	GrantTokenExchange:   GrantTokenExchange,
	"jwt_bearer":         GrantJWTBearer,
	GrantJWTBearer:       GrantJWTBearer,
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

// Validate checks a client's registration the way an operator needs
// to hear about it: every message names the field and the fix.
func Validate(c *Client) error {
	if c.ID == "" {
		return errors.New("client_id is empty")
	}
	bad := func(field, value, format string, args ...any) error {
		return &Error{Client: c.ID, Field: field, Value: value, Err: fmt.Errorf(format, args...)}
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
	if !c.Public && c.SecretHash == "" && len(c.JWKS) == 0 && c.JWKSURI == "" && c.Federated == nil {
		return bad("", "", "a confidential client needs a secret, keys for private_key_jwt, or a federated workload identity")
	}
	if f := c.Federated; f != nil {
		switch {
		case c.SecretHash != "" || len(c.JWKS) > 0 || c.JWKSURI != "":
			return bad("federated", f.Issuer, "a federated client proves itself with its workload token: give it no secret or keys")
		case outbound.CheckURL(f.Issuer, true) != nil:
			return bad("federated", f.Issuer, "federated %q must be the workload issuer's URL (https, or http for loopback)", f.Issuer)
		case f.Subject == "":
			return bad("federated", f.Issuer, "federated %s needs the exact subject of the workload: subject <sub>", f.Issuer)
		}
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
	if e := validateExchange(c, bad); e != nil {
		return e
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return bad("grant", "", "authorization_code needs at least one redirect_uri")
	}
	for _, u := range c.RedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
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
	return validateOpenID(c, bad)
}

// validateOpenID checks a client's OpenID Connect fields: logout URIs
// and the ID tokens' algorithm.
func validateOpenID(c *Client, bad func(field, value, format string, args ...any) error) error {
	for _, u := range c.PostLogoutRedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
			return bad("post_logout_redirect_uri", u, "post_logout_redirect_uri %q: %w", u, err)
		}
	}
	if u := c.BackchannelLogoutURI; u != "" {
		// The operator's URL may be plain http to loopback, like a
		// jwks_uri; a client describing itself gets https only, and the
		// guarded client's address rules when it is called.
		if err := outbound.CheckURL(u, !SelfDescribed(c)); err != nil {
			return bad("backchannel_logout_uri", u, "backchannel_logout_uri: %v", err)
		}
		if strings.Contains(u, "#") {
			return bad("backchannel_logout_uri", u, "backchannel_logout_uri %q must not contain a fragment", u)
		}
	}
	if c.BackchannelLogoutSessionRequired && c.BackchannelLogoutURI == "" {
		return bad("backchannel_logout_session_required", "", "backchannel_logout_session_required needs a backchannel_logout_uri")
	}
	if a := c.IDTokenAlg; a != "" && !slices.Contains(jose.Signing, a) {
		return bad("id_token_alg", a, "id_token_alg %q is not supported: use one of %s", a, strings.Join(jose.Signing, ", "))
	}
	return nil
}

// Error is a problem with one field of a client's registration
// (Field and, where it has several values, the Value at fault; Field ""
// is the client as a whole), so that a configuration can point at the
// line that set it.
type Error struct {
	Client, Field, Value string
	Err                  error
}

func (e *Error) Error() string { return "client " + e.Client + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ValidateRedirectURI checks a redirect URI: absolute, no fragment (RFC
// 6749 §3.1.2), and https unless it is a loopback or a native app's
// private-use scheme (RFC 8252).
// A browser runs or reads what a javascript:, data:, vbscript: or file:
// URI says instead of taking it to an application, so a code sent there
// would be the attacker's; RFC 8252 §7.1 private-use schemes are reverse
// domain names, so a scheme without a dot is nobody's in particular.
func ValidateRedirectURI(raw string) error {
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

// ValidateExactRedirectURI is ValidateRedirectURI for a client that
// describes itself (a registration, a metadata document): besides, no
// wildcard, which a person reading the URI could take for one.
func ValidateExactRedirectURI(u string) error {
	if strings.Contains(u, "*") {
		return errors.New("wildcards are not allowed, each URI must be exact")
	}
	return ValidateRedirectURI(u)
}

// ValidateWebsite checks a client's website (client_uri): an http(s) URL.
func ValidateWebsite(u string) error {
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return fmt.Errorf("%q must be an http(s) URL", u)
	}
	return nil
}

// UsesAssertion says whether a client authenticates with private_key_jwt.
func UsesAssertion(c *Client) bool { return len(c.JWKS) > 0 || c.JWKSURI != "" }

// ResolveScope returns the scopes a request obtains: those it names, each
// one the client is allowed, or all the client's scopes when it names none.
func ResolveScope(requested string, allowed []string) (string, *oauth.Error) {
	if strings.TrimSpace(requested) == "" {
		return strings.Join(allowed, " "), nil
	}
	var out []string
	for _, sc := range strings.Split(requested, " ") {
		if sc == "" {
			continue
		}
		if !oauth.ValidScopeToken(sc) {
			return "", oauth.ErrInvalidScope("scope %q has characters RFC 6749 §3.3 does not allow", sc)
		}
		if !slices.Contains(allowed, sc) {
			return "", oauth.ErrInvalidScope("scope %q is not allowed for this client; it may request: %s", sc, strings.Join(allowed, " "))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " "), nil
}

// SelfIssuer names tokengate's own issuer in exchange_from.
const SelfIssuer = "self"

// validateExchange checks a client's token exchange (RFC 8693) settings:
// the grant needs resources to exchange into; their scopes and the
// issuers of the subject tokens it may present.
func validateExchange(c *Client, bad func(field, value, format string, args ...any) error) error {
	exchanges := slices.Contains(c.GrantTypes, GrantTokenExchange)
	if exchanges && len(c.Exchange) == 0 {
		return bad("exchange", "", "token_exchange needs the resources it may exchange into: exchange <resource> <scope>...")
	}
	if !exchanges && (len(c.Exchange) > 0 || len(c.ExchangeFrom) > 0) {
		return bad("exchange", "", "exchange and exchange_from go with grant token_exchange")
	}
	for _, x := range c.Exchange {
		if err := outbound.CheckURL(x.Resource, true); err != nil || strings.Contains(x.Resource, "#") {
			return bad("exchange", x.Resource, "exchange %q must be an absolute https URL (http for loopback), without a fragment", x.Resource)
		}
		if len(x.Scopes) == 0 {
			return bad("exchange", x.Resource, "exchange %s: name the most scope a token for it may carry", x.Resource)
		}
		for _, sc := range x.Scopes {
			if !oauth.ValidScopeToken(sc) {
				return bad("exchange", x.Resource, "scope %q has characters RFC 6749 §3.3 does not allow", sc)
			}
		}
	}
	for _, iss := range c.ExchangeFrom {
		if iss != SelfIssuer && outbound.CheckURL(iss, true) != nil {
			return bad("exchange_from", iss, "exchange_from %q must be self (this issuer) or a trusted issuer's identifier", iss)
		}
	}
	return nil
}
