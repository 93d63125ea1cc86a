package token

// RFC 7523 §2.1: the JWT bearer grant, in its two uses here: a workload's
// token as a federated client's grant (MCP's wif-jwt-bearer), and an
// enterprise IdP's Identity Assertion JWT Authorization Grant (ID-JAG,
// draft-ietf-oauth-identity-assertion-authz-grant, as MCP's
// Enterprise-Managed Authorization extension profiles it).

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// workloadGrant says whether a token request is a federated client's
// workload token as a jwt-bearer grant: client_id and the assertion, no
// other client authentication.
func workloadGrant(r *http.Request, form url.Values, grant string) bool {
	return grant == client.GrantJWTBearer && r.Header.Get("Authorization") == "" && form.Get("client_id") != "" &&
		!form.Has("client_secret") && !form.Has("client_assertion")
}

// Assertion is what a verified ID-JAG says: the person as the login
// provider's sign-in maps them, what the enterprise granted, and its jti
// and expiry for single use.
type Assertion struct {
	Subject string
	// Login is the provider's name (store.Grant.Login).
	Login           string
	Scope, Resource string
	ID              string
	ExpiresAt       time.Time
}

// IDJAGVerifier verifies an ID-JAG presented by clientID for this issuer.
type IDJAGVerifier func(ctx context.Context, raw, clientID string) (*Assertion, error)

// jwtBearerGrant is RFC 7523 §2.1.
type jwtBearerGrant struct{ s *Service }

func (g jwtBearerGrant) handle(req *tokenRequest) (*TokenResponse, *oauth.Error) {
	if req.workload {
		// The workload token authenticated the client: it acts for itself.
		return clientCredentialsGrant(g).handle(req)
	}
	raw := req.form.Get("assertion")
	if raw == "" {
		return nil, oauth.ErrInvalidRequest("assertion is missing")
	}
	if g.s.idJAG == nil {
		return nil, oauth.ErrInvalidGrant("no login provider's identity assertions are accepted here (id_jag)")
	}
	ctx := req.storeContext()
	a, err := g.s.idJAG(ctx, raw, req.client.ID)
	if err != nil {
		return nil, oauth.ErrInvalidGrant("the assertion is not valid: %v", err)
	}
	// Single use, on every instance.
	n, _, err := g.s.store.Incr(ctx, "id_jag:"+oauth.HashToken(a.Login+"\x00"+a.ID), time.Until(a.ExpiresAt)+time.Minute)
	if err != nil {
		return nil, g.s.failures.Store("recording an assertion", err)
	}
	if n > 1 {
		return nil, oauth.ErrInvalidGrant("the assertion was used before: ask the identity provider for a new one")
	}
	scope, e := assertionScope(req.form.Get("scope"), a.Scope, req.client.Scopes)
	if e != nil {
		return nil, e
	}
	resource, e := g.s.resources.Requested(req.form)
	if e != nil {
		return nil, e
	}
	if a.Resource != "" {
		if !g.s.resources.isKnown(a.Resource) {
			return nil, oauth.ErrInvalidTarget("the assertion's resource %q is not protected by this authorization server", a.Resource)
		}
		if resource != "" && resource != a.Resource {
			return nil, oauth.ErrInvalidTarget("resource %s is not the assertion's (%s)", resource, a.Resource)
		}
		resource = a.Resource
	}
	// The grant is recorded like any other: on the person's account page,
	// in the console, revocable. No consent page (the enterprise granted
	// it), no refresh token (the client asks the IdP again).
	now := time.Now().UTC()
	grant := &store.Grant{ID: oauth.RandomToken(16), ClientID: req.client.ID, Subject: a.Subject, Scope: scope, Resource: resource, Login: a.Login,
		Via: store.ViaIDJAG, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(g.s.cfg.AccessTokenTTL + time.Minute), EndsBy: now.Add(g.s.cfg.AccessTokenTTL + time.Minute)}
	if err := g.s.store.PutGrant(ctx, grant); err != nil {
		return nil, g.s.failures.Store("recording a grant", err)
	}
	resp, e := g.s.accessTokenResponse(req, accessTokenParams{client: req.client, subject: a.Subject, scope: scope, grantID: grant.ID,
		resource: resource, authTime: now}, "")
	if e != nil {
		return nil, e
	}
	g.s.audit(req.r.Context(), "assertion grant", zap.String("client_id", req.client.ID), zap.String("sub", a.Subject),
		zap.String("provider", a.Login), zap.String("scope", scope), zap.String("grant_id", grant.ID))
	return resp, nil
}

// assertionScope is the token's scope: what was asked (or the
// assertion's), within the client's scopes and the assertion's.
func assertionScope(requested, asserted string, allowed []string) (string, *oauth.Error) {
	within := allowed
	if asserted != "" {
		within = nil
		for _, sc := range strings.Fields(asserted) {
			if slices.Contains(allowed, sc) {
				within = append(within, sc)
			}
		}
		if len(within) == 0 {
			return "", oauth.ErrInvalidScope("the assertion grants none of the scopes this client may obtain")
		}
		if strings.TrimSpace(requested) == "" {
			requested = strings.Join(within, " ")
		}
	}
	return client.ResolveScope(requested, within)
}
