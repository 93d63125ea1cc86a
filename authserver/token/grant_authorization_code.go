package token

// RFC 6749 §4.1.3 and RFC 7636 §4.6: redeeming an authorization code with its PKCE verifier.

import (
	"errors"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// authorizationCodeGrant is RFC 6749 §4.1.3 with RFC 7636's verifier.
type authorizationCodeGrant struct{ s *Service }

func (g authorizationCodeGrant) handle(req *tokenRequest) (*TokenResponse, *oauth.Error) {
	ctx := req.storeContext()
	s := g.s
	invalid := oauth.ErrInvalidGrant("the authorization code is not valid: it expired, or was never issued")
	code, e := req.grantToken("code", invalid)
	if e != nil {
		return nil, e
	}
	grantID := code.Grant
	// An unknown resource is refused before the code is spent.
	requested, e := s.resources.Requested(req.form)
	if e != nil {
		return nil, e
	}
	first, refresh, e := s.firstRefreshToken(req, grantID)
	if e != nil {
		return nil, e
	}
	ac, err := s.store.ConsumeCode(ctx, grantID, code.Hash(), req.client.ID, first)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, invalid
	case errors.Is(err, store.ErrAlreadyUsed):
		// A replayed code means it leaked: revoke everything it gave
		// (RFC 6749 §4.1.2, RFC 9700 §4.5.2).
		if e := s.revokeGrant(ctx, ac.GrantID, "authorization code replayed", req); e != nil {
			return nil, e
		}
		return nil, oauth.ErrInvalidGrant("the authorization code was already used; every token issued from it is now revoked")
	case err != nil:
		return nil, s.failures.Store("redeeming an authorization code", err)
	}
	if ac.ClientID != req.client.ID {
		return nil, oauth.ErrInvalidGrant("the authorization code was issued to another client")
	}
	if e := checkRedemption(req, ac, requested); e != nil {
		// The code is spent and its refresh token never handed out: the
		// grant is no one's, so it leaves the lists.
		s.forgetGrant(ctx, ac.GrantID)
		return nil, e
	}
	return s.issueTokens(req, grantState{id: ac.GrantID, subject: ac.Subject, scope: ac.Scope, authTime: ac.AuthTime, resource: ac.Resource,
		nonce: ac.Nonce, openID: ac.OpenID}, ac.Scope, refresh)
}

// checkRedemption checks a redeemed code against the token request: the
// redirect URI, the PKCE verifier and the resource.
func checkRedemption(req *tokenRequest, ac *store.AuthCode, requested string) *oauth.Error {
	redirectURI := req.form.Get("redirect_uri")
	if (ac.RedirectURIGiven || redirectURI != "") && redirectURI != ac.RedirectURI {
		return oauth.ErrInvalidGrant("redirect_uri must be the one the authorization request used")
	}
	verifier := req.form.Get("code_verifier")
	switch {
	case ac.CodeChallenge != "" && verifier == "":
		return oauth.ErrInvalidGrant("code_verifier is missing: the authorization request used PKCE")
	case ac.CodeChallenge != "" && !oauth.PKCEVerifier.MatchString(verifier):
		return oauth.ErrInvalidGrant("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
	case ac.CodeChallenge != "" && !oauth.VerifyPKCE(ac.CodeChallenge, verifier):
		return oauth.ErrInvalidGrant("code_verifier does not match the code_challenge")
	case ac.CodeChallenge == "" && verifier != "":
		// A verifier for a code issued without a challenge is a PKCE
		// downgrade attempt (RFC 9700 §2.1.1).
		return oauth.ErrInvalidGrant("code_verifier was sent but the authorization request had no code_challenge")
	}
	return sameResource(requested, ac.Resource)
}
