package client

// RFC 6749 §2.3.1: client secrets, how they are stored, and checking
// them, cached, shared and bounded.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/tokengate/authserver/oauth"
)

// HashSecretSHA256 hashes a high-entropy secret for storage. Generated and
// configured plain secrets use it: they are random or held only in memory,
// so a slow hash buys nothing and would cost every token request.
func HashSecretSHA256(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return sha256Prefix + hex.EncodeToString(sum[:])
}

// sha256Prefix marks a stored secret hash as HashSecretSHA256's.
const sha256Prefix = "sha256:"

// IsBcryptHash reports whether h looks like a bcrypt hash, as made by
// `tokengate hash-password`.
func IsBcryptHash(h string) bool {
	_, err := bcrypt.Cost([]byte(h))
	return err == nil
}

// VerifySecret checks a presented secret in constant time against a stored
// "sha256:<hex>" or bcrypt hash.
func VerifySecret(stored, presented string) bool {
	if hexSum, ok := strings.CutPrefix(stored, sha256Prefix); ok {
		sum := sha256.Sum256([]byte(presented))
		var want [sha256.Size]byte
		if len(hexSum) != hex.EncodedLen(len(want)) {
			return false
		}
		_, err := hex.Decode(want[:], []byte(hexSum))
		return err == nil && subtle.ConstantTimeCompare(sum[:], want[:]) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(stored), []byte(presented)) == nil
}

// NewSecret makes a client secret: 256 random bits. It is stored as a
// SHA-256, which costs microseconds to check and is as strong as bcrypt
// for a secret nobody can guess.
func NewSecret() (secret, hash string) {
	secret = oauth.RandomToken(32)
	return secret, HashSecretSHA256(secret)
}

// NewID makes a client ID people type into shells and command lines: 128
// random bits in hex, so it never starts with a dash (which a CLI would
// take for a flag) nor needs quoting.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Checking a bcrypt secret_hash costs tens of milliseconds (a second at
// cost 14): paid on every token request it would cap an instance at a few
// dozen tokens a second, and a burst of them would starve every other
// request of CPU. Secrets therefore
//   - remembers successful checks, trusting an entry for secretCacheTTL
//     from its last use: a (client, stored hash, presented secret) that
//     matched once always will, and a rotation changes the stored hash;
//   - runs one bcrypt per (client, stored hash, presented secret) at a
//     time: concurrent requests with the same secret wait for its answer;
//   - runs at most bcryptSlots bcrypts at once, so they leave CPU for
//     everything else;
//   - limits failures per (client, client address), so that guessing is
//     slowed without anyone being able to lock a client out from
//     elsewhere. Generated secrets (256 random bits) are not limited:
//     nobody guesses them.
type Secrets struct {
	key []byte // per process: cache keys are useless anywhere else
	// slots bounds concurrent bcrypt work.
	slots chan struct{}
	// bcrypts counts bcrypt comparisons run (secrets and sign-ins), for tests.
	bcrypts atomic.Int64

	mu       sync.Mutex
	verified map[[sha256.Size]byte]time.Time // → until
	inflight map[[sha256.Size]byte]*secretCheck
	failures map[failureKey]*failureWindow
	// keyers make the cache's keys (cacheKey) without allocating.
	keyers sync.Pool
}

// failureKey is what failures are counted by: a client and an address
// (see ipKey). A struct, so that looking one up builds no string.
type failureKey struct{ client, address string }

// keyer is an HMAC under the Secrets' key and a buffer for its input.
type keyer struct {
	mac      hash.Hash
	buf, sum []byte
}

// secretCheck is one bcrypt under way; done closes when ok is set.
type secretCheck struct {
	done chan struct{}
	ok   bool
}

type failureWindow struct {
	count int
	reset time.Time
}

const (
	// secretCacheTTL is how long a verified (client, secret) pair stays
	// trusted after its last use without bcrypt.
	secretCacheTTL  = 5 * time.Minute
	secretCacheSize = 10_000
	// Failed client authentications allowed per client and address per
	// window, per instance; more from that address are refused unchecked.
	failureLimit        = 20
	failureWindowLength = time.Minute
	// failureEntries bounds the failure table: past it, expired windows
	// are dropped, and addresses beyond it are not tracked (bcrypt's cost
	// and the slots still pace them).
	failureEntries = 10_000
)

// bcryptSlots leaves at least half the CPUs to everything else.
var bcryptSlots = max(1, runtime.GOMAXPROCS(0)/2)

