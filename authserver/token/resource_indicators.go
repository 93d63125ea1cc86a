package token

// RFC 8707: resource indicators. A client names the protected resource it
// wants a token for; the token's aud is then exactly that resource, and
// the grant remembers it.

import (
	"net/url"
	"slices"
	"sync"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/introspect"
)

// Resources are the protected resources this issuer knows: those of the
// configuration and those bearer_auth routes declare (Add), with the
// scopes each requires and its name.
type Resources struct {
	mu    sync.RWMutex
	known map[string]knownResource
}

type knownResource struct {
	scopes []string
	name   string
}

// Add makes a resource known, so that clients may ask for tokens for it.
// name (RFC 9728's resource_name, may be empty) is what pages show.
func (rs *Resources) Add(resource, name string, scopes []string) error {
	if err := introspect.ValidateResource(resource); err != nil {
		return err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.known == nil {
		rs.known = map[string]knownResource{}
	}
	rs.known[resource] = knownResource{slices.Clone(scopes), name}
	return nil
}

// Name is a known resource's name; "" when it has none or is unknown.
func (rs *Resources) Name(resource string) string {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	return rs.known[resource].name
}

func (rs *Resources) isKnown(resource string) bool {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	_, ok := rs.known[resource]
	return ok
}

// Requested is the resource a request names: "" for none, one this
// issuer knows, or invalid_target. Tokens here have one audience, so a
// request names at most one resource.
func (rs *Resources) Requested(params url.Values) (string, *oauth.Error) {
	vals := params["resource"]
	switch {
	case len(vals) == 0:
		return "", nil
	case len(vals) > 1:
		return "", oauth.ErrInvalidTarget("ask for one resource per request; this server issues tokens for a single resource")
	}
	if err := introspect.ValidateResource(vals[0]); err != nil {
		return "", oauth.ErrInvalidTarget("%v", err)
	}
	if !rs.isKnown(vals[0]) {
		return "", oauth.ErrInvalidTarget("resource %q is not protected by this authorization server", vals[0])
	}
	return vals[0], nil
}

// sameResource checks that a token request naming a resource names the
// grant's (RFC 8707 §2.2: a grant is for what it was authorized for).
func sameResource(requested, granted string) *oauth.Error {
	if requested == "" || requested == granted {
		return nil
	}
	if granted == "" {
		return oauth.ErrInvalidTarget("the authorization named no resource: start a new one with resource=%s", requested)
	}
	return oauth.ErrInvalidTarget("this grant is for resource %q, not %q", granted, requested)
}
