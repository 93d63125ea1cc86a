package authserver

// The store losing its data: noticing it, and writing back what an instance holds.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// A store can lose its data under a running issuer: a Redis restarted
// without persistence, FLUSHDB, keys evicted under memory pressure. What
// the instances still hold in memory (the signing key ring, revocations)
// must then go back, or revoked tokens would be valid again and a lost
// cookie secret would let anyone forge a session. Keys restores the ring
// (Keys.Refresh); this watches the store's generation marker and writes
// the revocations back.
type generationWatch struct {
	mu   sync.Mutex
	gen  string
	lost atomic.Bool
}

// checkStoreGeneration reads the store's generation marker. The first call
// learns it; a later one that finds another (the store was emptied and the
// marker written anew) writes every revocation this instance holds back to
// the store, retrying on every call until that succeeds. Run it at start
// and on every sync tick, and before a resync of the revocations.
func (s *Server) checkStoreGeneration(ctx context.Context) error {
	gen, _, err := s.store.Generation(ctx)
	if err != nil {
		return fmt.Errorf("reading the store's generation: %w", err)
	}
	w := &s.rt.generation
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen == "" || w.gen == gen {
		w.gen = gen
		return nil
	}
	rv := s.rt.revocations
	if !w.lost.Swap(true) {
		s.obs.metrics.StoreDataLoss("data")
		n := rv.Len()
		s.obs.log.Error("the store lost its data (restarted without persistence, flushed, or evicting keys): writing back this instance's revocations and signing keys; refresh tokens, codes, consents and registered clients kept there are gone",
			zap.Int("revocations", n))
	}
	list := rv.All()
	for _, r := range list {
		if err := s.store.Revoke(ctx, r); err != nil {
			return fmt.Errorf("writing revocations back to the store: %w", err)
		}
	}
	s.obs.log.Info("revocations written back to the store", zap.Int("revocations", len(list)))
	w.gen = gen
	w.lost.Store(false)
	return nil
}

// storeDataLost says whether a loss of the store's data is being repaired.
func (s *Server) storeDataLost() bool { return s.rt.generation.lost.Load() || s.rt.keys.Lost() }
