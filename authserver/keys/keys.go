// Package keys manages an issuer's signing keys: a key ring in the store
// (store.KeyStore), shared by every instance and every restart, with
// scheduled rotation that publishes a key before it signs, retired keys
// kept published while tokens they signed may be valid, and a ring the
// store lost written back. It signs access tokens, OpenID Connect's ID
// and logout tokens, and cookies' MACs.
package keys

// RFC 7517 and RFC 7638: the signing key ring, published as a JWK Set.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/jose"
)

// MinCookieSecret is the shortest cookie secret a MAC is made with: with
// an empty or short key (a key ring lost from the store) anyone could make
// the MAC, so there is none and every check fails.
const MinCookieSecret = 32

// Algs are the signing algorithms an issuer may use.
var Algs = jose.Signing

// CheckAlg says, in the configuration's words, whether alg is one of Algs.
func CheckAlg(alg string) error {
	if !slices.Contains(Algs, alg) {
		return fmt.Errorf("signing_alg %q is not supported: use one of %s", alg, strings.Join(Algs, ", "))
	}
	return nil
}

// IDTokenAlg is the algorithm every OpenID Provider can sign ID tokens
// with (OpenID Connect Discovery 1.0 §3): the ring always holds a key of it.
const IDTokenAlg = "RS256"

// IDTokenAlgOf is the algorithm of a client's ID tokens (and logout
// tokens) whose id_token_alg is chosen: that, else RS256.
func IDTokenAlgOf(chosen string) string {
	if chosen != "" {
		return chosen
	}
	return IDTokenAlg
}

// Token types the ring signs (the JWS typ header): access tokens (RFC
// 9068 §2.1), ID tokens (OpenID Connect Core §2, as most relying parties
// expect it), logout tokens (OpenID Connect Back-Channel Logout §2.4) and
// identity assertions for other authorization servers
// (draft-ietf-oauth-identity-assertion-authz-grant §3).
const (
	TypeAccessToken = "at+jwt"
	TypeIDToken     = "JWT"
	TypeLogoutToken = "logout+jwt"
	TypeIDJAG       = "oauth-id-jag+jwt"
)

// types are the typ headers each key's fixed headers are made for.
var types = []string{TypeAccessToken, TypeIDToken, TypeLogoutToken, TypeIDJAG}

// Ring manages an issuer's signing keys: one signing key for each of its
// algorithms (the access tokens' first, then RS256 and any other an ID
// token may use), rotated together. The key ring lives in the store so
// that restarts and every instance sharing the store sign with the same
// keys; Ring holds a decoded copy that Refresh replaces.
type Ring struct {
	store store.KeyStore
	// alg signs access tokens; algs are every algorithm the ring has a
	// signing key of, alg first.
	alg  string
	algs []string
	// keep is how long a retired key stays published: the longest time a
	// token it signed can remain valid.
	keep time.Duration

	cur atomic.Pointer[keySnapshot]
	mu  sync.Mutex // serializes Refresh and Rotate within this process

	// lost is set while the store's key ring has no signing key or cookie
	// secret (the store lost its data) and this instance has not yet
	// written its own back.
	lost atomic.Bool
	// Logger and OnLoss, when set, hear of a lost key ring: OnLoss once
	// per loss noticed (for a metric).
	Logger *zap.Logger
	OnLoss func()
}

// keySnapshot is an immutable decoded key ring.
type keySnapshot struct {
	ring         *store.KeyRing // as stored, to write back after a loss
	version      int64
	cookieSecret []byte
	keys         []*liveKey // newest ActiveAt first
	byID         map[string]*liveKey
	jwks         []byte
}

// liveKey is a decoded signing key.
type liveKey struct {
	meta   store.SigningKey
	alg    jwa.SignatureAlgorithm
	signer any // raw crypto private key
	public any // raw crypto public key, for verification
	// headers are the protected headers the tokens it signs carry, by typ:
	// fixed, so that only a payload is encoded per token.
	headers map[string][]byte
}

