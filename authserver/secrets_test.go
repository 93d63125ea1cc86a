package authserver

import (
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestSecretChecker(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	c := &Client{ID: "svc", SecretHash: string(h)}
	sc := newSecretChecker()

	if ok, _, _ := sc.check(c, "s3cret"); !ok {
		t.Fatal("right secret refused")
	}
	if len(sc.verified) != 1 {
		t.Fatalf("a verified bcrypt secret is not cached: %d entries", len(sc.verified))
	}
	if ok, _, _ := sc.check(c, "s3cret"); !ok {
		t.Fatal("cached secret refused")
	}
	if ok, _, _ := sc.check(c, "wrong"); ok {
		t.Fatal("wrong secret accepted")
	}
	// A rotated secret: the old one's cache entry does not match any more.
	h2, _ := bcrypt.GenerateFromPassword([]byte("new"), bcrypt.MinCost)
	c2 := &Client{ID: "svc", SecretHash: string(h2)}
	if ok, _, _ := sc.check(c2, "s3cret"); ok {
		t.Fatal("the old secret passed through the cache after rotation")
	}
	// Fast hashes are not cached: nothing to save.
	fast := &Client{ID: "gen", SecretHash: HashSecretSHA256("x")}
	if ok, _, _ := sc.check(fast, "x"); !ok || len(sc.verified) != 1 {
		t.Fatalf("sha256 secret: ok=%v, cache %d", ok, len(sc.verified))
	}

	// Too many failures lock the client out, even for the right secret,
	// without checking it; the window ends.
	for range failureLimit {
		sc.check(c2, "guess")
	}
	ok, locked, retry := sc.check(c2, "new")
	if ok || !locked || retry.Before(time.Now()) {
		t.Fatalf("after %d failures: ok=%v locked=%v", failureLimit, ok, locked)
	}
	sc.failures["svc"].reset = time.Now().Add(-time.Second)
	if ok, locked, _ := sc.check(c2, "new"); !ok || locked {
		t.Fatal("the lock outlived its window")
	}
}
