package token

// RFC 6749 §4.4: the client credentials grant.

import (
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
)

// clientCredentialsGrant is RFC 6749 §4.4: the client acts on its own behalf.
type clientCredentialsGrant struct{ s *Service }

func (g clientCredentialsGrant) handle(req *tokenRequest) (*TokenResponse, *oauth.Error) {
	scope, e := client.ResolveScope(req.form.Get("scope"), req.client.Scopes)
	if e != nil {
		return nil, e
	}
	resource, e := g.s.resources.Requested(req.form)
	if e != nil {
		return nil, e
	}
	return g.s.accessTokenResponse(req, accessTokenParams{client: req.client, subject: req.client.ID, scope: scope, resource: resource}, "")
}
