package token

// RFC 8693: token exchange, a client acting for the subject of a token it was
// given, at a resource it may exchange into.

import (
	"errors"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
)

// Token types of RFC 8693 §3.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
)

// tokenExchangeGrant is RFC 8693 §2: the subject token (and the actor
// token, if any) checked as bearer_auth checks tokens (in memory); the
// target one of the client's exchange resources; the scope at most the
// subject's within that resource's; the new token the subject's, for the
// resource, acted on by the client (or the actor), never outliving the
// subject token, and of its grant, so that revoking the grant revokes it.
// No refresh token: the client exchanges again.
type tokenExchangeGrant struct{ s *Service }

func (g tokenExchangeGrant) handle(req *tokenRequest) (*TokenResponse, *oauth.Error) {
	f := req.form
	switch rt := f.Get("requested_token_type"); rt {
	case "", TokenTypeAccessToken:
	case TokenTypeIDJAG:
		return g.issueIDJAG(req)
	default:
		return nil, oauth.ErrInvalidRequest("requested_token_type %q is not one this server issues: %s, or %s for another authorization server",
			rt, TokenTypeAccessToken, TokenTypeIDJAG)
	}
	target, e := exchangeTarget(req.client, f.Get("resource"), f.Get("audience"))
	if e != nil {
		return nil, e
	}
	subject, e := g.subjectToken(req, f.Get("subject_token"), f.Get("subject_token_type"), "subject")
	if e != nil {
		return nil, e
	}
	if c := subject.Confirmation; c != nil && c.JKT != "" && (req.dpop == nil || req.dpop.JKT != c.JKT) {
		return nil, oauth.ErrInvalidRequest("the subject_token is bound to a DPoP key: send the request with a DPoP proof signed with that key")
	}
	actor := &introspect.Actor{Subject: req.client.ID, Act: subject.Act}
	if raw := f.Get("actor_token"); raw != "" {
		a, e := g.subjectToken(req, raw, f.Get("actor_token_type"), "actor")
		if e != nil {
			return nil, e
		}
		actor.Subject = a.Subject
	} else if f.Get("actor_token_type") != "" {
		return nil, oauth.ErrInvalidRequest("actor_token_type without actor_token")
	}
	held := subject.Scopes()
	if f.Get("subject_token_type") == TokenTypeIDToken {
		// An ID token grants nothing by itself: the person signed in to
		// this client, and the client's exchange line is the most it
		// may act for them with there.
		held = target.Scopes
	}
	scope, e := exchangeScope(f.Get("scope"), held, target.Scopes)
	if e != nil {
		return nil, e
	}
	// Only this issuer's grant IDs name grants here; another issuer's gid
	// is its own business.
	grantID := ""
	if subject.Issuer == g.s.cfg.Issuer {
		grantID = subject.GrantID
	}
	resp, e := g.s.accessTokenResponse(req, accessTokenParams{client: req.client, subject: subject.Subject, scope: scope, grantID: grantID,
		resource: target.Resource, act: actor, until: time.Unix(subject.ExpiresAt, 0)}, "")
	if e != nil {
		return nil, e
	}
	g.noteActor(req, grantID, actor.Subject)
	resp.IssuedTokenType = TokenTypeAccessToken
	g.s.audit(req.r.Context(), "token exchanged", zap.String("client_id", req.client.ID), zap.String("sub", subject.Subject),
		zap.String("actor", actor.Subject), zap.String("resource", target.Resource), zap.String("scope", scope))
	return resp, nil
}

// noteActor records on the subject's grant who acted with it, which the
// console and the person's account page show: once per grant and actor
// per store.GrantTouchInterval on this instance, so that a service
// exchanging on every call costs no store round trip after its first. A
// failure costs the note (tried again after the interval), never the
// exchange.
func (g tokenExchangeGrant) noteActor(req *tokenRequest, grantID, actor string) {
	if grantID == "" {
		return
	}
	key := grantID + "\x00" + actor
	if at, ok := g.s.actorsNoted.get(key); ok && time.Since(at) < store.GrantTouchInterval {
		return
	}
	g.s.actorsNoted.put(key, time.Now())
	if err := g.s.store.AddGrantActor(req.storeContext(), grantID, actor); err != nil && !errors.Is(err, store.ErrNotFound) {
		g.s.log.Warn("noting who acted with a grant failed", zap.String("grant_id", grantID), zap.String("actor", actor), zap.Error(err))
	}
}