// NewSecrets makes an empty checker, with a key of its own for its cache.
func NewSecrets() *Secrets {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sc := &Secrets{key: key, slots: make(chan struct{}, bcryptSlots), verified: map[[sha256.Size]byte]time.Time{},
		inflight: map[[sha256.Size]byte]*secretCheck{}, failures: map[failureKey]*failureWindow{}}
	sc.keyers.New = func() any { return &keyer{mac: hmac.New(sha256.New, key), sum: make([]byte, 0, sha256.Size)} }
	return sc
}

// cacheKey is the verified cache's key of a client's stored hash and a
// presented secret: an HMAC under the process's key, so that the keys are
// useless anywhere else.
func (sc *Secrets) cacheKey(c *Client, presented string) (key [sha256.Size]byte) {
	k := sc.keyers.Get().(*keyer)
	defer sc.keyers.Put(k)
	k.buf = append(k.buf[:0], c.ID...)
	k.buf = append(append(append(append(k.buf, 0), c.SecretHash...), 0), presented...)
	k.mac.Reset()
	k.mac.Write(k.buf)
	copy(key[:], k.mac.Sum(k.sum[:0]))
	return key
}

// check verifies presented against the client's stored hash, for a
// request from address (see ipKey). With limited set, failures from that
// address count, and once over the limit it reports locked (and does not
// check at all).
func (sc *Secrets) check(ctx context.Context, c *Client, presented, address string, limited bool) (ok, locked bool, retry time.Time) {
	now := time.Now()
	var lockKey failureKey
	if limited {
		lockKey = failureKey{c.ID, address}
		sc.mu.Lock()
		f := sc.failures[lockKey]
		sc.mu.Unlock()
		if f != nil && now.Before(f.reset) && f.count >= failureLimit {
			return false, true, f.reset
		}
	}
	if strings.HasPrefix(c.SecretHash, sha256Prefix) {
		ok = VerifySecret(c.SecretHash, presented)
	} else {
		ok = sc.checkSlow(ctx, c, presented, now)
	}
	if !ok && limited {
		sc.fail(lockKey, now)
	}
	return ok, false, time.Time{}
}

// checkSlow is the bcrypt path: the cache, else one comparison shared by
// every request presenting the same secret meanwhile.
func (sc *Secrets) checkSlow(ctx context.Context, c *Client, presented string, now time.Time) bool {
	key := sc.cacheKey(c, presented)
	sc.mu.Lock()
	if until, hit := sc.verified[key]; hit && now.Before(until) {
		sc.verified[key] = now.Add(secretCacheTTL) // trusted from the last use
		sc.mu.Unlock()
		return true
	}
	if f := sc.inflight[key]; f != nil {
		sc.mu.Unlock()
		select {
		case <-f.done:
			return f.ok
		case <-ctx.Done():
			return false
		}
	}
	f := &secretCheck{done: make(chan struct{})}
	sc.inflight[key] = f
	sc.mu.Unlock()

	f.ok = sc.Bcrypt(ctx, func() bool { return VerifySecret(c.SecretHash, presented) })
	sc.mu.Lock()
	delete(sc.inflight, key)
	if f.ok {
		sc.remember(key, now)
	}
	sc.mu.Unlock()
	close(f.done)
	return f.ok
}

// Bcrypt runs compare, a bcrypt comparison, in one of the slots (waiting
// for one while ctx lasts; false if it ends first). Sign-ins use it too.
func (sc *Secrets) Bcrypt(ctx context.Context, compare func() bool) bool {
	select {
	case sc.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-sc.slots }()
	sc.bcrypts.Add(1)
	return compare()
}

// remember caches a verified key; sc.mu is held.
func (sc *Secrets) remember(key [sha256.Size]byte, now time.Time) {
	if len(sc.verified) >= secretCacheSize {
		for k, until := range sc.verified {
			if !now.Before(until) || len(sc.verified) >= secretCacheSize {
				delete(sc.verified, k)
			}
		}
	}
	sc.verified[key] = now.Add(secretCacheTTL)
}

// fail counts one failure for lockKey.
func (sc *Secrets) fail(lockKey failureKey, now time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	f := sc.failures[lockKey]
	if f == nil || !now.Before(f.reset) {
		if f == nil && len(sc.failures) >= failureEntries {
			for k, old := range sc.failures {
				if !now.Before(old.reset) {
					delete(sc.failures, k)
				}
			}
			if len(sc.failures) >= failureEntries {
				return
			}
		}
		f = &failureWindow{reset: now.Add(failureWindowLength)}
		sc.failures[lockKey] = f
	}
	f.count++
}

// BcryptRuns is how many bcrypt comparisons sc has run.
func (sc *Secrets) BcryptRuns() int64 { return sc.bcrypts.Load() }
