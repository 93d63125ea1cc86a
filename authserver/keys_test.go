package authserver_test

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/introspect"
)

func issue(t *testing.T, e *env) string {
	t.Helper()
	m := decode(t, e.post("/oauth/token", form("grant_type", "client_credentials"), []string{"svc", "s3cret"}))
	tok, _ := m["access_token"].(string)
	if tok == "" {
		t.Fatalf("no token: %v", m)
	}
	return tok
}

func jwksKids(t *testing.T, k *keys.Ring) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid, Alg, Use, D string
		} `json:"keys"`
	}
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatal("the JWK Set publishes a private key")
		}
		if k.Alg == "" || k.Use != "sig" {
			t.Fatalf("JWK without alg/use: %+v", k)
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

// Restarts and other instances on the same store sign with the same keys:
// one of the access tokens' algorithm and, beside it, RS256 for ID tokens
// (one key when that is the access tokens' too).
func ringSize(alg string) int {
	if alg == keys.IDTokenAlg {
		return 1
	}
	return 2
}

func TestKeysSharedThroughStore(t *testing.T) {
	for _, alg := range keys.Algs {
		t.Run(alg, func(t *testing.T) {
			st := openStore(t)
			a := newEnvWith(t, st, alg)
			b := newEnvWith(t, st, alg)
			if ka, kb := a.keys.KeyIDs(), b.keys.KeyIDs(); len(ka) != ringSize(alg) || !slices.Equal(ka, kb) {
				t.Fatalf("instances disagree on keys: %v vs %v", ka, kb)
			}
			if _, err := b.validator.Validate(issue(t, a), ""); err != nil {
				t.Fatalf("token from instance A refused by B: %v", err)
			}
		})
	}
}

// Instances starting together on an empty store settle on one key.
func TestKeysConcurrentInit(t *testing.T) {
	st := openStore(t)
	var wg sync.WaitGroup
	rings := make([]*keys.Ring, 8)
	for i := range rings {
		k, err := keys.New(st, "ES256", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		rings[i] = k
		wg.Go(func() {
			if err := k.Init(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, k := range rings {
		if ids := k.KeyIDs(); len(ids) != 2 || !slices.Equal(ids, rings[0].KeyIDs()) {
			t.Fatalf("instances disagree: %v vs %v", ids, rings[0].KeyIDs())
		}
	}
}

func TestKeyRotation(t *testing.T) {
	st := openStore(t)
	a := newEnvWith(t, st, "ES256")
	b := newEnvWith(t, st, "ES256")
	// B reloads only when told here, not on the unknown kid by itself.
	b.validator.UnknownKey = nil
	before := issue(t, a)
	oldKid := a.keys.KeyIDs()[0]

	if err := a.keys.Rotate(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	kids := jwksKids(t, a.keys)
	if len(kids) != 4 || !slices.Contains(kids, oldKid) {
		t.Fatalf("after rotation the JWKS has %v; the old key must stay while its tokens live", kids)
	}
	after := issue(t, a)
	if kidOf(t, after) == oldKid {
		t.Fatal("after rotation tokens are still signed with the old key")
	}
	// A still accepts tokens signed before the rotation.
	if _, err := a.validator.Validate(before, ""); err != nil {
		t.Fatalf("pre-rotation token refused: %v", err)
	}
	// B learns of the new key by refreshing from the store.
	if _, err := b.validator.Validate(after, ""); err == nil {
		t.Fatal("B accepted a key it cannot know yet: the test is not testing refresh")
	}
	if err := b.keys.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.validator.Validate(after, ""); err != nil {
		t.Fatalf("B refuses the rotated key after refresh: %v", err)
	}
	if kidOf(t, issue(t, b)) == oldKid {
		t.Fatal("B still signs with the retired key")
	}
}

// A key rotated in with a delay is published before it signs.
func TestKeyRotationPublishesBeforeSigning(t *testing.T) {
	e := newEnv(t)
	oldKid := e.keys.KeyIDs()[0]
	if err := e.keys.Rotate(t.Context(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := len(jwksKids(t, e.keys)); n != 4 {
		t.Fatalf("next key not published: %d keys", n)
	}
	if kidOf(t, issue(t, e)) != oldKid {
		t.Fatal("a key scheduled for later already signs")
	}
}

// Retired keys are dropped once every token they signed has expired.
func TestRetiredKeysExpire(t *testing.T) {
	st := openStore(t)
	k, err := keys.New(st, "EdDSA", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := k.KeyIDs()[0]
	if err := k.Rotate(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := k.Rotate(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if ids := k.KeyIDs(); len(ids) != 4 || slices.Contains(ids, first) {
		t.Fatalf("keys %v: the first key's tokens are all expired, it must be gone", ids)
	}
}

// Changing signing_alg rotates to a key of the new algorithm and keeps the
// old one for its tokens.
func TestSigningAlgChange(t *testing.T) {
	st := openStore(t)
	es := newEnvWith(t, st, "ES256")
	old := issue(t, es)
	ed := newEnvWith(t, st, "EdDSA")
	tok := issue(t, ed)
	if alg := headerOf(t, tok)["alg"]; alg != "EdDSA" {
		t.Fatalf("after switching to EdDSA tokens are signed with %v", alg)
	}
	if _, err := ed.validator.Validate(old, ""); err != nil {
		t.Fatalf("ES256 token refused after the switch: %v", err)
	}
}

func TestUnsupportedAlg(t *testing.T) {
	if _, err := keys.New(openStore(t), "HS256", time.Hour); err == nil {
		t.Fatal("HS256 accepted")
	}
}

func headerOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, err := introspect.DecodeHeader(tok)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func kidOf(t *testing.T, tok string) string {
	kid, _ := headerOf(t, tok)["kid"].(string)
	return kid
}

// Scheduled rotation: the next key is published a quarter period before it
// signs, and of several instances due at once exactly one adds it.
func TestScheduledRotation(t *testing.T) {
	// Published at 4.5 s, signing at 6 s: the 1.45 s between is for one
	// instance to generate the next keys (RSA among them, slow on a busy
	// machine) and for every instance to load them before "before" is
	// issued.
	const every = 6 * time.Second
	st := openStore(t)
	instances := make([]*env, 4)
	for i := range instances {
		instances[i] = newEnvWith(t, st, "ES256")
	}
	e := instances[0]
	first := e.keys.KeyIDs()[0]
	if added, err := e.keys.RotateIfDue(t.Context(), every); added || err != nil {
		t.Fatalf("a fresh key was rotated: %v %v", added, err)
	}
	// The first keys became active before t0, so the next sign by t0+every.
	t0 := time.Now()
	time.Sleep(every - keys.Prepublish(every) + 50*time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	rotations := 0
	for _, in := range instances {
		wg.Go(func() {
			added, err := in.keys.RotateIfDue(t.Context(), every)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if added {
				rotations++
			}
		})
	}
	wg.Wait()
	if rotations != 1 {
		t.Fatalf("%d of %d instances rotated, want exactly 1", rotations, len(instances))
	}
	for _, in := range instances {
		if err := in.keys.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if kids := jwksKids(t, in.keys); len(kids) != 4 {
			t.Fatalf("after the rotation the JWK Set has %v, want the old and the next key of each algorithm", kids)
		}
	}
	before := issue(t, e)
	if kidOf(t, before) != first {
		t.Fatal("the next key signs before its time")
	}
	time.Sleep(time.Until(t0.Add(every)) + 50*time.Millisecond)
	after := issue(t, instances[1])
	if kidOf(t, after) == first {
		t.Fatal("the next key does not sign at its time")
	}
	for _, tok := range []string{before, after} {
		for _, in := range instances {
			if _, err := in.validator.Validate(tok, ""); err != nil {
				t.Fatalf("a token from before or after the rotation is refused: %v", err)
			}
		}
	}
	if added, _ := e.keys.RotateIfDue(t.Context(), every); added {
		t.Fatal("rotated again before the new key's period")
	}
}