// New prepares key management for access tokens signed with alg and ID
// tokens signed with RS256 or any of also, keeping retired keys published
// for keep.
func New(st store.KeyStore, alg string, keep time.Duration, also ...string) (*Ring, error) {
	if err := CheckAlg(alg); err != nil {
		return nil, err
	}
	algs := []string{alg}
	for _, a := range append([]string{IDTokenAlg}, also...) {
		if err := CheckAlg(a); err != nil {
			return nil, err
		}
		if !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	return &Ring{store: st, alg: alg, algs: algs, keep: keep}, nil
}

// Algs are the algorithms the ring signs with, the access tokens' first.
func (k *Ring) Algs() []string { return slices.Clone(k.algs) }

// Init loads the key ring, generating a key for each of the ring's
// algorithms that has none signing (a new ring, a new algorithm), and
// retiring the keys of an algorithm no longer configured. Instances
// starting together on an empty store settle on one key of each.
func (k *Ring) Init(ctx context.Context) error {
	_, err := k.rotate(ctx, func(snap *keySnapshot, now time.Time) ([]string, time.Duration) {
		var missing []string
		for _, alg := range k.algs {
			if snap.signing(alg, now) == nil {
				missing = append(missing, alg)
			}
		}
		return missing, 0
	})
	return err
}

// Refresh reloads the key ring from the store. A stored ring without a
// signing key or cookie secret is never installed: the store lost it, and
// the ring this instance holds is written back instead (a compare-and-swap
// on the emptied store, so instances doing so at once settle on one).
func (k *Ring) Refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	ring, err := k.store.Keys(ctx)
	if err != nil {
		return fmt.Errorf("loading signing keys: %w", err)
	}
	cur := k.cur.Load()
	if !usable(ring) {
		return k.restore(ctx, ring, cur)
	}
	k.lost.Store(false)
	if cur != nil && cur.version == ring.Version {
		return nil
	}
	snap, err := decodeRing(ring, k.alg)
	if err != nil {
		return err
	}
	k.cur.Store(snap)
	return nil
}

// usable says whether a ring can serve: a signing key and a cookie secret.
func usable(ring *store.KeyRing) bool {
	return len(ring.Keys) > 0 && len(ring.CookieSecret) >= MinCookieSecret
}

// Lost reports whether the store's key ring is lost and not yet restored.
func (k *Ring) Lost() bool { return k.lost.Load() }

// restore writes the ring this instance holds over the store's unusable
// one; k.mu is held.
func (k *Ring) restore(ctx context.Context, stored *store.KeyRing, cur *keySnapshot) error {
	if cur == nil || cur.ring == nil {
		return errors.New("the store's key ring has no signing key or cookie secret, and this instance holds none to restore")
	}
	if !k.lost.Swap(true) {
		if k.OnLoss != nil {
			k.OnLoss()
		}
		if k.Logger != nil {
			k.Logger.Error("the store lost the signing key ring (restarted empty, flushed or evicted); writing back the one this instance holds")
		}
	}
	ring := cur.ring.Clone()
	err := k.store.SwapKeys(ctx, stored.Version, ring)
	if errors.Is(err, store.ErrConflict) {
		return nil // another instance wrote first: the next refresh reads it
	}
	if err != nil {
		return fmt.Errorf("restoring the signing key ring: %w", err)
	}
	snap, err := decodeRing(ring, k.alg)
	if err != nil {
		return err
	}
	k.cur.Store(snap)
	k.lost.Store(false)
	if k.Logger != nil {
		k.Logger.Info("signing key ring restored to the store", zap.Strings("kids", k.KeyIDs()))
	}
	return nil
}

// Rotate adds a new key of each of the ring's algorithms that starts
// signing after delay (published at once, so JWKS caches see it first),
// and retires the current ones, which stay published until their tokens
// have expired. Instances racing to rotate settle on one new key of each
// through the store's compare-and-swap: a loser reloads and finds the
// winner's keys.
func (k *Ring) Rotate(ctx context.Context, delay time.Duration) error {
	_, err := k.rotate(ctx, func(*keySnapshot, time.Time) ([]string, time.Duration) { return k.algs, delay })
	return err
}

// RotateIfDue is the scheduled rotation, every period: once the newest key
// is due to be replaced within Prepublish(every), it adds the next key,
// published at once and signing from when the newest is every old, so that
// JWKS caches downstream have it before any token does. Every instance
// sharing a store checks; the key ring's compare-and-swap is the lock that
// lets exactly one add the key: the others, re-reading, find it no longer
// due. It reports whether this call added the key.
func (k *Ring) RotateIfDue(ctx context.Context, every time.Duration) (bool, error) {
	if every <= 0 || !k.cur.Load().rotationDue(time.Now(), every) {
		return false, nil
	}
	return k.rotate(ctx, func(snap *keySnapshot, now time.Time) ([]string, time.Duration) {
		if !snap.rotationDue(now, every) {
			return nil, 0
		}
		return k.algs, max(0, snap.keys[0].meta.ActiveAt.Add(every).Sub(now))
	})
}

// Prepublish is how long before it signs a scheduled rotation publishes the
// next key: a quarter of the period, at most a day (JWKS caches commonly
// hold a document for minutes to hours).
func Prepublish(every time.Duration) time.Duration { return min(every/4, 24*time.Hour) }

