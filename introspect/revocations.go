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
	expires  map[string]time.Time // kind+value → until, for pruning cut-offs
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
	expires := map[string]time.Time{}
	for _, rv := range list {
		apply(rv, tokens, grants, clients, subjects, expires)
	}
	r.mu.Lock()
	r.tokens, r.grants, r.clients, r.subjects, r.expires = tokens, grants, clients, subjects, expires
	r.mu.Unlock()
}

// Apply adds one revocation.
func (r *Revocations) Apply(rv store.Revocation) {
	r.mu.Lock()
	apply(rv, r.tokens, r.grants, r.clients, r.subjects, r.expires)
	r.mu.Unlock()
}

func apply(rv store.Revocation, tokens, grants, clients, subjects, expires map[string]time.Time) {
	switch rv.Kind {
	case store.RevokeToken:
		tokens[rv.Value] = rv.ExpiresAt
	case store.RevokeGrant:
		grants[rv.Value] = rv.ExpiresAt
	case store.RevokeClient:
		if rv.At.After(clients[rv.Value]) {
			clients[rv.Value] = rv.At
		}
		expires[string(rv.Kind)+rv.Value] = rv.ExpiresAt
	case store.RevokeSubject:
		if rv.At.After(subjects[rv.Value]) {
			subjects[rv.Value] = rv.At
		}
		expires[string(rv.Kind)+rv.Value] = rv.ExpiresAt
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

// Len is how many entries the state holds.
func (r *Revocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.tokens) + len(r.grants) + len(r.clients) + len(r.subjects)
}

// Prune drops entries whose tokens have all expired.
func (r *Revocations) Prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range []map[string]time.Time{r.tokens, r.grants} {
		for k, until := range m {
			if until.Before(now) {
				delete(m, k)
			}
		}
	}
	for kind, m := range map[store.RevocationKind]map[string]time.Time{store.RevokeClient: r.clients, store.RevokeSubject: r.subjects} {
		for k := range m {
			if until := r.expires[string(kind)+k]; until.Before(now) {
				delete(m, k)
				delete(r.expires, string(kind)+k)
			}
		}
	}
}
