package authserver

// RFC 8707: resource indicators. A client names the protected resource it
// wants a token for; the token's aud is then exactly that resource, and
// the grant remembers it.

import (
	"net/http"
	"net/url"
	"slices"
	"sync"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/introspect"
)

// ErrInvalidTarget is RFC 8707 §2's error: an unknown, malformed or
// unacceptable resource.
func ErrInvalidTarget(format string, args ...any) *oauth.Error {
	return oauth.NewError("invalid_target", http.StatusBadRequest, format, args...)
}

// resources are the protected resources this issuer knows: those of the
// configuration (Config.Resources) and those bearer_auth routes declare
// (AddResource), with the scopes each requires and its name.
type resources struct {
	mu    sync.RWMutex
	known map[string]knownResource
}

type knownResource struct {
	scopes []string
	name   string
}

// AddResource makes a resource known, so that clients may ask for tokens
// for it (the embedding server's protected routes call it as they start).
// name (RFC 9728's resource_name, may be empty) is shown on the consent
// page.
func (s *Server) AddResource(resource, name string, scopes []string) error {
	if err := introspect.ValidateResource(resource); err != nil {
		return err
	}
	s.resources.mu.Lock()
	defer s.resources.mu.Unlock()
	if s.resources.known == nil {
		s.resources.known = map[string]knownResource{}
	}
	s.resources.known[resource] = knownResource{slices.Clone(scopes), name}
	return nil
}

func (s *Server) resourceKnown(resource string) bool {
	s.resources.mu.RLock()
	defer s.resources.mu.RUnlock()
	_, ok := s.resources.known[resource]
	return ok
}

// pageResource describes a grant's resource for the pages; nil for none.
func (s *Server) pageResource(resource string) *PageResource {
	if resource == "" {
		return nil
	}
	s.resources.mu.RLock()
	defer s.resources.mu.RUnlock()
	return &PageResource{URL: resource, Name: s.resources.known[resource].name}
}

// requestedResource is the resource a request names: "" for none, one
// this issuer knows, or invalid_target. Tokens here have one audience, so
// a request names at most one resource.
func (s *Server) requestedResource(params url.Values) (string, *oauth.Error) {
	vals := params["resource"]
	switch {
	case len(vals) == 0:
		return "", nil
	case len(vals) > 1:
		return "", ErrInvalidTarget("ask for one resource per request; this server issues tokens for a single resource")
	}
	if err := introspect.ValidateResource(vals[0]); err != nil {
		return "", ErrInvalidTarget("%v", err)
	}
	if !s.resourceKnown(vals[0]) {
		return "", ErrInvalidTarget("resource %q is not protected by this authorization server", vals[0])
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
		return ErrInvalidTarget("the authorization named no resource: start a new one with resource=%s", requested)
	}
	return ErrInvalidTarget("this grant is for resource %q, not %q", granted, requested)
}
