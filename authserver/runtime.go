package authserver

// The issuer's runtime: what New loads from the store, and what Run keeps
// in sync with it while the server serves — the key ring (rotations made
// by any instance, scheduled rotation, a ring the store lost), the
// revocation feed with a full resync whenever it (re)starts, the store's
// generation, and the revocation state's staleness.

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
)

// Defaults of the runtime's Config fields.
const (
	DefaultSigningAlg             = "ES256"
	DefaultKeyRotation            = 30 * 24 * time.Hour
	DefaultRevocationMaxStaleness = time.Minute
	DefaultTokenCacheSize         = 20_000
	DefaultSyncInterval           = time.Second
	// tokenLeeway is the clock skew tolerated on exp, nbf and iat.
	tokenLeeway = 30 * time.Second
	// unknownKidReloadEvery limits reloads for tokens naming an unknown kid.
	unknownKidReloadEvery = 5 * time.Second
)

// runtime is what the server keeps in sync with the store.
type runtime struct {
	keys *keys.Ring
	// validator checks access tokens (bearer_auth, introspection) against
	// keys and revocations, in memory.
	validator   *introspect.Validator
	revocations *introspect.Revocations
	// lastKeyReload (unix nanoseconds) limits the key ring reloads that
	// tokens naming an unknown kid cause: anyone can send one.
	lastKeyReload atomic.Int64
	// generation notices that the store lost its data.
	generation generationWatch
	health     healthCheck
}

// openRuntime loads (or makes) the signing keys and the revocation state
// and builds the validator.
func (s *Server) openRuntime(ctx context.Context) error {
	cfg := &s.cfg
	// A retired key stays published while tokens it signed may be valid.
	// ID tokens are signed with RS256 or a configuration client's
	// id_token_alg, which the ring then has a key of.
	var idAlgs []string
	for _, c := range cfg.Clients {
		if c.IDTokenAlg != "" {
			idAlgs = append(idAlgs, c.IDTokenAlg)
		}
	}
	ring, err := keys.New(s.store, cfg.SigningAlg, cfg.AccessTokenTTL+time.Minute, idAlgs...)
	if err != nil {
		return err
	}
	ring.Logger, ring.OnLoss = s.obs.log, func() { s.obs.metrics.StoreDataLoss("key ring") }
	s.rt.keys = ring
	if w, ok := s.store.(store.Warner); ok {
		for _, msg := range w.Warnings(ctx) {
			s.obs.log.Warn(msg)
		}
	}
	if err := ring.Init(ctx); err != nil {
		return err
	}
	// Loaded here as well as when Run starts watching: the server may
	// answer requests before Run runs.
	s.rt.revocations = introspect.NewRevocations()
	list, err := s.store.Revocations(ctx)
	if err != nil {
		return fmt.Errorf("loading revocations: %w", err)
	}
	s.rt.revocations.Merge(list)
	if cfg.SharedStore {
		s.rt.revocations.SetMaxStaleness(cfg.RevocationMaxStaleness)
	}
	s.rt.validator = &introspect.Validator{Keys: ring, Issuer: cfg.Issuer, Leeway: tokenLeeway, Revoked: s.rt.revocations,
		UnknownKey: s.reloadKeysForUnknownKid}
	if cfg.TokenCacheSize > 0 {
		// Tokens are presented again on every API call: verify each once.
		s.rt.validator.Cache = introspect.NewTokenCache(cfg.TokenCacheSize)
	}
	return nil
}

// Keys is the issuer's signing key set.
func (s *Server) Keys() *keys.Ring { return s.rt.keys }

// Validator checks the issuer's access tokens in memory, for bearer
// checks in the same process.
func (s *Server) Validator() *introspect.Validator { return s.rt.validator }

// Revocations is the issuer's in-memory revocation state.
func (s *Server) Revocations() *introspect.Revocations { return s.rt.revocations }

// Start does what only a running issuer may do, not one whose configuration
// is only checked: it offboards the users the configuration no longer has.
// Run it once, before Run.
func (s *Server) Start(ctx context.Context) error {
	names := make([]string, len(s.cfg.Users))
	for i, u := range s.cfg.Users {
		names[i] = u.Username
	}
	return s.tokens.Offboard(ctx, names)
}

