package token

// RFC 6749 §3.2 and §5: the token endpoint, which hands each request to its grant.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/dpop"
	"github.com/tokengate/tokengate/policy"
	"go.uber.org/zap"
)

// TokenResponse is a successful token response (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	// IDToken is OpenID Connect's (Core §3.1.3.3), for a grant with openid.
	IDToken string `json:"id_token,omitempty"`
	// IssuedTokenType says what a token exchange issued (RFC 8693 §2.2.1).
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// tokenRequest is a parsed, client-authenticated token request.
type tokenRequest struct {
	r      *http.Request
	form   url.Values
	client *client.Client
	grant  string
	// workload says the client authenticated with its workload token as
	// the jwt-bearer assertion (workloadGrant), so it acts for itself.
	workload bool
	// dpop is the request's checked DPoP proof; nil without one.
	dpop *dpop.Proof
	// ctx bounds the request's store operations (oauth.RequestContext),
	// made by storeContext on first use: a client_credentials request
	// makes none, and a deadline's timer is a cost on the hottest path.
	ctx    context.Context
	cancel context.CancelFunc
}

// storeContext is the context of the request's store operations.
func (req *tokenRequest) storeContext() context.Context {
	if req.ctx == nil {
		req.ctx, req.cancel = oauth.RequestContext(req.r)
	}
	return req.ctx
}

// release ends the store operations' context, if one was made.
func (req *tokenRequest) release() {
	if req.cancel != nil {
		req.cancel()
	}
}

// grantHandler issues tokens for one grant type.
type grantHandler interface {
	handle(req *tokenRequest) (*TokenResponse, *oauth.Error)
}

// ServeToken is RFC 6749 §3.2's token endpoint: it authenticates the
// client and hands the request to its grant.
func (s *Service) ServeToken(w http.ResponseWriter, r *http.Request) {
	if s.dpopNonces != nil {
		// Every answer says the current nonce (RFC 9449 §8.2), so a
		// client always has the one its next proof needs.
		w.Header().Set("DPoP-Nonce", s.dpopNonces.Current())
	}
	resp, req, e := s.token(w, r)
	if e != nil {
		fields := []zap.Field{zap.String("error", e.Code), zap.String("description", e.Description)}
		if req != nil {
			fields = append(fields, zap.String("client_id", req.client.ID), zap.String("grant_type", req.grant))
		}
		s.audit(r.Context(), "token refused", fields...)
		s.metrics.TokenError(e.Code)
		oauth.WriteError(w, e)
		return
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
}

func (s *Service) token(w http.ResponseWriter, r *http.Request) (*TokenResponse, *tokenRequest, *oauth.Error) {
	form, e := oauth.ReadForm(w, r)
	if e != nil {
		return nil, nil, e
	}
	grant := form.Get("grant_type")
	if grant == "" {
		return nil, nil, oauth.ErrInvalidRequest("grant_type is missing")
	}
	h, ok := s.grants[grant]
	if !ok {
		return nil, nil, oauth.ErrUnsupportedGrantType("grant_type %q is not supported; this server offers %s", grant, strings.Join(s.GrantTypes(), ", "))
	}
	var cl *client.Client
	workload := workloadGrant(r, form, grant)
	if workload {
		cl, e = s.clientAuth.AuthenticateWorkload(r.Context(), form.Get("client_id"), form.Get("assertion"))
	} else {
		cl, e = s.clientAuth.Authenticate(r, form)
	}
	if e != nil {
		return nil, nil, e
	}
	req := &tokenRequest{r: r, form: form, client: cl, grant: grant, workload: workload}
	if !slices.Contains(cl.GrantTypes, grant) {
		return nil, req, oauth.ErrUnauthorizedClient("client %q is not allowed the %s grant", cl.ID, grant)
	}
	if e := s.tokenRate(w, req); e != nil {
		return nil, req, e
	}
	defer req.release()
	if req.dpop, e = s.tokenProof(req); e != nil {
		return nil, req, e
	}
	resp, e := h.handle(req)
	return resp, req, e
}

// tokenRate counts a request of a client with a token_rate_limit in the
// store, so that every instance draws on one budget: over it, 429 with
// Retry-After (RFC 6585 §4). Authenticated first, so that nobody spends
// another client's budget. A store that cannot count refuses
// (temporarily_unavailable), as the token endpoint does for every store
// failure.
func (s *Service) tokenRate(w http.ResponseWriter, req *tokenRequest) *oauth.Error {
	tr := req.client.TokenRate
	if tr == nil {
		return nil
	}
	limit := policy.Limit{N: tr.N, Window: tr.Period}
	d, err := policy.Shared{Store: s.store}.Allow(req.storeContext(), "token\x00"+req.client.ID, limit)
	if err != nil {
		return s.failures.Store("counting a token_rate_limit", err)
	}
	if d.Allowed {
		return nil
	}
	retry := policy.RetryAfter(d.RetryAfter)
	w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
	return policy.TooMany(fmt.Sprintf("client %q's token_rate_limit", req.client.ID), limit, retry)
}

// GrantTypes lists the grant types this server handles, sorted.
func (s *Service) GrantTypes() []string {
	var gs []string
	for g := range s.grants {
		gs = append(gs, g)
	}
	slices.Sort(gs)
	return gs
}
