package client

import (
	"context"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestSecretChecker(t *testing.T) {
	ctx := context.Background()
	h, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	c := &Client{ID: "svc", SecretHash: string(h)}
	sc := NewSecrets()
	const here, there = "192.0.2.1", "198.51.100.7"

	if ok, _, _ := sc.check(ctx, c, "s3cret", here, true); !ok {
		t.Fatal("right secret refused")
	}
	if len(sc.verified) != 1 {
		t.Fatalf("a verified bcrypt secret is not cached: %d entries", len(sc.verified))
	}
	if ok, _, _ := sc.check(ctx, c, "s3cret", here, true); !ok {
		t.Fatal("cached secret refused")
	}
	if ok, _, _ := sc.check(ctx, c, "wrong", here, true); ok {
		t.Fatal("wrong secret accepted")
	}
	// A rotated secret: the old one's cache entry does not match any more.
	h2, _ := bcrypt.GenerateFromPassword([]byte("new"), bcrypt.MinCost)
	c2 := &Client{ID: "svc", SecretHash: string(h2)}
	if ok, _, _ := sc.check(ctx, c2, "s3cret", here, true); ok {
		t.Fatal("the old secret passed through the cache after rotation")
	}
	// Fast hashes are not cached: nothing to save.
	fast := &Client{ID: "gen", SecretHash: HashSecretSHA256("x")}
	if ok, _, _ := sc.check(ctx, fast, "x", here, false); !ok || len(sc.verified) != 1 {
		t.Fatalf("sha256 secret: ok=%v, cache %d", ok, len(sc.verified))
	}

	// Too many failures from one address lock that address out, even for
	// the right secret, without checking it; the window ends.
	for range failureLimit {
		sc.check(ctx, c2, "guess", here, true)
	}
	ok, locked, retry := sc.check(ctx, c2, "new", here, true)
	if ok || !locked || retry.Before(time.Now()) {
		t.Fatalf("after %d failures: ok=%v locked=%v", failureLimit, ok, locked)
	}
	// From anywhere else the right secret still works.
	if ok, locked, _ := sc.check(ctx, c2, "new", there, true); !ok || locked {
		t.Fatalf("another address was locked out by this one's failures: ok=%v locked=%v", ok, locked)
	}
	sc.failures[failureKey{"svc", here}].reset = time.Now().Add(-time.Second)
	if ok, locked, _ := sc.check(ctx, c2, "new", here, true); !ok || locked {
		t.Fatal("the lock outlived its window")
	}
	// Unlimited (generated) secrets never lock.
	for range 2 * failureLimit {
		sc.check(ctx, fast, "guess", here, false)
	}
	if ok, locked, _ := sc.check(ctx, fast, "x", here, false); !ok || locked {
		t.Fatal("a generated secret was locked out")
	}
}

// A secret_hash client starting cold under concurrency pays one bcrypt, not
// one per request: the others wait for its answer.
func TestSecretCheckerSingleFlight(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), 12)
	c := &Client{ID: "svc", SecretHash: string(h)}
	sc := NewSecrets()
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for range 32 {
		wg.Go(func() {
			if ok, _, _ := sc.check(context.Background(), c, "s3cret", "192.0.2.1", true); !ok {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if refused != 0 {
		t.Fatalf("%d of 32 requests refused", refused)
	}
	if n := sc.bcrypts.Load(); n != 1 {
		t.Fatalf("32 concurrent requests with one secret ran %d bcrypts, want 1", n)
	}
	// An entry in use stays trusted: each use moves its expiry on.
	for k := range sc.verified {
		sc.verified[k] = time.Now().Add(time.Second)
	}
	sc.check(context.Background(), c, "s3cret", "192.0.2.1", true)
	for k, until := range sc.verified {
		if time.Until(until) < secretCacheTTL-time.Minute {
			t.Fatalf("a used entry %x still expires in %s", k[:4], time.Until(until))
		}
	}
	if n := sc.bcrypts.Load(); n != 1 {
		t.Fatalf("a cached secret ran bcrypt again: %d", n)
	}
}

// A stored SHA-256 hash is checked whole: a hash of another length, or not
// hex, matches nothing (and never panics).
func TestVerifySecretSHA256(t *testing.T) {
	stored := HashSecretSHA256("s3cret")
	if !VerifySecret(stored, "s3cret") || VerifySecret(stored, "s3cres") {
		t.Fatal("the right secret is refused, or a wrong one accepted")
	}
	for _, bad := range []string{stored + "00", stored[:len(stored)-2], sha256Prefix, stored[:len(stored)-1] + "g"} {
		if VerifySecret(bad, "s3cret") {
			t.Errorf("stored %q matched", bad)
		}
	}
}
