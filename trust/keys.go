package trust

// Another server's signing keys (a trusted issuer's, a login provider's):
// its JWK Set, fetched through the trusted client, kept in memory,
// refreshed as its Cache-Control says (within bounds), and fetched again
// for a key ID it does not hold, at most once per refetchEvery, whatever
// the number of requests asking.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokengate/tokengate/outbound"
)

// Bounds of the key set's life in memory, and of refetching for unknown
// key IDs (Envoy's lesson: a token with a random kid must not make the
// gateway hammer the issuer).
const (
	keysLeast = 5 * time.Minute
	keysMost  = 24 * time.Hour
)

// DefaultRefetchEvery is KeysConfig.RefetchEvery's default.
const DefaultRefetchEvery = 30 * time.Second

type publicKey struct {
	alg jwa.SignatureAlgorithm
	key any
}

// Keys are a server's published keys. They are an introspect.KeySource;
// UnknownKey is the Validator's.
type Keys struct {
	fetch        *outbound.Client
	uri          func(ctx context.Context) (string, error)
	log          *zap.Logger
	refetchEvery time.Duration

	mu      sync.RWMutex
	keys    map[string]publicKey
	only    *publicKey // the key, when the set has exactly one (tokens without kid)
	fetched time.Time  // of the last attempt
	expires time.Time  // of the keys held
	err     error      // of the last attempt
	running chan struct{}
	dropped map[string]bool // the unusable keys of the last set, logged already
}

// PublicKey implements introspect.KeySource. A token without kid gets the
// set's only key.
func (s *Keys) PublicKey(kid string) (jwa.SignatureAlgorithm, any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if kid == "" {
		if s.only == nil {
			return jwa.EmptySignatureAlgorithm(), nil, false
		}
		return s.only.alg, s.only.key, true
	}
	k, ok := s.keys[kid]
	return k.alg, k.key, ok
}

// UnknownKey is the Validator's UnknownKey: it fetches the set again
// unless that was tried within refetchEvery, and waits for a fetch
// already under way. An error means there are no keys to check with.
func (s *Keys) UnknownKey(string) (bool, error) {
	s.mu.Lock()
	if wait := s.running; wait != nil {
		s.mu.Unlock()
		<-wait
		return true, s.lastErr()
	}
	if time.Since(s.fetched) < s.refetchEvery {
		err := s.err
		s.mu.Unlock()
		return false, err
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.refresh(ctx)
	return err == nil, err
}

func (s *Keys) lastErr() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.err
}

// refresh fetches the set, one fetch at a time; keys held stay in use when
// it fails.
func (s *Keys) refresh(ctx context.Context) error {
	s.mu.Lock()
	if wait := s.running; wait != nil {
		s.mu.Unlock()
		<-wait
		return s.lastErr()
	}
	done := make(chan struct{})
	s.running, s.fetched = done, time.Now()
	s.mu.Unlock()

	keys, only, life, err := s.load(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.running, s.err = nil, err
	if err == nil {
		s.keys, s.only, s.expires = keys, only, time.Now().Add(life)
	}
	close(done)
	return err
}

// load fetches and reads the key set, key by key: a key it cannot use is
// dropped (and logged the first time it is met), the rest kept.
func (s *Keys) load(ctx context.Context) (map[string]publicKey, *publicKey, time.Duration, error) {
	uri, err := s.uri(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	resp, err := s.fetch.Get(ctx, uri)
	if err != nil {
		return nil, nil, 0, err
	}
	set, err := ReadKeySet(resp.Body)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%s: %w", uri, err)
	}
	s.logDropped(uri, set.Dropped)
	keys := map[string]publicKey{}
	var only *publicKey
	for i := range set.Set.Len() {
		k, _ := set.Set.Key(i)
		alg, _ := signingAlg(k)
		var raw any
		if err := jwk.Export(k, &raw); err != nil {
			continue
		}
		kid, _ := k.KeyID()
		pk := publicKey{alg, raw}
		keys[kid] = pk
		only = &pk
	}
	if len(keys) == 0 {
		return nil, nil, 0, fmt.Errorf("%s holds no asymmetric signing key tokengate can use", uri)
	}
	if len(keys) > 1 {
		only = nil
	}
	return keys, only, resp.CacheFor(keysLeast, keysMost), nil
}

// logDropped logs each key the set had to drop, once for as long as the
// set keeps publishing it (every refresh would otherwise repeat it).
func (s *Keys) logDropped(uri string, dropped []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool, len(dropped))
	for _, err := range dropped {
		msg := err.Error()
		seen[msg] = true
		if !s.dropped[msg] {
			s.log.Warn("a key of this JWK Set cannot be used and is left out; the others stay in use", zap.String("jwks_uri", uri), zap.Error(err))
		}
	}
	s.dropped = seen
}

// KeysConfig says where a server's keys are and how to hold them.
type KeysConfig struct {
	// Fetcher fetches the set (required).
	Fetcher *outbound.Client
	// URI gives the set's URL, so that it may be found by discovery
	// when first needed (required).
	URI func(ctx context.Context) (string, error)
	// Logger hears of the keys a set holds that cannot be used. Default:
	// nobody.
	Logger *zap.Logger
	// RefetchEvery is the least time between two fetches for key IDs the
	// set lacks, however many tokens name them. Default
	// DefaultRefetchEvery. Shorter follows a rotation sooner and lets
	// tokens with made-up key IDs make more fetches.
	RefetchEvery time.Duration
}

// NewKeys holds the keys cfg says where to find.
func NewKeys(cfg KeysConfig) *Keys {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.RefetchEvery <= 0 {
		cfg.RefetchEvery = DefaultRefetchEvery
	}
	return &Keys{fetch: cfg.Fetcher, uri: cfg.URI, log: cfg.Logger, refetchEvery: cfg.RefetchEvery}
}

// Refresh fetches the keys again, one fetch at a time; the keys held stay
// in use when it fails.
func (s *Keys) Refresh(ctx context.Context) error { return s.refresh(ctx) }

// RefreshIfDue fetches the keys when their time is up (a holder without
// a background loop calls it before using them); a failure keeps the
// keys held, which UnknownKey then reports for a key they lack.
func (s *Keys) RefreshIfDue(ctx context.Context) {
	if time.Now().After(s.due()) {
		_ = s.refresh(ctx)
	}
}

// due says when the keys should be fetched again.
func (s *Keys) due() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.err != nil || s.keys == nil {
		return s.fetched.Add(s.refetchEvery)
	}
	return s.expires
}
