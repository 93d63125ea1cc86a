package trust

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/tokengate/tokengate/introspect"
)

// Route checks the tokens one bearer_auth route accepts: tokengate's own
// (Self, for SelfAudiences) and those of the trusted Issuers. A JWT goes
// to the issuer its iss names; any other token to the one issuer that
// introspects, as nothing in an opaque token says whose it is (and sending
// it to every issuer would hand each the others' tokens).
type Route struct {
	self          *introspect.Validator
	selfAudiences []string
	issuers       map[string]*Issuer
	opaque        *Issuer
}

// NewRoute makes a route's checker; self may be nil (tokengate's own
// tokens not accepted).
func NewRoute(self *introspect.Validator, selfAudiences []string, issuers []*Issuer) (*Route, error) {
	r := &Route{self: self, selfAudiences: selfAudiences, issuers: map[string]*Issuer{}}
	for _, i := range issuers {
		r.issuers[i.Name()] = i
		if i.Introspects() {
			if r.opaque != nil {
				return nil, errors.New("two of the route's issuers introspect (" + r.opaque.Name() + ", " + i.Name() +
					"): an opaque token does not say whose it is, so a route accepts them from one issuer at most")
			}
			r.opaque = i
		}
	}
	return r, nil
}

// Authorize checks the request's bearer token and that it carries every
// scope in scopes.
func (r *Route) Authorize(req *http.Request, scopes []string) (*introspect.Claims, *introspect.Failure) {
	token, f := introspect.BearerToken(req)
	if f != nil {
		return nil, f
	}
	c, err := r.check(req, token)
	return introspect.Verdict(c, err, scopes)
}

func (r *Route) check(req *http.Request, token string) (*introspect.Claims, error) {
	if !looksLikeJWT(token) {
		if r.opaque == nil {
			return nil, &introspect.TokenError{Reason: introspect.ReasonMalformed, Description: "the token is not a JWT"}
		}
		return r.opaque.Check(req.Context(), token)
	}
	iss := introspect.UnverifiedIssuer(token)
	if r.self != nil && iss == r.self.Issuer {
		return r.self.Validate(token, r.selfAudiences...)
	}
	if i := r.issuers[iss]; i != nil {
		return i.Check(req.Context(), token)
	}
	return nil, &introspect.TokenError{Reason: introspect.ReasonIssuer, Description: "the token was issued by " + quote(iss) + ", which this resource does not trust"}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