// rotationDue says whether a scheduled rotation every period must publish
// the next key now.
func (snap *keySnapshot) rotationDue(now time.Time, every time.Duration) bool {
	if snap == nil || len(snap.keys) == 0 {
		return false
	}
	next := snap.keys[0].meta.ActiveAt.Add(every)
	return !now.Before(next.Add(-Prepublish(every)))
}

// rotate is the compare-and-swap loop every change of the key ring goes
// through: decide says, on the ring as stored, of which algorithms to add
// a key and after what delay they sign. It also gives a ring its cookie
// secret.
func (k *Ring) rotate(ctx context.Context, decide func(snap *keySnapshot, now time.Time) (add []string, delay time.Duration)) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for range 10 {
		ring, err := k.store.Keys(ctx)
		if err != nil {
			return false, fmt.Errorf("loading signing keys: %w", err)
		}
		if cur := k.cur.Load(); !usable(ring) && cur != nil && cur.ring != nil {
			// The store lost the ring: rotate the one held here, not an
			// empty one.
			version := ring.Version
			ring = cur.ring.Clone()
			ring.Version = version
		}
		snap, err := decodeRing(ring, k.alg)
		if err != nil {
			return false, err
		}
		now := time.Now().UTC()
		add, delay := decide(snap, now)
		if len(add) == 0 && len(ring.CookieSecret) > 0 {
			k.cur.Store(snap)
			return false, nil
		}
		prev := ring.Version
		if len(ring.CookieSecret) == 0 {
			ring.CookieSecret = make([]byte, 32)
			_, _ = rand.Read(ring.CookieSecret)
		}
		if len(add) > 0 {
			if err := k.addKeys(ring, add, now, delay); err != nil {
				return false, err
			}
		}
		err = k.store.SwapKeys(ctx, prev, ring)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("saving signing keys: %w", err)
		}
		if snap, err = decodeRing(ring, k.alg); err != nil {
			return false, err
		}
		k.cur.Store(snap)
		return len(add) > 0, nil
	}
	return false, errors.New("rotating signing keys: too many concurrent rotations")
}

// addKeys retires the signing keys of algs in favour of new ones active
// after delay, and those of algorithms the ring no longer has; it drops
// keys whose tokens have all expired.
func (k *Ring) addKeys(ring *store.KeyRing, algs []string, now time.Time, delay time.Duration) error {
	var added []store.SigningKey
	for _, alg := range algs {
		next, err := generateKey(alg, now, now.Add(delay))
		if err != nil {
			return fmt.Errorf("generating %s signing key: %w", alg, err)
		}
		added = append(added, next)
	}
	active := now.Add(delay)
	keys := ring.Keys[:0:0]
	for _, old := range ring.Keys {
		if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(now) {
			continue // no token it signed is valid any more
		}
		if old.RetiredAt.IsZero() && (slices.Contains(algs, old.Alg) || !slices.Contains(k.algs, old.Alg)) {
			old.RetiredAt = active
			old.ExpiresAt = active.Add(k.keep)
		}
		keys = append(keys, old)
	}
	ring.Keys = append(keys, added...)
	return nil
}

// CookieSecret is the issuer's key for signing session cookies and CSRF
// tokens, the same on every instance.
func (k *Ring) CookieSecret() []byte {
	if snap := k.cur.Load(); snap != nil {
		return snap.cookieSecret
	}
	return nil
}

// CanSign says whether a key signs access tokens at time now.
func (k *Ring) CanSign(now time.Time) bool { return k.cur.Load().signing(k.alg, now) != nil }

// ErrNoSigningKey means no key of the ring signs yet.
var ErrNoSigningKey = errors.New("no signing key is active")

// Sign is the access token (typ at+jwt) of payload: its compact JWS
// under the key that signs access tokens at now.
func (k *Ring) Sign(payload []byte, now time.Time) (string, error) {
	return k.SignAs(k.alg, TypeAccessToken, payload, now)
}

// SignAs is the compact JWS of payload under the key of alg that signs at
// now, with that key's fixed protected header for typ (one of the Type
// constants): only the payload is encoded per token, then signed (jwx's
// building blocks).
func (k *Ring) SignAs(alg, typ string, payload []byte, now time.Time) (string, error) {
	key := k.cur.Load().signing(alg, now)
	if key == nil {
		return "", ErrNoSigningKey
	}
	header, ok := key.headers[typ]
	if !ok {
		return "", fmt.Errorf("no header for token type %q", typ)
	}
	input := jwsbb.SignBuffer(make([]byte, 0, 512), header, payload, base64.RawURLEncoding, true)
	sig, err := jwsbb.Sign(key.signer, key.meta.Alg, input, nil)
	if err != nil {
		return "", err
	}
	input = append(input, '.')
	return string(base64.RawURLEncoding.AppendEncode(input, sig)), nil
}

