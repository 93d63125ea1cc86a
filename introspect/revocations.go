package introspect

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokengate/tokengate/authserver/store"
)

// Revocations is the revocation state an instance holds in memory so that
// checking a token costs no store round trip.
type Revocations struct {
	mu       sync.RWMutex
	tokens   map[string]time.Time // jti → until
	grants   map[string]time.Time // grant ID → until
	clients  map[string]cutoff    // client_id → tokens issued at or before are revoked
	subjects map[string]cutoff    // sub → likewise, and sessions signed in at or before
	sessions map[string]time.Time // browser session ID (sid) → until

	// maxStaleness bounds how long the state may go without news from the
	// store; 0 means it cannot go stale (a single-instance store).
	maxStaleness time.Duration
	synced       atomic.Int64 // unix nanoseconds of the last confirmation
}

// SetMaxStaleness makes the state stale once MarkSynced has not been
// called for d: then nobody can say whether a token was revoked elsewhere.
func (r *Revocations) SetMaxStaleness(d time.Duration) {
	r.maxStaleness = d
	r.MarkSynced()
}

// MarkSynced records that the state is known to be current.
func (r *Revocations) MarkSynced() { r.synced.Store(time.Now().UnixNano()) }

// Stale reports whether the state is older than its bound.
func (r *Revocations) Stale() bool {
	return r.maxStaleness > 0 && time.Since(time.Unix(0, r.synced.Load())) > r.maxStaleness
}

// cutoff revokes tokens issued at or before at; it can be forgotten after
// until, when all of them have expired.
type cutoff struct{ at, until time.Time }

// NewRevocations returns an empty state.
func NewRevocations() *Revocations {
	r := &Revocations{}
	r.Replace(nil)
	return r
}

// Replace swaps in the full state, as loaded from the store.
func (r *Revocations) Replace(list []store.Revocation) {
	n := &Revocations{tokens: map[string]time.Time{}, grants: map[string]time.Time{}, clients: map[string]cutoff{},
		subjects: map[string]cutoff{}, sessions: map[string]time.Time{}}
	for _, rv := range list {
		n.apply(rv)
	}
	r.mu.Lock()
	r.tokens, r.grants, r.clients, r.subjects, r.sessions = n.tokens, n.grants, n.clients, n.subjects, n.sessions
	r.mu.Unlock()
}

// Merge adds the entries of list, as loaded from the store, to the state.
// It never drops one: a revocation is never undone, and a store that lost
// its data must not bring a revoked token back (expired entries go through
// Prune).
func (r *Revocations) Merge(list []store.Revocation) {
	r.mu.Lock()
	for _, rv := range list {
		r.apply(rv)
	}
	r.mu.Unlock()
}

// All lists the state's entries, to write back to a store that lost them.
// Token and grant entries carry no time of revocation (only its end),
// which for them means nothing; At is then now.
func (r *Revocations) All() []store.Revocation {
	now := time.Now().UTC()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]store.Revocation, 0, len(r.tokens)+len(r.grants)+len(r.clients)+len(r.subjects)+len(r.sessions))
	for v, until := range r.tokens {
		out = append(out, store.Revocation{Kind: store.RevokeToken, Value: v, At: now, ExpiresAt: until})
	}
	for v, until := range r.grants {
		out = append(out, store.Revocation{Kind: store.RevokeGrant, Value: v, At: now, ExpiresAt: until})
	}
	for v, co := range r.clients {
		out = append(out, store.Revocation{Kind: store.RevokeClient, Value: v, At: co.at, ExpiresAt: co.until})
	}
	for v, co := range r.subjects {
		out = append(out, store.Revocation{Kind: store.RevokeSubject, Value: v, At: co.at, ExpiresAt: co.until})
	}
	for v, until := range r.sessions {
		out = append(out, store.Revocation{Kind: store.RevokeSession, Value: v, At: now, ExpiresAt: until})
	}
	return out
}

// Apply adds one revocation.
func (r *Revocations) Apply(rv store.Revocation) {
	r.mu.Lock()
	r.apply(rv)
	r.mu.Unlock()
}

// apply adds rv to the maps; r.mu is held (or r not yet shared).
func (r *Revocations) apply(rv store.Revocation) {
	switch rv.Kind {
	case store.RevokeToken:
		r.tokens[rv.Value] = rv.ExpiresAt
	case store.RevokeGrant:
		r.grants[rv.Value] = rv.ExpiresAt
	case store.RevokeClient:
		if rv.At.After(r.clients[rv.Value].at) {
			r.clients[rv.Value] = cutoff{rv.At, rv.ExpiresAt}
		}
	case store.RevokeSubject:
		if rv.At.After(r.subjects[rv.Value].at) {
			r.subjects[rv.Value] = cutoff{rv.At, rv.ExpiresAt}
		}
	case store.RevokeSession:
		r.sessions[rv.Value] = rv.ExpiresAt
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
	if co, ok := r.clients[c.ClientID]; ok && c.IssuedAt <= co.at.Unix() {
		return true
	}
	if co, ok := r.subjects[c.Subject]; ok && c.IssuedAt <= co.at.Unix() {
		return true
	}
	return false
}

// Len is how many entries the state holds.
func (r *Revocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.tokens) + len(r.grants) + len(r.clients) + len(r.subjects) + len(r.sessions)
}

// Sizes is how many entries the state holds of each kind: "token",
// "grant", "client", "subject" and "session".
func (r *Revocations) Sizes() map[string]int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return map[string]int{"token": len(r.tokens), "grant": len(r.grants), "client": len(r.clients), "subject": len(r.subjects),
		"session": len(r.sessions)}
}

// entryOverhead estimates what one entry costs beyond its key's bytes: the
// map slot, the string header and the times.
const entryOverhead = 96

// Bytes estimates the memory the state holds.
func (r *Revocations) Bytes() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for k := range r.tokens {
		n += len(k) + entryOverhead
	}
	for k := range r.grants {
		n += len(k) + entryOverhead
	}
	for k := range r.clients {
		n += len(k) + entryOverhead
	}
	for k := range r.subjects {
		n += len(k) + entryOverhead
	}
	for k := range r.sessions {
		n += len(k) + entryOverhead
	}
	return n
}

// SyncedAt is when the state was last confirmed current (zero: never).
func (r *Revocations) SyncedAt() time.Time {
	if n := r.synced.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Prune forgets entries whose tokens have all expired.
func (r *Revocations) Prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range []map[string]time.Time{r.tokens, r.grants, r.sessions} {
		for k, until := range m {
			if until.Before(now) {
				delete(m, k)
			}
		}
	}
	for _, m := range []map[string]cutoff{r.clients, r.subjects} {
		for k, co := range m {
			if co.until.Before(now) {
				delete(m, k)
			}
		}
	}
}

// IsRefreshRevoked reports whether a refresh token is dead: its grant was
// revoked, or its client's or user's tokens were cut off after it was issued.
func (r *Revocations) IsRefreshRevoked(grantID, clientID, subject string, issuedAt time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.grants[grantID]; ok {
		return true
	}
	if co, ok := r.clients[clientID]; ok && !issuedAt.After(co.at) {
		return true
	}
	if co, ok := r.subjects[subject]; ok && !issuedAt.After(co.at) {
		return true
	}
	return false
}

// IsSessionEnded reports whether the browser session sid, in which subject
// signed in at authTime, was ended: by itself (a logout), or by a
// revocation of the person since.
func (r *Revocations) IsSessionEnded(sid, subject string, authTime time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.sessions[sid]; ok {
		return true
	}
	co, ok := r.subjects[subject]
	return ok && !authTime.After(co.at)
}
