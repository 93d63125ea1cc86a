package client

// RFC 7523 §2.2 with another issuer's assertion: workload identity
// federation. A federated client authenticates with a token its workload's
// issuer signed (a CI job's OIDC token, a Kubernetes service account token,
// a SPIFFE JWT-SVID): keys through that issuer's OpenID discovery, iss, sub
// and aud exact, jti used once when present.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/outbound"
	"github.com/tokengate/tokengate/trust"
)

// federations holds a checker of each workload issuer's tokens, made at
// first use; the keys are cached as a trusted issuer's are.
type federations struct {
	fetch *outbound.Client
	mu    sync.Mutex
	by    map[string]*introspect.Validator
}

// validator is the checker of issuer's tokens.
func (f *federations) validator(issuer string) *introspect.Validator {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v := f.by[issuer]; v != nil {
		return v
	}
	if f.by == nil {
		f.by = map[string]*introspect.Validator{}
	}
	fetch := f.fetch
	keys := trust.NewKeys(trust.KeysConfig{Fetcher: fetch, URI: func(ctx context.Context) (string, error) {
		resp, err := fetch.Get(ctx, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration")
		if err != nil {
			return "", err
		}
		var d struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(resp.Body, &d); err != nil || d.Issuer != issuer || d.JWKSURI == "" {
			return "", fmt.Errorf("the discovery document of %s does not name it and its jwks_uri", issuer)
		}
		return d.JWKSURI, nil
	}})
	// Workload tokens are typed JWT, or not at all.
	v := &introspect.Validator{Keys: keys, UnknownKey: keys.UnknownKey, Issuer: issuer, Leeway: assertionSkew, Types: []string{"JWT", ""}}
	f.by[issuer] = v
	return v
}

// authenticateFederated checks a federated client's workload token.
func (a *Authenticator) authenticateFederated(ctx context.Context, c *Client, assertion string) (*Client, *oauth.Error) {
	f := c.Federated
	audience := f.Audience
	if audience == "" {
		audience = a.issuer
	}
	claims, err := a.federations.validator(f.Issuer).Validate(assertion, audience)
	if err != nil {
		if te, ok := err.(*introspect.TokenError); ok && te.Reason == introspect.ReasonUnavailable {
			return nil, oauth.ErrTemporarilyUnavailable("the keys of %s cannot be fetched right now; retry shortly", f.Issuer)
		}
		return nil, oauth.ErrInvalidClient("the workload token is not valid for client %q: %v", c.ID, err)
	}
	if claims.Subject != f.Subject {
		return nil, oauth.ErrInvalidClient("the workload token's sub %q is not client %q's workload", claims.Subject, c.ID)
	}
	if claims.ID != "" {
		n, _, err := a.counters.Incr(ctx, "workload:"+oauth.HashToken(f.Issuer+"\x00"+claims.ID), time.Until(time.Unix(claims.ExpiresAt, 0))+assertionSkew)
		if err != nil {
			return nil, a.storeFailed("recording a workload token", err)
		}
		if n > 1 {
			return nil, oauth.ErrInvalidClient("the workload token was used before: get a new one")
		}
	}
	return c, nil
}

// AuthenticateWorkload authenticates a federated client by its workload
// token presented as a jwt-bearer grant's assertion, with client_id and no
// other authentication (MCP's wif-jwt-bearer): refusals are invalid_grant,
// as the assertion is the grant.
func (a *Authenticator) AuthenticateWorkload(ctx context.Context, clientID, assertion string) (*Client, *oauth.Error) {
	c, _, err := a.registry.Lookup(ctx, clientID)
	if err != nil || c.Federated == nil {
		return nil, oauth.ErrInvalidClient("client %q is not a federated client: authenticate it with its credentials", clientID)
	}
	if assertion == "" {
		return nil, oauth.ErrInvalidRequest("assertion is missing: the workload token")
	}
	if _, e := a.authenticateFederated(ctx, c, assertion); e != nil {
		if e.Code == "invalid_client" {
			return nil, oauth.ErrInvalidGrant("%s", e.Description)
		}
		return nil, e
	}
	return c, nil
}