// signing is the key of alg that signs at time now: the one of that
// algorithm activated last.
func (snap *keySnapshot) signing(alg string, now time.Time) *liveKey {
	if snap == nil {
		return nil
	}
	for _, lk := range snap.keys {
		if lk.meta.Alg == alg && !lk.meta.ActiveAt.After(now) {
			return lk
		}
	}
	return nil
}

// PublicKey returns the verification key and its pinned algorithm for kid.
func (k *Ring) PublicKey(kid string) (jwa.SignatureAlgorithm, any, bool) {
	snap := k.cur.Load()
	if snap == nil {
		return jwa.SignatureAlgorithm{}, nil, false
	}
	lk, ok := snap.byID[kid]
	if !ok {
		return jwa.SignatureAlgorithm{}, nil, false
	}
	return lk.alg, lk.public, true
}

// JWKS returns the JWK Set document: every published public key.
func (k *Ring) JWKS() []byte {
	if snap := k.cur.Load(); snap != nil {
		return snap.jwks
	}
	return []byte(`{"keys":[]}`)
}

// KeyIDs lists the published key IDs, newest first.
func (k *Ring) KeyIDs() []string {
	var ids []string
	if snap := k.cur.Load(); snap != nil {
		for _, lk := range snap.keys {
			ids = append(ids, lk.meta.ID)
		}
	}
	return ids
}

// cmpBool orders true before false.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

func generateKey(alg string, created, active time.Time) (store.SigningKey, error) {
	var raw any
	var err error
	switch alg {
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	case "RS256":
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		err = fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err != nil {
		return store.SigningKey{}, err
	}
	key, err := jwk.Import(raw)
	if err != nil {
		return store.SigningKey{}, err
	}
	// The kid is the RFC 7638 thumbprint: unique and derived, not chosen.
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return store.SigningKey{}, err
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	sa, _ := jwa.LookupSignatureAlgorithm(alg)
	for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: sa, jwk.KeyUsageKey: "sig"} {
		if err := key.Set(name, v); err != nil {
			return store.SigningKey{}, err
		}
	}
	data, err := json.Marshal(key)
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{ID: kid, Alg: alg, JWK: data, CreatedAt: created, ActiveAt: active}, nil
}

// decodeRing decodes a stored ring whose access tokens are signed with
// first.
func decodeRing(ring *store.KeyRing, first string) (*keySnapshot, error) {
	snap := &keySnapshot{ring: ring.Clone(), version: ring.Version, cookieSecret: ring.CookieSecret, byID: map[string]*liveKey{}}
	set := jwk.NewSet()
	// Newest first, in the JWKS too, and of keys made together the access
	// tokens' first, so that their signing key leads.
	sorted := slices.Clone(ring.Keys)
	slices.SortStableFunc(sorted, func(a, b store.SigningKey) int {
		if c := b.ActiveAt.Compare(a.ActiveAt); c != 0 {
			return c
		}
		return cmpBool(a.Alg == first, b.Alg == first)
	})
	for _, sk := range sorted {
		priv, err := jwk.ParseKey(sk.JWK)
		if err != nil {
			return nil, fmt.Errorf("decoding signing key %s: %w", sk.ID, err)
		}
		pub, err := priv.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("deriving public key %s: %w", sk.ID, err)
		}
		var raw any
		if err := jwk.Export(pub, &raw); err != nil {
			return nil, fmt.Errorf("exporting public key %s: %w", sk.ID, err)
		}
		alg, ok := jwa.LookupSignatureAlgorithm(sk.Alg)
		if !ok {
			return nil, fmt.Errorf("signing key %s has unknown algorithm %q", sk.ID, sk.Alg)
		}
		var signer any
		if err := jwk.Export(priv, &signer); err != nil {
			return nil, fmt.Errorf("exporting signing key %s: %w", sk.ID, err)
		}
		lk := &liveKey{meta: sk, alg: alg, signer: signer, public: raw, headers: map[string][]byte{}}
		for _, typ := range types {
			if lk.headers[typ], err = json.Marshal(map[string]string{"alg": sk.Alg, "kid": sk.ID, "typ": typ}); err != nil {
				return nil, err
			}
		}
		snap.keys = append(snap.keys, lk)
		snap.byID[sk.ID] = lk
		if err := set.AddKey(pub); err != nil {
			return nil, fmt.Errorf("publishing key %s: %w", sk.ID, err)
		}
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encoding JWK Set: %w", err)
	}
	snap.jwks = jwks
	return snap, nil
}