// Run keeps the issuer in sync with the store until ctx ends: it follows
// revocations as any instance makes them (resyncing in full whenever the
// feed (re)starts), and every SyncInterval re-reads the key ring, checks
// the store's generation, rotates keys when due and tracks staleness.
func (s *Server) Run(ctx context.Context) {
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		s.store.WatchRevocations(ctx, s.rt.revocations.Apply, func() { s.resyncRevocations(ctx) })
	}()
	delivering := make(chan struct{})
	go func() {
		defer close(delivering)
		s.logout.Run(ctx)
	}()
	s.syncLoop(ctx)
	<-watching
	<-delivering
}

// resyncRevocations reloads the full revocation state, as after a
// (re)connection, when revocations may have been missed. The store may
// come back empty: what this instance holds is then written back first,
// and nothing it holds is dropped.
func (s *Server) resyncRevocations(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.resyncOnce(ctx)
		if err == nil {
			return
		}
		s.obs.log.Error("cannot reload revocations from the store; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(s.cfg.SyncInterval):
		}
	}
}

func (s *Server) resyncOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.checkStoreGeneration(ctx); err != nil {
		return err
	}
	list, err := s.store.Revocations(ctx)
	if err != nil {
		return err
	}
	s.rt.revocations.Merge(list)
	s.rt.revocations.MarkSynced()
	return nil
}

// syncLoop is Run's ticker; see syncState for one tick.
func (s *Server) syncLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	var st syncState
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.syncTick(ctx, &st, i)
	}
}

// syncState is what the sync loop remembers between ticks, so that it logs
// changes rather than every tick.
type syncState struct{ failing, stale bool }

// syncTick re-reads the key ring (which also proves the store reachable:
// the revocation state's heartbeat) and the store's generation, rotates
// keys when due, prunes expired revocations every 60th tick, and logs when
// the store or the revocation state goes bad or recovers.
func (s *Server) syncTick(ctx context.Context, st *syncState, i int) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := s.rt.keys.Refresh(rctx)
	if err == nil {
		err = s.checkStoreGeneration(rctx)
	}
	if err == nil {
		s.rt.revocations.MarkSynced()
		if rerr := s.admin.RotateKeysIfDue(rctx, max(0, s.cfg.KeyRotation)); rerr != nil {
			s.obs.log.Error("scheduled signing key rotation failed; retrying", zap.Error(rerr))
		}
	}
	cancel()
	if i%60 == 0 {
		s.rt.revocations.Prune(time.Now())
	}
	if i%3600 == 0 {
		ectx, ecancel := context.WithTimeout(ctx, time.Minute)
		if err := s.ExpireRegistrations(ectx); err != nil {
			s.obs.log.Error("removing unused registered clients failed; retrying in an hour", zap.Error(err))
		}
		ecancel()
	}
	switch {
	case err != nil && !st.failing:
		s.obs.log.Error("cannot reach the store; retrying every second", zap.Error(err))
		st.failing = true
	case err == nil && st.failing:
		s.obs.log.Info("store reachable again")
		st.failing = false
	}
	stale := s.rt.revocations.Stale()
	switch {
	case stale && !st.stale:
		s.obs.log.Error("revocations are stale: the store has been unreachable longer than revocation_max_staleness; bearer_auth and introspection answer 503 until it is back",
			zap.Duration("revocation_max_staleness", s.cfg.RevocationMaxStaleness))
	case !stale && st.stale:
		s.obs.log.Info("revocations in sync again; bearer_auth accepts tokens")
	}
	st.stale = stale
}

// reloadKeysForUnknownKid reloads the key ring at most every few seconds:
// another instance may have rotated, but anyone can send a made-up kid.
func (s *Server) reloadKeysForUnknownKid(string) (bool, error) {
	now := time.Now().UnixNano()
	last := s.rt.lastKeyReload.Load()
	if now-last < int64(unknownKidReloadEvery) || !s.rt.lastKeyReload.CompareAndSwap(last, now) {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// The keys this instance holds still sign and verify: a store that
	// cannot be read is no reason to refuse tokens as unavailable.
	return s.rt.keys.Refresh(ctx) == nil, nil
}
