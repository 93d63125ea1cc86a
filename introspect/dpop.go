package introspect

// RFC 9449 §7 at the resource: a DPoP-bound token comes with the DPoP
// scheme and a proof of its key for this request; a bearer token does not
// pass where the route requires binding.

import (
	"net/http"
	"strings"
	"time"

	"github.com/tokengate/tokengate/dpop"
)

// DPoPPolicy is how a route takes DPoP-bound tokens.
type DPoPPolicy struct {
	// Required refuses tokens that are not DPoP-bound.
	Required bool
	// Replay remembers the proofs this instance accepted.
	Replay *dpop.Replay
	// Nonces, when set, make proofs carry a current server nonce.
	Nonces *dpop.Nonces
	// Proofs verifies proofs, keeping the keys it parsed; nil verifies
	// without keeping them.
	Proofs *dpop.Verifier
}

// noDPoPPolicy is a nil policy's: both schemes, no replay set, no nonces.
var noDPoPPolicy DPoPPolicy

func dpopFailure(desc string) *Failure {
	return &Failure{Outcome: OutcomeInvalid, Status: http.StatusUnauthorized, Code: "invalid_dpop_proof", Description: desc, DPoP: true}
}

// CheckBinding checks a validated token against how the request carried
// it: the DPoP scheme needs a bound token and a valid, unreplayed proof of
// its key for this request (its URL as the client called it, which urlOf
// tells, only then); the Bearer scheme a token that is not bound, and a
// route that does not require binding.
func (p *DPoPPolicy) CheckBinding(r *http.Request, urlOf func(*http.Request) string, c *Claims) *Failure {
	if p == nil {
		p = &noDPoPPolicy
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimLeft(token, " ")
	bound := c.Confirmation != nil && c.Confirmation.JKT != ""
	if !strings.EqualFold(scheme, "DPoP") {
		switch {
		case bound:
			// §7.2: a bound token presented as a bearer token is refused,
			// or stealing it would be enough after all.
			return fail(OutcomeInvalid, http.StatusUnauthorized, "invalid_token", "this token is bound to a key: send it as Authorization: DPoP with a DPoP proof")
		case p.Required:
			f := dpopFailure("this resource takes DPoP-bound tokens only: get a token with a DPoP proof, and send it as Authorization: DPoP")
			f.Code = "invalid_token"
			return f
		}
		return nil
	}
	if !bound {
		return dpopFailure("the DPoP scheme needs a DPoP-bound token; this one is a bearer token")
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return dpopFailure("send exactly one DPoP proof header")
	}
	proof, err := p.Proofs.Verify(proofs[0], dpop.Request{Method: r.Method, URL: urlOf(r), AccessToken: token})
	if err != nil {
		return dpopFailure(err.Error())
	}
	if proof.JKT != c.Confirmation.JKT {
		return dpopFailure("the DPoP proof is signed with another key than the one the token is bound to")
	}
	if p.Nonces != nil && !p.Nonces.Valid(proof.Nonce) {
		f := dpopFailure("make the DPoP proof again with the nonce in the DPoP-Nonce header")
		f.Code, f.Nonce = "use_dpop_nonce", p.Nonces.Current()
		return f
	}
	if p.Replay != nil && p.Replay.Seen(proof, time.Now()) {
		return dpopFailure("this DPoP proof was used before: make a new one for each request")
	}
	return nil
}
