package introspect

import (
	"sync"
	"time"

	"github.com/tokengate/tokengate/authserver/store"
)

// Revocations is the revocation state an instance holds in memory so that
// checking a token costs no store round trip.
type Revocations struct {
	mu       sync.RWMutex
	tokens   map[string]time.Time // jti → until
	grants   map[string]time.Time // grant ID → until
	clients  map[string]time.Time // client_id → tokens issued at or before are revoked
	subjects map[string]time.Time // sub → likewise
}

// NewRevocations returns an empty state.
func NewRevocations() *Revocations {
	r := &Revocations{}
	r.Replace(nil)
	return r
}

// Replace swaps in the full state, as loaded from the store.
func (r *Revocations) Replace(list []store.Revocation) {
	tokens, grants := map[string]time.Time{}, map[string]time.Time{}
	clients, subjects := map[string]time.Time{}, map[string]time.Time{}
	for _, rv := range list {
		apply(rv, tokens, grants, clients, subjects)
	}
	r.mu.Lock()
	r.tokens, r.grants, r.clients, r.subjects = tokens, grants, clients, subjects
	r.mu.Unlock()
}

// Apply adds one revocation.
func (r *Revocations) Apply(rv store.Revocation) {
	r.mu.Lock()
	apply(rv, r.tokens, r.grants, r.clients, r.subjects)
	r.mu.Unlock()
}

func apply(rv store.Revocation, tokens, grants, clients, subjects map[string]time.Time) {
	switch rv.Kind {
	case store.RevokeToken:
		tokens[rv.Value] = rv.ExpiresAt
	case store.RevokeGrant:
		grants[rv.Value] = rv.ExpiresAt
	case store.RevokeClient:
		if rv.At.After(clients[rv.Value]) {
			clients[rv.Value] = rv.At
		}
	case store.RevokeSubject:
		if rv.At.After(subjects[rv.Value]) {
			subjects[rv.Value] = rv.At
		}
	}
}

// IsRevoked reports whether c is revoked by any entry.
func (r *Revocations) IsRevoked(c *Claims) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.tokens[c.ID]; ok {
		return true
	}
	if c.GrantID != "" {
		if _, ok := r.grants[c.GrantID]; ok {
			return true
		}
	}
	// Cut-offs compare whole seconds, as iat has no more precision: a
	// token issued in the same second as the revocation is revoked.
	if at, ok := r.clients[c.ClientID]; ok && c.IssuedAt <= at.Unix() {
		return true
	}
	if at, ok := r.subjects[c.Subject]; ok && c.IssuedAt <= at.Unix() {
		return true
	}
	return false
}

// IsGrantRevoked reports whether every token of the grant is revoked.
func (r *Revocations) IsGrantRevoked(grantID string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.grants[grantID]
	return ok
}
