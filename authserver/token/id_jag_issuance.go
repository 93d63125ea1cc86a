package token

// draft-ietf-oauth-identity-assertion-authz-grant §4.3, as MCP's
// Enterprise-Managed Authorization extension profiles it: tokengate as the
// identity provider, issuing an Identity Assertion JWT Authorization Grant
// (ID-JAG) by token exchange, for a client holding a person's ID token, to
// present at another authorization server (its jwt-bearer grant).

import (
	"bytes"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/introspect"
)

// TokenTypeIDJAG is the token type of an ID-JAG (the draft's §7.1).
const TokenTypeIDJAG = "urn:ietf:params:oauth:token-type:id-jag"

// idJAGLifetime is how long an ID-JAG lives: a moment's hand-over, as
// authorization servers accept (tokengate's own take at most 5 minutes).
const idJAGLifetime = 5 * time.Minute

// idJAGClaims are an ID-JAG's claims (§3): the person (sub) asserted for
// the client (client_id, its ID at the audience too) to the authorization
// server aud, for resource and scope there; the person's claims as their
// ID token released them, so that the audience maps them as a sign-in
// through this issuer would.
type idJAGClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ClientID string `json:"client_id"`
	JWTID    string `json:"jti"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
	Resource string `json:"resource,omitempty"`
	Scope    string `json:"scope,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
	UserClaims
}

// issueIDJAG answers a token exchange with requested_token_type ID-JAG
// (§4.3): the subject token an ID token this issuer gave the client (§4.3's
// "the audience of the subject token must be the client", checked as every
// ID token subject is), audience an authorization server among the
// client's exchange targets, scope at most that target's. The client's ID
// at the audience is its ID here: register it under the same client_id
// there. The answer is §4.3.2's: the ID-JAG as access_token, token_type
// N_A, no refresh token.
func (g tokenExchangeGrant) issueIDJAG(req *tokenRequest) (*TokenResponse, *oauth.Error) {
	f := req.form
	switch {
	case f.Get("subject_token_type") != TokenTypeIDToken:
		return nil, oauth.ErrInvalidRequest("an ID-JAG is issued for an ID token this server gave the client: subject_token_type %s", TokenTypeIDToken)
	case f.Get("actor_token") != "":
		return nil, oauth.ErrInvalidRequest("an ID-JAG names no actor: send no actor_token")
	case f.Get("audience") == "":
		return nil, oauth.ErrInvalidRequest("audience is required: the issuer of the authorization server the ID-JAG is for")
	}
	target, e := exchangeTarget(req.client, "", f.Get("audience"))
	if e != nil {
		return nil, e
	}
	var resource string
	switch rs := f["resource"]; {
	case len(rs) > 1:
		return nil, oauth.ErrInvalidTarget("name one resource: an ID-JAG is for one")
	case len(rs) == 1:
		if err := introspect.ValidateResource(rs[0]); err != nil {
			return nil, oauth.ErrInvalidTarget("%v", err)
		}
		resource = rs[0]
	}
	subject, e := g.subjectToken(req, f.Get("subject_token"), TokenTypeIDToken, "subject")
	if e != nil {
		return nil, e
	}
	scope, e := exchangeScope(f.Get("scope"), target.Scopes, target.Scopes)
	if e != nil {
		return nil, e
	}
	now := time.Now()
	exp := min(now.Add(idJAGLifetime).Unix(), subject.ExpiresAt)
	if exp <= now.Unix() {
		return nil, oauth.ErrInvalidRequest("the subject_token expires now: sign the person in again for a new ID token")
	}
	claims := idJAGClaims{Issuer: g.s.cfg.Issuer, Subject: subject.Subject, Audience: target.Resource, ClientID: req.client.ID,
		JWTID: oauth.RandomToken(16), IssuedAt: now.Unix(), Expires: exp, Resource: resource, Scope: scope, AuthTime: subject.AuthTime}
	// The person's claims the ID token released to the client: all it
	// may pass on.
	if err := subject.Decode(&claims.UserClaims); err != nil {
		return nil, g.s.failures.Internal("reading an ID token's claims", err)
	}
	var jag string
	err := oauth.EncodeJSON(&claims, func(payload []byte) (err error) {
		jag, err = g.s.keys.SignAs(keys.IDTokenAlgOf(req.client.IDTokenAlg), keys.TypeIDJAG, bytes.TrimSuffix(payload, []byte{'\n'}), now)
		return err
	})
	if err != nil {
		return nil, g.s.failures.Internal("signing an ID-JAG", err)
	}
	g.s.audit(req.r.Context(), "id-jag issued", zap.String("client_id", req.client.ID), zap.String("sub", subject.Subject),
		zap.String("audience", target.Resource), zap.String("resource", resource), zap.String("scope", scope))
	return &TokenResponse{AccessToken: jag, TokenType: "N_A", ExpiresIn: exp - now.Unix(), Scope: scope, IssuedTokenType: TokenTypeIDJAG}, nil
}
