package token

// RFC 9449 at the token endpoint: a request with a DPoP proof gets tokens
// bound to the proof's key.

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/dpop"
)

// tokenProof checks the DPoP proof of a token request, if it has one, and
// makes it single-use across instances (its jti, in the store). A client
// with RequireDPoP must send one.
func (s *Service) tokenProof(req *tokenRequest) (*dpop.Proof, *oauth.Error) {
	c := req.client
	proofs := req.r.Header.Values("DPoP")
	switch {
	case len(proofs) > 1:
		return nil, oauth.ErrInvalidDPoPProof("send one DPoP header, not %d", len(proofs))
	case len(proofs) == 0 && c.RequireDPoP:
		return nil, oauth.ErrInvalidDPoPProof("client %q must prove possession of its key: send a DPoP proof (RFC 9449)", c.ID)
	case len(proofs) == 0:
		return nil, nil
	}
	p, err := s.dpopProofs.Verify(proofs[0], dpop.Request{Method: http.MethodPost, URL: s.cfg.TokenEndpoint})
	if err != nil {
		return nil, oauth.ErrInvalidDPoPProof("%v", err)
	}
	if s.dpopNonces != nil && !s.dpopNonces.Valid(p.Nonce) {
		return nil, oauth.ErrUseDPoPNonce()
	}
	sum := sha256.Sum256([]byte(p.JKT + "\x00" + p.JTI))
	n, _, err := s.store.Incr(req.storeContext(), "dpop:"+hex.EncodeToString(sum[:16]), 2*dpop.Window)
	if err != nil {
		return nil, s.failures.Store("recording a DPoP proof", err)
	}
	if n > 1 {
		return nil, oauth.ErrInvalidDPoPProof("this DPoP proof was used before: make a new one (with a new jti) for each request")
	}
	return p, nil
}
