package introspect

import (
	"crypto/sha256"
	"sync"
)

// TokenCache remembers tokens whose signature verified, so that the next
// request with the same token skips the signature (the expensive part)
// and the JSON decoding. Entries are keyed by the token's SHA-256, hold
// the decoded claims, and are re-checked on every hit: expiry, audience
// and revocation are never cached, so an entry cannot outlive its token
// nor a revocation.
type TokenCache struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]*Claims
	max     int
}

// NewTokenCache holds at most max tokens.
func NewTokenCache(max int) *TokenCache {
	return &TokenCache{entries: make(map[[sha256.Size]byte]*Claims, max), max: max}
}

func (tc *TokenCache) get(key *[sha256.Size]byte) *Claims {
	tc.mu.RLock()
	c := tc.entries[*key]
	tc.mu.RUnlock()
	return c
}

func (tc *TokenCache) put(key *[sha256.Size]byte, c *Claims, now int64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.entries) >= tc.max {
		// Full: drop expired entries, or if none, some arbitrary ones
		// (map order is random), a tenth of the cache at a time so that
		// this stays rare.
		drop := tc.max / 10
		for k, old := range tc.entries {
			if old.ExpiresAt <= now || drop > 0 {
				delete(tc.entries, k)
				drop--
			}
		}
	}
	tc.entries[*key] = c
}

// Len is how many tokens the cache holds.
func (tc *TokenCache) Len() int {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	return len(tc.entries)
}