// subjectToken checks a subject or actor token of one of the issuers the
// client may present (exchange_from: tokengate's own, "self", and trusted
// issuers), each as bearer_auth checks its tokens: malformed, expired,
// revoked or another issuer's is invalid_request (RFC 8693 §2.2.2). An ID
// token must be this issuer's, issued to the client, of a session not
// ended.
func (g tokenExchangeGrant) subjectToken(req *tokenRequest, raw, typ, what string) (*introspect.Claims, *oauth.Error) {
	switch {
	case raw == "":
		return nil, oauth.ErrInvalidRequest("%s_token is missing", what)
	case typ == "":
		return nil, oauth.ErrInvalidRequest("%s_token_type is missing: %s, %s or %s", what, TokenTypeAccessToken, TokenTypeJWT, TokenTypeIDToken)
	case typ != TokenTypeAccessToken && typ != TokenTypeJWT && typ != TokenTypeIDToken:
		return nil, oauth.ErrInvalidRequest("%s_token_type %q is not one this server exchanges: use %s", what, typ, TokenTypeAccessToken)
	}
	from := req.client.ExchangeFrom
	if len(from) == 0 {
		from = []string{client.SelfIssuer}
	}
	var c *introspect.Claims
	var err error
	iss := introspect.UnverifiedIssuer(raw)
	switch {
	case typ == TokenTypeIDToken:
		return g.idToken(req, raw, iss, what, slices.Contains(from, client.SelfIssuer))
	case iss == g.s.cfg.Issuer && slices.Contains(from, client.SelfIssuer):
		c, err = g.s.validator.Validate(raw, "")
	case iss != "" && iss != g.s.cfg.Issuer && slices.Contains(from, iss) && g.s.issuers[iss] != nil:
		c, err = g.s.issuers[iss].Check(req.storeContext(), raw)
	case iss == "":
		// An opaque token: the trusted issuers that introspect say.
		err = errors.New("it is not one of the issuers the client may present")
		for _, name := range from {
			if i := g.s.issuers[name]; i != nil {
				if c, err = i.Check(req.storeContext(), raw); err == nil {
					break
				}
			}
		}
	default:
		return nil, oauth.ErrInvalidRequest("the %s_token is from %q, not an issuer client %q may present (exchange_from)", what, iss, req.client.ID)
	}
	if e := subjectTokenError(err, what); e != nil {
		return nil, e
	}
	return c, nil
}

// subjectTokenError is RFC 8693 §2.2.2's answer to a subject or actor
// token that did not pass: invalid_request, or temporarily_unavailable
// when it could not be checked (its issuer's keys out of reach, the
// revocations stale); nil for none.
func subjectTokenError(err error, what string) *oauth.Error {
	var te *introspect.TokenError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te) && (te.Reason == introspect.ReasonUnavailable || te.Reason == introspect.ReasonStale):
		return oauth.ErrTemporarilyUnavailable("the %s_token cannot be checked right now: %s; retry shortly", what, te.Description)
	}
	return oauth.ErrInvalidRequest("the %s_token is not valid: %v", what, err)
}

// idToken checks an ID token presented as the subject (or actor) token:
// this issuer's (another's ID tokens are for their own relying parties),
// issued to the presenting client (OpenID Connect Core §2: an ID token is
// for its audience alone), unexpired, neither its grant nor its person
// revoked, its browser session not ended.
func (g tokenExchangeGrant) idToken(req *tokenRequest, raw, iss, what string, self bool) (*introspect.Claims, *oauth.Error) {
	if iss != g.s.cfg.Issuer || !self {
		return nil, oauth.ErrInvalidRequest("the %s_token is an ID token of %q: only this issuer's own ID tokens are exchanged, and client %q may present them only with exchange_from self",
			what, iss, req.client.ID)
	}
	// aud must name the client ("not meant for <client>" otherwise): a
	// client exchanges only its own.
	c, err := g.s.idTokens.Validate(raw, req.client.ID)
	if e := subjectTokenError(err, what); e != nil {
		return nil, e
	}
	if sid, ok := c.Claim("sid"); ok && g.s.revocations != nil && g.s.revocations.IsSessionEnded(sid, c.Subject, time.Unix(c.AuthTime, 0)) {
		return nil, oauth.ErrInvalidRequest("the %s_token's sign-in session has ended: the person must sign in again", what)
	}
	return c, nil
}

// exchangeTarget is the client's exchange resource that resource or
// audience names (both: the same one).
func exchangeTarget(c *client.Client, resource, audience string) (*client.ExchangeTarget, *oauth.Error) {
	switch {
	case resource == "" && audience == "":
		return nil, oauth.ErrInvalidRequest("name the resource the token is for: resource (or audience)")
	case resource != "" && audience != "" && resource != audience:
		return nil, oauth.ErrInvalidTarget("resource and audience name different resources: name one")
	}
	want := resource
	if want == "" {
		want = audience
	}
	for i := range c.Exchange {
		if c.Exchange[i].Resource == want {
			return &c.Exchange[i], nil
		}
	}
	return nil, oauth.ErrInvalidTarget("client %q may not exchange tokens for %s: its exchange resources are %s", c.ID, want, exchangeResources(c))
}

func exchangeResources(c *client.Client) string {
	var rs []string
	for _, x := range c.Exchange {
		rs = append(rs, x.Resource)
	}
	return strings.Join(rs, ", ")
}

// exchangeScope is the exchanged token's scope: what was asked (all that
// is allowed when nothing was), each scope both the subject's and the
// resource's; never broader.
func exchangeScope(requested string, subject, resource []string) (string, *oauth.Error) {
	var allowed []string
	for _, sc := range subject {
		if slices.Contains(resource, sc) {
			allowed = append(allowed, sc)
		}
	}
	if len(allowed) == 0 {
		return "", oauth.ErrInvalidScope("the subject token carries none of the scopes the resource takes (%s)", strings.Join(resource, " "))
	}
	if strings.TrimSpace(requested) == "" {
		return strings.Join(allowed, " "), nil
	}
	scope, e := client.ResolveScope(requested, allowed)
	if e != nil {
		return "", oauth.ErrInvalidScope("a token exchange may only narrow: the subject's scopes the resource takes are %s", strings.Join(allowed, " "))
	}
	return scope, nil
}
