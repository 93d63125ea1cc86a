package authserver

import (
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"sync"
	"time"
)

// Checking a bcrypt secret_hash costs tens of milliseconds: paid on every
// token request it would cap an instance at a few dozen tokens a second.
// secretChecker remembers successful checks for a while instead, and
// limits failures so that the cache never speeds up guessing.
type secretChecker struct {
	key []byte // per process: cache keys are useless anywhere else

	mu       sync.Mutex
	verified map[[sha256.Size]byte]time.Time // → until
	failures map[string]*failureWindow       // client_id →
}

type failureWindow struct {
	count int
	reset time.Time
}

const (
	// secretCacheTTL: how long a verified (client, secret) pair is trusted
	// without bcrypt. A rotation changes the stored hash, which is part of
	// the cache key, so it takes effect at once.
	secretCacheTTL  = 5 * time.Minute
	secretCacheSize = 10_000
	// Failed client authentications allowed per client per window, per
	// instance; more are refused without checking.
	failureLimit        = 20
	failureWindowLength = time.Minute
)

func newSecretChecker() *secretChecker {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &secretChecker{key: key, verified: map[[sha256.Size]byte]time.Time{}, failures: map[string]*failureWindow{}}
}

// check verifies presented against the client's stored hash. It reports
// locked when the client has failed too often lately (and then does not
// check at all).
func (sc *secretChecker) check(c *Client, presented string) (ok, locked bool, retry time.Time) {
	now := time.Now()
	sc.mu.Lock()
	if f := sc.failures[c.ID]; f != nil && now.Before(f.reset) && f.count >= failureLimit {
		sc.mu.Unlock()
		return false, true, f.reset
	}
	sc.mu.Unlock()

	fast := strings.HasPrefix(c.SecretHash, sha256Prefix)
	var key [sha256.Size]byte
	if !fast {
		keyedMAC(key[:0], sc.key, c.ID, c.SecretHash, presented)
		sc.mu.Lock()
		until, hit := sc.verified[key]
		sc.mu.Unlock()
		if hit && now.Before(until) {
			return true, false, time.Time{}
		}
	}
	if !verifySecret(c.SecretHash, presented) {
		sc.mu.Lock()
		f := sc.failures[c.ID]
		if f == nil || !now.Before(f.reset) {
			f = &failureWindow{reset: now.Add(failureWindowLength)}
			sc.failures[c.ID] = f
		}
		f.count++
		sc.mu.Unlock()
		return false, false, time.Time{}
	}
	if !fast {
		sc.mu.Lock()
		if len(sc.verified) >= secretCacheSize {
			for k, until := range sc.verified {
				if !now.Before(until) || len(sc.verified) >= secretCacheSize {
					delete(sc.verified, k)
				}
			}
		}
		sc.verified[key] = now.Add(secretCacheTTL)
		sc.mu.Unlock()
	}
	return true, false, time.Time{}
}
